// pipeTunnel over real loopback sockets on each runtime: a client peer and an upstream peer,
// each connected to "the proxy", whose two sockets the tunnel joins (node:net + duplexByteStream,
// which every runtime has).
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { until, within } from '../../tests/support/wait.ts';
import { duplexByteStream } from './node-socket-stream.ts';
import { pipeTunnel, type TunnelOptions } from './pipe.ts';

interface Pair {
  /** The far end (the client, or the upstream). */
  readonly peer: net.Socket;
  /** The proxy's socket to it. */
  readonly near: net.Socket;
}

/** A connected loopback socket pair. */
async function socketPair(): Promise<Pair> {
  const server = net.createServer({ allowHalfOpen: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const peer = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await new Promise<void>((resolve) => peer.once('connect', resolve));
  const near = await accepted;
  server.close();
  peer.on('error', () => {});
  near.on('error', () => {});
  return { peer, near };
}

/** Collects what `socket` receives until it ends or closes. */
function collect(socket: net.Socket): { bytes: () => Buffer; ended: Promise<void> } {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve) => {
    socket.once('end', resolve);
    socket.once('close', resolve);
  });
  return { bytes: () => Buffer.concat(chunks), ended };
}

async function tunnelled(options: TunnelOptions = { idleMs: 0 }) {
  const client = await socketPair();
  const upstream = await socketPair();
  const tunnel = pipeTunnel(duplexByteStream(client.near), duplexByteStream(upstream.near), options);
  const cleanup = () => {
    for (const s of [client.peer, client.near, upstream.peer, upstream.near]) s.destroy();
  };
  return { client, upstream, tunnel, cleanup };
}

const patterned = (n: number, seed: number) => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) % 251;
  return b;
};

test('bytes pass both ways intact and are counted; ends pass on, and done says closed', async () => {
  const { client, upstream, tunnel, cleanup } = await tunnelled();
  try {
    const toUpstream = patterned(1 << 20, 1);
    const toClient = patterned(3 << 19, 2);
    const atUpstream = collect(upstream.peer);
    const atClient = collect(client.peer);
    client.peer.end(toUpstream);
    upstream.peer.end(toClient);
    await within(Promise.all([atUpstream.ended, atClient.ended]), 5000, 'both ends');
    assert.ok(atUpstream.bytes().equals(toUpstream), 'client -> upstream bytes intact');
    assert.ok(atClient.bytes().equals(toClient), 'upstream -> client bytes intact');
    const result = await within(tunnel.done, 5000, 'tunnel done');
    assert.equal(result.end, 'closed');
    assert.equal(result.clientToUpstream, toUpstream.length);
    assert.equal(result.upstreamToClient, toClient.length);
  } finally {
    cleanup();
  }
});

test("one peer's end reaches the other as an end, and the other direction keeps working", async () => {
  const { client, upstream, tunnel, cleanup } = await tunnelled();
  try {
    const atUpstream = collect(upstream.peer);
    client.peer.end('bye');
    await within(atUpstream.ended, 3000, 'the upstream sees the end');
    assert.equal(atUpstream.bytes().toString(), 'bye');
    const atClient = collect(client.peer);
    upstream.peer.end('late answer');
    await within(atClient.ended, 3000, 'the client sees the rest, then the end');
    assert.equal(atClient.bytes().toString(), 'late answer');
    const result = await within(tunnel.done, 3000, 'tunnel done');
    assert.equal(result.end, 'closed');
    assert.equal(result.first, 'client');
  } finally {
    cleanup();
  }
});

test('a peer that breaks (reset) tears the other side down, and done says error', async () => {
  const { client, upstream, tunnel, cleanup } = await tunnelled();
  try {
    const atClient = collect(client.peer);
    upstream.peer.resetAndDestroy?.() ?? upstream.peer.destroy();
    await within(atClient.ended, 3000, 'the client side is closed');
    const result = await within(tunnel.done, 3000, 'tunnel done');
    assert.ok(result.end === 'error' || result.end === 'closed', result.end);
    assert.equal(client.near.destroyed || client.near.writableEnded, true);
  } finally {
    cleanup();
  }
});

test('no byte either way for idleMs closes both sides; traffic keeps it open', async () => {
  const { client, upstream, tunnel, cleanup } = await tunnelled({ idleMs: 300 });
  try {
    const atUpstream = collect(upstream.peer);
    // Traffic every 100 ms for 600 ms: twice the idle time, and still open.
    for (let i = 0; i < 6; i++) {
      client.peer.write('x');
      await new Promise((r) => setTimeout(r, 100));
    }
    await until(() => atUpstream.bytes().length === 6, 2000, 'six bytes through');
    assert.equal(client.near.destroyed, false, 'closed while traffic flowed');
    const started = Date.now();
    const result = await within(tunnel.done, 3000, 'idle close');
    assert.equal(result.end, 'idle');
    assert.ok(Date.now() - started >= 150, `closed after ${Date.now() - started} ms of quiet`);
    await within(atUpstream.ended, 2000, 'the upstream side is closed');
  } finally {
    cleanup();
  }
});

test('stop() tears both sides down at once', async () => {
  const { client, upstream, tunnel, cleanup } = await tunnelled();
  try {
    const atClient = collect(client.peer);
    const atUpstream = collect(upstream.peer);
    tunnel.stop();
    await within(Promise.all([atClient.ended, atUpstream.ended]), 3000, 'both closed');
    assert.equal((await tunnel.done).end, 'stopped');
  } finally {
    cleanup();
  }
});

