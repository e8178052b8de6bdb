// The tunnel byte stream on its own, over a fake socket: early bytes first, backpressure,
// writes through the Outbox, half-close, destroy. Runs on every runtime.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { Outbox } from '../http1/outbox.ts';
import { SocketByteStream, type TunnelSocket } from './bun-socket-stream.ts';

class FakeSocket implements TunnelSocket {
  written: string[] = [];
  /** How many bytes each write may take (-1: closed). */
  room = Number.POSITIVE_INFINITY;
  events: string[] = [];
  write(data: Uint8Array, byteOffset = 0, byteLength = data.byteLength): number {
    if (this.room < 0) return -1;
    const n = Math.min(this.room, byteLength);
    this.written.push(Buffer.from(data.subarray(byteOffset, byteOffset + n)).toString('latin1'));
    return n;
  }
  shutdown() {
    this.events.push('shutdown');
  }
  terminate() {
    this.events.push('terminate');
  }
  pause() {
    this.events.push('pause');
  }
  resume() {
    this.events.push('resume');
  }
}

const text = async (readable: ReadableStream<Uint8Array>) => Buffer.from(await new Response(readable).arrayBuffer()).toString('latin1');

describe('socket byte stream', () => {
  test('bytes read after the head come first, then each read; the peer FIN ends the readable', async () => {
    const socket = new FakeSocket();
    const stream = new SocketByteStream(socket, new Outbox(), Buffer.from('early'));
    stream.data(Buffer.from('-later'));
    stream.end();
    assert.equal(await text(stream.readable), 'early-later');
  });

  test('a full queue pauses the socket; reading resumes it', async () => {
    const socket = new FakeSocket();
    const stream = new SocketByteStream(socket, new Outbox(), null);
    stream.data(Buffer.alloc(70 * 1024));
    assert.deepEqual(socket.events, ['pause']);
    const reader = stream.readable.getReader();
    await reader.read();
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.deepEqual(socket.events, ['pause', 'resume']);
  });

  test('writes go through the Outbox and resolve on drain; close ends our side after them', async () => {
    const socket = new FakeSocket();
    const out = new Outbox();
    const stream = new SocketByteStream(socket, out, null);
    const writer = stream.writable.getWriter();
    socket.room = 2;
    let done = false;
    const pending = writer.write(Buffer.from('hello')).then(() => {
      done = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(done, false, 'waits for the drain');
    socket.room = Number.POSITIVE_INFINITY;
    out.drain(socket);
    await pending;
    assert.equal(socket.written.join(''), 'hello');
    await writer.close();
    assert.deepEqual(socket.events, ['shutdown']);
  });

  test('the socket closing errors the streams when broken; destroy terminates', async () => {
    const socket = new FakeSocket();
    const stream = new SocketByteStream(socket, new Outbox(), null);
    stream.closed(new Error('reset'));
    await assert.rejects(stream.readable.getReader().read(), /reset/);
    await assert.rejects(stream.writable.getWriter().write(Buffer.from('x')), /reset/);
    const other = new SocketByteStream(new FakeSocket(), new Outbox(), null);
    other.destroy(new Error('idle'));
    await assert.rejects(other.readable.getReader().read(), /idle/);
  });
});
