// Our HTTP/1.1 server (./bun-native.ts's engine) on node:net and node:tls sockets: Deno's plain
// listener, and the http/1.1 side of the TLS listener on Bun and Deno (./tls.ts). Also the
// plain listener's accept loop for Node (node:http fed the sockets that pass the gate).
import { createServer, type Socket } from 'node:net';
import type { TlsFacts } from '../app-env.ts';
import type { BunSocket, SocketHandlers } from '../http1/bun-socket-types.ts';
import { bindServer } from './bind.ts';
import { createHttp1Engine } from './bun-native.ts';
import { admitSocket } from './limits.ts';
import type { AppFetch, Http1Server, Listener, ListenerSpec } from './types.ts';

/**
 * A node:net (or node:tls) socket as our HTTP/1.1 server's socket (http1/bun-socket-types.ts).
 * Writes are copied (the server reuses its buffers) and refused while node's buffer is over its
 * high-water mark, which the server takes as "the kernel took nothing": it waits for `drain`.
 */
export class NodeSocketShim<Data> implements BunSocket<Data> {
  data!: Data;
  constructor(
    private readonly socket: Socket,
    readonly tls?: TlsFacts,
  ) {}
  get remoteAddress(): string {
    return this.socket.remoteAddress ?? '';
  }
  write(data: Uint8Array, byteOffset = 0, byteLength = data.byteLength - byteOffset): number {
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return -1;
    if (socket.writableNeedDrain) return 0;
    socket.write(Buffer.from(data.subarray(byteOffset, byteOffset + byteLength)));
    return byteLength;
  }
  end(): void {
    this.socket.end();
  }
  /** node's end() is already a half-close on an allowHalfOpen socket. */
  shutdown(): void {
    this.socket.end();
  }
  terminate(): void {
    this.socket.destroy();
  }
  pause(): void {
    this.socket.pause();
  }
  resume(): void {
    this.socket.resume();
  }
}

/** Feeds one node socket to the engine's handlers. */
export function attachSocket<Data>(socket: Socket, handlers: SocketHandlers<Data>, tls?: TlsFacts): void {
  const shim = new NodeSocketShim<Data>(socket, tls);
  socket.on('error', () => socket.destroy());
  handlers.open?.(shim);
  socket.on('data', (chunk: Buffer) => handlers.data(shim, chunk));
  socket.on('drain', () => handlers.drain(shim));
  socket.on('end', () => handlers.end(shim));
  socket.once('close', () => handlers.close(shim));
}

/** Our HTTP/1.1 server (the engine of ./bun-native.ts) fed node:net / node:tls sockets. */
export function engineHttp1(fetch: AppFetch, spec: ListenerSpec): Http1Server {
  const engine = createHttp1Engine(fetch, spec);
  return {
    connection: (socket, tls) => attachSocket(socket, engine.handlers, tls),
    stop: (graceMs) => engine.stop(graceMs),
  };
}

/**
 * A plain listener: a node:net server whose sockets pass the spec's connection gate and go to
 * `http1` (the engine on Deno, node:http on Node).
 */
export async function listenPlain(http1: Http1Server, spec: ListenerSpec): Promise<Listener> {
  // allowHalfOpen: a tunnel's peer may end its side and still read ours.
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    if (admitSocket(spec.gate, socket, true)) http1.connection(socket);
  });
  const port = await bindServer(server, spec);
  return {
    name: spec.name,
    proto: spec.proto,
    hostname: spec.hostname,
    port,
    async stop(graceMs) {
      server.close();
      await http1.stop(graceMs);
    },
  };
}

/** Deno's plain listener: the engine on node:net (docs/runtimes.md says why not Deno.serve). */
export const listenNetEngine = (fetch: AppFetch, spec: ListenerSpec): Promise<Listener> => listenPlain(engineHttp1(fetch, spec), spec);
