// A ByteStream (./types.ts) over a node:net socket or any node Duplex: what node:http's
// 'upgrade' event and undici's upgrade hand over. Hand-written rather than Duplex.toWeb, whose
// readable never ends after the peer's FIN on Node 20 (a tunnel would never close).
import type { Duplex } from 'node:stream';
import type { ByteStream } from './types.ts';

/** Bytes read from the peer before the socket is paused (backpressure). */
const HIGH_WATER_BYTES = 64 * 1024;

/** Web streams over `socket`, with the socket's own backpressure; `destroy` tears it down. */
export function duplexByteStream(socket: Duplex): ByteStream {
  let ended = false;
  // The peer's FIN must end only our readable: a socket without allowHalfOpen (undici's)
  // answers it with its own FIN at once, so a close frame sent with the peer's FIN would never
  // get the other peer's answer back through the tunnel.
  (socket as Duplex & { allowHalfOpen: boolean }).allowHalfOpen = true;
  const readable = new ReadableStream<Uint8Array>(
    {
      start(c) {
        socket.on('data', (chunk: Buffer) => {
          c.enqueue(chunk);
          if ((c.desiredSize ?? 1) <= 0) socket.pause();
        });
        socket.once('end', () => {
          ended = true;
          c.close();
        });
        socket.once('close', () => {
          if (!ended) c.error(new Error('connection closed'));
          ended = true;
        });
        socket.on('error', () => {}); // the 'close' that follows errors the stream
      },
      pull() {
        socket.resume();
      },
      cancel() {
        ended = true;
        socket.destroy();
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: HIGH_WATER_BYTES }),
  );
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      if (socket.destroyed) throw new Error('connection closed');
      if (socket.write(chunk)) return;
      return new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          socket.off('close', onClose);
          resolve();
        };
        const onClose = () => {
          socket.off('drain', onDrain);
          reject(new Error('connection closed'));
        };
        socket.once('drain', onDrain);
        socket.once('close', onClose);
      });
    },
    close() {
      return new Promise<void>((resolve) => socket.end(resolve));
    },
    abort(reason) {
      socket.destroy(reason instanceof Error ? reason : undefined);
    },
  });
  return { readable, writable, destroy: (reason) => void socket.destroy(reason) };
}