test('a reader that stops reading holds the other side back (backpressure): bounded read-ahead', async () => {
  const { client, upstream, tunnel, cleanup } = await tunnelled();
  try {
    // The client stops reading; the upstream offers 64 MiB as fast as it can.
    client.peer.pause();
    const chunk = patterned(64 * 1024, 3);
    let offered = 0;
    let blocked = false;
    const offer = () => {
      while (offered < 64 << 20) {
        offered += chunk.length;
        if (!upstream.peer.write(chunk)) {
          blocked = true;
          return;
        }
      }
    };
    offer();
    await new Promise((r) => setTimeout(r, 500));
    // Socket buffers on each hop hold a few MiB at most; without backpressure the tunnel would
    // read all 64 MiB into memory.
    const result = () => tunnel.done;
    assert.ok(blocked, 'the upstream peer was never told to wait');
    assert.ok(offered < 32 << 20, `${offered} bytes were taken from the upstream with nobody reading`);
    tunnel.stop();
    await result();
  } finally {
    cleanup();
  }
});

/** One WebSocket frame (FIN, `opcode`), masked as a client sends it or not. */
function wsFrame(opcode: number, payload: Buffer, masked: boolean): Buffer {
  const head = Buffer.from([0x80 | opcode, (masked ? 0x80 : 0) | payload.length]);
  if (!masked) return Buffer.concat([head, payload]);
  const key = Buffer.from([1, 2, 3, 4]);
  return Buffer.concat([head, key, Buffer.from(payload.map((b, i) => b ^ (key[i & 3] as number)))]);
}

/** The close frames in `bytes` (a stream of frames), with their codes. */
function closeCodes(bytes: Buffer): number[] {
  const codes: number[] = [];
  let i = 0;
  while (i + 2 <= bytes.length) {
    const opcode = (bytes[i] as number) & 0x0f;
    const masked = ((bytes[i + 1] as number) & 0x80) !== 0;
    const len = (bytes[i + 1] as number) & 0x7f; // the tests' frames are short
    const start = i + 2 + (masked ? 4 : 0);
    let payload = bytes.subarray(start, start + len);
    if (masked) {
      const key = bytes.subarray(i + 2, i + 6);
      payload = Buffer.from(payload.map((b, k) => b ^ (key[k & 3] as number)));
    }
    if (opcode === 8) codes.push(payload.readUInt16BE(0));
    i = start + len;
  }
  return codes;
}

test('websocket goAway: the frame in flight passes whole, then close 1001 to both peers; their closes end the tunnel', async () => {
  const { client, upstream, tunnel, cleanup } = await tunnelled({ idleMs: 0, websocket: true });
  try {
    const atUpstream = collect(upstream.peer);
    const atClient = collect(client.peer);
    const message = wsFrame(1, Buffer.from('hello, upstream'), true);
    // Half a frame from the client when shutdown begins: the rest must arrive before the goodbye.
    client.peer.write(message.subarray(0, 7));
    await until(() => atUpstream.bytes().length === 7, 2000, 'the first half reached the upstream');
    tunnel.goAway(3000);
    await until(() => closeCodes(atClient.bytes()).length === 1, 2000, 'the client got a close frame');
    assert.deepEqual(closeCodes(atClient.bytes()), [1001]);
    assert.equal(((atClient.bytes()[1] as number) & 0x80) === 0, true, 'toward the client: unmasked');
    client.peer.write(message.subarray(7));
    await until(() => closeCodes(atUpstream.bytes().subarray(message.length)).length === 1, 2000, 'the upstream got the rest, then a close frame');
    assert.ok(atUpstream.bytes().subarray(0, message.length).equals(message), 'the frame in flight arrived whole');
    assert.deepEqual(closeCodes(atUpstream.bytes().subarray(message.length)), [1001]);
    assert.equal(((atUpstream.bytes()[message.length + 1] as number) & 0x80) !== 0, true, 'toward the upstream: masked');
    // Frames sent after the goodbye are not passed on; the peers' close frames end it.
    upstream.peer.write(wsFrame(1, Buffer.from('late'), false));
    upstream.peer.write(wsFrame(8, Buffer.from([0x03, 0xe9]), false));
    client.peer.write(wsFrame(8, Buffer.from([0x03, 0xe9]), true));
    const result = await within(tunnel.done, 2000, 'the tunnel ends on both closes, long before the grace');
    assert.equal(result.end, 'stopped');
    await within(Promise.all([atClient.ended, atUpstream.ended]), 2000, 'both peers see the end');
    assert.doesNotMatch(atClient.bytes().toString('latin1'), /late/, 'nothing after the goodbye was passed on');
  } finally {
    cleanup();
  }
});

test('websocket goAway: peers that never answer are cut when the grace ends', async () => {
  const { tunnel, cleanup } = await tunnelled({ idleMs: 0, websocket: true });
  try {
    const started = Date.now();
    tunnel.goAway(300);
    const result = await within(tunnel.done, 2000, 'the grace ends it');
    assert.equal(result.end, 'stopped');
    assert.ok(Date.now() - started >= 250, `ended after ${Date.now() - started} ms`);
  } finally {
    cleanup();
  }
});
