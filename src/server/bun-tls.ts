// The TLS listener on Bun: node:tls picks the certificate by SNI and negotiates ALPN; an h2
// connection goes to node:http2 (a server without TLS of its own, handed the decrypted socket),
// an http/1.1 one to our own HTTP/1.1 server (./bun-native.ts), the same code as the plain
// listener. Bun's node:http2 parses HTTP/1.1 through its node:http emulation, which cost about
// a third of the CPU of a proxied HTTPS request (docs/runtimes.md); ALPN decides once per
// connection instead. Certificates, versions, suites and the graceful stop are ./tls.ts's.
import { createServer as createH2Server } from 'node:http2';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { TlsFacts } from '../app-env.ts';
import type { BunSocket } from '../http1/bun-socket-types.ts';
import { ALPN_PROTOCOLS } from '../tls/context.ts';
import { bindServer } from './bind.ts';
import { createHttp1Engine, type Http1Conn } from './bun-native.ts';
import { h2StreamHandler } from './h2-stream.ts';
import { followDefaultContext, newCompatState, type TlsListenerOptions, tlsFactsOf, tlsServerOptions, trackSessions } from './tls.ts';
import type { AppFetch, Listener, ListenerSpec } from './types.ts';

/**
 * A node:tls socket as our HTTP/1.1 server's socket (http1/bun-socket-types.ts). Writes are
 * copied (the server reuses its buffers) and refused while node's buffer is over its high-water
 * mark, which the server takes as "the kernel took nothing": it waits for `drain`.
 */
class TlsSocketShim<Data> implements BunSocket<Data> {
  data!: Data;
  constructor(
    private readonly socket: TLSSocket,
    readonly tls: TlsFacts,
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

export async function listenBunTls(fetch: AppFetch, spec: ListenerSpec): Promise<Listener> {
  const options = tlsServerOptions(spec);
  const state = newCompatState();
  const engine = createHttp1Engine(fetch, spec);
  const { handlers } = engine;

  // No request listener: the stream API (./h2-stream.ts) instead of node:http2's compatibility layer.
  const h2 = createH2Server({ settings: { maxConcurrentStreams: 128 }, maxSessionMemory: 10 });
  h2.on('stream', h2StreamHandler(fetch, spec));
  trackSessions(h2, state);
  h2.on('sessionError', () => {});

  const server = createTlsServer({ ...options, allowHalfOpen: true }, (socket: TLSSocket) => {
    socket.on('error', () => socket.destroy());
    if (socket.alpnProtocol === 'h2') {
      // The server is half-open for our HTTP/1.1 engine (tunnels); an h2 peer's FIN ends the
      // connection, or node:http2 never hears of it and the session's streams stay open.
      socket.once('end', () => socket.end());
      h2.emit('connection', socket);
      return;
    }
    const shim = new TlsSocketShim<Http1Conn>(socket, tlsFactsOf(socket));
    handlers.open?.(shim);
    socket.on('data', (chunk: Buffer) => handlers.data(shim, chunk));
    socket.on('drain', () => handlers.drain(shim));
    socket.on('end', () => handlers.end(shim));
    socket.once('close', () => handlers.close(shim));
  });
  server.on('tlsClientError', (_error, socket) => socket.destroy());

  const unwatch = followDefaultContext(server, spec.tls as TlsListenerOptions);
  const port = await bindServer(server, spec);

  return {
    name: spec.name,
    proto: 'https',
    hostname: spec.hostname,
    port,
    alpn: [...ALPN_PROTOCOLS],
    async stop(graceMs) {
      state.stopping = true;
      unwatch();
      server.close();
      // h2: GOAWAY, streams in flight finish; the engine does the same for h1.
      const sessionsGone = Promise.all([...state.sessions].map((session) => new Promise((resolve) => session.once('close', resolve))));
      for (const session of state.sessions) session.close();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          for (const session of state.sessions) session.destroy();
          resolve();
        }, graceMs);
      });
      await Promise.all([engine.stop(graceMs), Promise.race([sessionsGone, grace])]);
      clearTimeout(timer);
    },
  };
}
