// The TLS listener on every runtime: node:tls picks the certificate per handshake by SNI from
// the certificate store and negotiates ALPN (h2, http/1.1); then ALPN decides once per
// connection: h2 to node:http2 (./h2-stream.ts), http/1.1 to the runtime's HTTP/1.1 server, the
// plain listener's (docs/tls-listeners.md has the candidates and their measurements: Bun.serve
// rewrites targets and cannot swap certificates in place, Bun.listen serves one certificate,
// Deno.serve one certificate; node:http2's own HTTP/1.1 fallback cost about a third of a proxied
// request on Bun, takes no upgrades on Deno and applies none of node:http's head timeouts).

import { createServer as createH2Server, type Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import { createServer as createTlsServer, type SecureContext, type SecureContextOptions, type TLSSocket, type TlsOptions } from 'node:tls';
import type { ClientCertificate, ConnInfo, TlsFacts } from '../app-env.ts';
import { normalizePeer } from '../proxy/headers.ts';
import { ALPN_PROTOCOLS, baseContextOptions } from '../tls/context.ts';
import type { CertificateStore } from '../tls/store.ts';
import { bindServer } from './bind.ts';
import { h2StreamHandler } from './h2-stream.ts';
import { admitSocket, DEFAULT_CLIENT_LIMITS } from './limits.ts';
import type { AppFetch, Http1Factory, Listener, ListenerSpec } from './types.ts';

/** What a TLS listener serves, beyond the plain spec. */
export interface TlsListenerOptions {
  /** The certificates, chosen per handshake; swapped in place by reload (and ACME later). */
  readonly store: CertificateStore<SecureContext>;
  /** Ask for client certificates from these CAs (PEM); `required` refuses clients without one. */
  readonly clientAuth: { readonly ca: string; readonly required: boolean } | null;
  /**
   * A connection that has not finished its handshake by then is closed.
   * @default 10000
   */
  readonly handshakeTimeoutMs?: number;
}

const CONN = Symbol('switchyard.conn');
type Tagged = { [CONN]?: ConnInfo };

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** The verified client certificate of a TLS connection, or null. */
function clientCertificate(socket: TLSSocket): ClientCertificate | null {
  if (!socket.authorized) return null;
  const cert = socket.getPeerCertificate();
  if (cert === null || typeof cert !== 'object' || !cert.subject) return null;
  // RFC 4514 order (most specific first), as nginx's $ssl_client_s_dn prints it.
  const subject = Object.entries(cert.subject)
    .reverse()
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join('+') : value}`)
    .join(',');
  return { subject, fingerprint256: cert.fingerprint256 };
}

/**
 * The ConnInfo of a TLS connection, made once and kept on `key` (the h1 socket, or the h2
 * session its streams share): no lookup table per request. `socketOf` runs only then: an h2
 * session's `socket` is a getter that builds a proxy object (Bun, Node).
 */
export function tlsConnOf(key: object, socketOf: () => TLSSocket, listener: string): ConnInfo {
  const tagged = key as Tagged;
  let conn = tagged[CONN];
  if (conn === undefined) {
    const socket = socketOf();
    conn = { remoteAddr: normalizePeer(socket.remoteAddress ?? ''), proto: 'https', listener, tls: tlsFactsOf(socket) };
    tagged[CONN] = conn;
  }
  return conn;
}

export function tlsFactsOf(socket: TLSSocket): TlsFacts {
  const servername = (socket as TLSSocket & { servername?: string | false }).servername;
  return {
    serverName: typeof servername === 'string' && servername ? servername : null,
    alpn: typeof socket.alpnProtocol === 'string' ? socket.alpnProtocol : 'http/1.1',
    protocol: socket.getProtocol?.() ?? null,
    clientCertificate: clientCertificate(socket),
  };
}

/** What a TLS listener tracks for a graceful stop: its h2 sessions. */
export interface SessionState {
  stopping: boolean;
  readonly sessions: Set<Http2Session>;
}

export const newSessionState = (): SessionState => ({ stopping: false, sessions: new Set() });

/** The options of the TLS server (every runtime): certificates from the store by SNI, our versions and suites, ALPN. */
export function tlsServerOptions(spec: ListenerSpec): TlsOptions {
  const tls = spec.tls;
  if (tls === undefined) throw new Error(`listener ${spec.name}: proto https needs TLS options`);
  const { store, clientAuth } = tls;
  const first = store.current.fallback;
  if (first === undefined) throw new Error(`listener ${spec.name}: no certificate to serve`);
  return {
    ...baseContextOptions(clientAuth?.ca ?? null),
    cert: first.pair.chainPem,
    key: first.pair.keyPem,
    ALPNProtocols: [...ALPN_PROTOCOLS],
    // The name -> context lookup is the store's, per handshake, so a swap takes effect at once.
    SNICallback(servername: string, callback: (error: Error | null, context?: SecureContext) => void) {
      callback(null, store.select(servername)?.context);
    },
    requestCert: clientAuth !== null,
    rejectUnauthorized: clientAuth?.required === true,
    handshakeTimeout: tls.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
  };
}

/**
 * Sessions are tracked for a graceful stop; their errors end them, never the process. A session
 * without an open stream for `idleMs` is closed (GOAWAY), like an idle HTTP/1.1 keep-alive
 * connection; one with a quiet stream open (SSE) is not.
 */
export function trackSessions(server: { on(event: 'session', listener: (session: Http2Session) => void): unknown }, state: SessionState, idleMs: number): void {
  server.on('session', (session: Http2Session) => {
    state.sessions.add(session);
    session.on('error', () => {});
    let streams = 0;
    let idle: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      idle = setTimeout(() => session.close(), idleMs);
      (idle as { unref?: () => void }).unref?.();
    };
    session.on('stream', (stream: { once(event: 'close', listener: () => void): unknown }) => {
      streams++;
      clearTimeout(idle);
      stream.once('close', () => {
        if (--streams === 0 && !session.closed && !session.destroyed) arm();
      });
    });
    session.once('close', () => {
      clearTimeout(idle);
      state.sessions.delete(session);
    });
    if (state.stopping) session.close();
    else arm();
  });
}

/**
 * The default context (no SNI, or a name no pair covers) follows the store's first pair: SNI
 * lookups read the store per handshake, the default is the server's own. Returns the unwatch.
 */
export function followDefaultContext(server: { setSecureContext(options: SecureContextOptions): void }, { store, clientAuth }: TlsListenerOptions): () => void {
  const clientCa = clientAuth?.ca ?? null;
  return store.watch((table) => {
    const fallback = table.fallback;
    if (fallback !== undefined) server.setSecureContext({ ...baseContextOptions(clientCa), cert: fallback.pair.chainPem, key: fallback.pair.keyPem });
  });
}

/**
 * The TLS listener: node:tls takes the handshake (certificate by SNI from the store, ALPN), then
 * an h2 connection goes to node:http2 (a server without TLS of its own, handed the decrypted
 * socket; streams through ./h2-stream.ts) and an http/1.1 one to the runtime's HTTP/1.1 server,
 * the same one as the plain listener's (`http1`: the engine on Bun and Deno, node:http on Node),
 * with its limits, upgrades and tunnels. The connection gate counts TCP connections before
 * their handshake.
 */
export async function listenTls(fetch: AppFetch, spec: ListenerSpec, http1Of: Http1Factory): Promise<Listener> {
  const options = tlsServerOptions(spec);
  const state = newSessionState();
  const http1 = http1Of(fetch, spec);

  // No request listener: the stream API (./h2-stream.ts) instead of node:http2's compatibility layer.
  const h2 = createH2Server({ settings: { maxConcurrentStreams: 128 }, maxSessionMemory: 10 });
  h2.on('stream', h2StreamHandler(fetch, spec));
  trackSessions(h2, state, (spec.limits ?? DEFAULT_CLIENT_LIMITS).idleTimeoutMs);
  h2.on('sessionError', () => {});

  const server = createTlsServer({ ...options, allowHalfOpen: true }, (socket: TLSSocket) => {
    socket.on('error', () => socket.destroy());
    if (socket.alpnProtocol === 'h2') {
      // The server is half-open for the HTTP/1.1 side (tunnels); an h2 peer's FIN ends the
      // connection, or node:http2 never hears of it and the session's streams stay open.
      socket.once('end', () => socket.end());
      h2.emit('connection', socket);
      return;
    }
    http1.connection(socket, tlsFactsOf(socket));
  });
  // Counted before the handshake: a flood of handshakes is refused before it costs one.
  server.on('connection', (raw: Socket) => void admitSocket(spec.gate, raw, false));
  // Handshake failures (plain HTTP, garbage, an old TLS version, a missing client certificate,
  // a handshake that never finishes) close that connection only.
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
      // h2: GOAWAY, streams in flight finish; the HTTP/1.1 server does the same for h1.
      const sessionsGone = Promise.all([...state.sessions].map((session) => new Promise((resolve) => session.once('close', resolve))));
      for (const session of state.sessions) session.close();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          for (const session of state.sessions) session.destroy();
          resolve();
        }, graceMs);
      });
      await Promise.all([http1.stop(graceMs), Promise.race([sessionsGone, grace])]);
      clearTimeout(timer);
    },
  };
}
