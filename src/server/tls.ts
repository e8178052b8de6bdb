// The TLS listener on every runtime: node:http2's secure server with HTTP/1.1 allowed, the
// certificate picked per handshake by SNI from the certificate store, h2 and http/1.1 offered by
// ALPN. It is the only candidate that passes on Bun, Deno and Node alike (docs/tls-listeners.md:
// Bun.serve rewrites targets and cannot swap certificates in place, Bun.listen serves one
// certificate, Deno.serve one certificate and silently plain HTTP with a list).
//
// Requests reach the app through a thin adapter of our own rather than @hono/node-server's (it
// cost ~20 µs of a 55 µs HTTPS request on Bun): one Request per request, the response streamed
// back with backpressure, connection-specific fields never written (on node:http2 they throw
// ERR_HTTP2_INVALID_CONNECTION_HEADERS, which killed Node and Deno processes).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse, type Http2Session, type SecureServerOptions } from 'node:http2';
import type { SecureContext, SecureContextOptions, TLSSocket } from 'node:tls';
import type { Bindings, ClientCertificate, ConnInfo, TlsFacts } from '../app-env.ts';
import { isSmallLength } from '../http/buffering.ts';
import { plainReason } from '../http/reason.ts';
import { normalizePeer } from '../proxy/headers.ts';
import { ALPN_PROTOCOLS, baseContextOptions } from '../tls/context.ts';
import type { CertificateStore } from '../tls/store.ts';
import { bindServer } from './bind.ts';
import { adaptedRequest, type BodySink, requestBody, responseFields, writeBody } from './fetch-adapter.ts';
import { parserHeadLimit } from './head-limit.ts';
import type { AppFetch, Listener, ListenerSpec } from './types.ts';

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
type AnyRequest = (Http2ServerRequest | IncomingMessage) & { stream?: Http2ServerRequest['stream'] };
type AnyResponse = Http2ServerResponse | ServerResponse;

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

/** RFC 9113 §8.3.1: an intermediary turning h2 into HTTP/1.1 makes Host from :authority. */
function requestHeaders(req: AnyRequest, h2req: boolean): Headers {
  const raw = req.rawHeaders;
  const headers = new Headers();
  let cookie: string | null = null;
  let host = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.charCodeAt(0) === 58 /* : */) continue; // pseudo-headers stay on this hop
    const value = raw[i + 1] as string;
    // RFC 9113 §8.2.3: h2 may split Cookie into several fields; HTTP/1.1 wants one, "; "-joined.
    if (h2req && (name === 'cookie' || name === 'Cookie')) {
      cookie = cookie === null ? value : `${cookie}; ${value}`;
      continue;
    }
    if (!host && name.length === 4 && name.toLowerCase() === 'host') host = true;
    headers.append(name, value);
  }
  if (cookie !== null) headers.append('cookie', cookie);
  if (h2req) {
    const authority = req.headers[':authority'];
    if (!host && typeof authority === 'string') headers.set('host', authority);
  }
  return headers;
}

/** Whether a request carries a body: h1 says so in its head, h2 by not ending the stream with it. */
function hasBody(req: AnyRequest, h2req: boolean): boolean {
  if (h2req) return !(req.stream?.endAfterHeaders ?? true);
  const h = req.headers;
  return h['content-length'] !== undefined || h['transfer-encoding'] !== undefined;
}

/** Ends a response whose body broke: h2 resets the stream, h1 closes the connection (a short body must not look complete). */
function breakResponse(res: AnyResponse): void {
  const stream = (res as Http2ServerResponse).stream;
  // destroy, not close(code): Bun 1.4.5's close(code) ends the stream cleanly (END_STREAM, no RST_STREAM)
  if (stream !== undefined) stream.destroy(new Error('response body failed'));
  else (res as ServerResponse).destroy();
}

function writeHead(response: Response, res: AnyResponse, h2req: boolean): void {
  const fields = responseFields(response.headers);
  if (h2req) (res as Http2ServerResponse).writeHead(response.status, fields);
  else {
    const reason = plainReason(response.statusText);
    if (reason) (res as ServerResponse).writeHead(response.status, reason, fields);
    else (res as ServerResponse).writeHead(response.status, fields);
  }
}

async function sendResponse(response: Response, res: AnyResponse, h2req: boolean): Promise<void> {
  const body = response.body;
  if (body === null) {
    writeHead(response, res, h2req);
    res.end();
    return;
  }
  // A small body of known length goes out with its head in one write: each write is a TLS
  // record and a syscall, and socket writes were over half of Bun's CPU per small request.
  if (isSmallLength(response.headers.get('content-length'))) {
    let bytes: Uint8Array;
    try {
      bytes = await response.bytes();
    } catch {
      breakResponse(res); // nothing sent yet, and nothing true to send
      return;
    }
    if (res.destroyed) return;
    if (h2req) {
      writeHead(response, res, h2req);
      res.end(bytes);
      return;
    }
    // h1: no explicit writeHead, so the head and the body leave in one write (Bun's node:http
    // writes an explicit head at once, in a TLS record of its own).
    const out = res as ServerResponse;
    out.statusCode = response.status;
    const reason = plainReason(response.statusText);
    if (reason) out.statusMessage = reason;
    const fields = responseFields(response.headers);
    for (const name in fields) out.setHeader(name, fields[name] as string | string[]);
    const socket = out.socket;
    socket?.cork();
    out.end(bytes);
    socket?.uncork();
    return;
  }
  writeHead(response, res, h2req);
  await writeBody(body, res as BodySink, () => breakResponse(res));
}

/** The simplest answer, for requests the adapter cannot even build. */
function plainAnswer(res: AnyResponse, status: number, text: string): void {
  if (res.headersSent) {
    breakResponse(res);
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

/** What a TLS listener tracks for a graceful stop: h1 connections with their requests in flight, h2 sessions. */
export interface CompatState {
  stopping: boolean;
  readonly h1Sockets: Map<TLSSocket, number>;
  readonly sessions: Set<Http2Session>;
}

export const newCompatState = (): CompatState => ({ stopping: false, h1Sockets: new Map(), sessions: new Set() });

/** The options of the TLS server (every runtime): certificates from the store by SNI, our versions and suites, ALPN. */
export function tlsServerOptions(spec: ListenerSpec): SecureServerOptions {
  const tls = spec.tls;
  if (tls === undefined) throw new Error(`listener ${spec.name}: proto https needs TLS options`);
  const { store, clientAuth } = tls;
  const first = store.current.fallback;
  if (first === undefined) throw new Error(`listener ${spec.name}: no certificate to serve`);
  return {
    ...baseContextOptions(clientAuth?.ca ?? null),
    cert: first.pair.chainPem,
    key: first.pair.keyPem,
    allowHTTP1: true,
    ALPNProtocols: [...ALPN_PROTOCOLS],
    // The name -> context lookup is the store's, per handshake, so a swap takes effect at once.
    SNICallback(servername: string, callback: (error: Error | null, context?: SecureContext) => void) {
      callback(null, store.select(servername)?.context);
    },
    requestCert: clientAuth !== null,
    rejectUnauthorized: clientAuth?.required === true,
    handshakeTimeout: tls.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    maxSessionMemory: 10,
    // Let our own limits answer (431, 414) before the h1 parser does.
    maxHeaderSize: parserHeadLimit(spec.maxHeaderBytes),
    settings: { maxConcurrentStreams: 128 },
  } as SecureServerOptions;
}

/** node:http2's compatibility requests (h2, and h1 where node:http2 parses it) to the app. */
export function compatRequestHandler(fetch: AppFetch, spec: ListenerSpec, state: CompatState): (req: AnyRequest, res: AnyResponse) => Promise<void> {
  const listener = spec.name;
  const h1Sockets = state.h1Sockets;

  async function onRequest(req: AnyRequest, res: AnyResponse): Promise<void> {
    const h2req = req.httpVersionMajor === 2;
    let key: object;
    let socketOf: () => TLSSocket;
    if (h2req) {
      const session = (req as Http2ServerRequest).stream.session as Http2Session;
      key = session;
      socketOf = () => session.socket as TLSSocket;
    } else {
      const socket = req.socket as TLSSocket;
      key = socket;
      socketOf = () => socket;
      h1Sockets.set(socket, (h1Sockets.get(socket) ?? 0) + 1);
      res.once('close', () => {
        const left = (h1Sockets.get(socket) ?? 1) - 1;
        if (h1Sockets.has(socket)) h1Sockets.set(socket, left);
        if (state.stopping && left <= 0) socket.end();
      });
    }
    req.on('error', () => {}); // a client reset is the stream's end, not the process's
    res.on('error', () => {});

    const method = req.method as string;
    const target = req.url as string;
    const line = { method, target, version: h2req ? '2.0' : req.httpVersion };
    const abort = new AbortController();
    // h2: a reset stream still reports writableFinished (node:http2 ends its writable side on close),
    // so a response the listener never ended is the sign there.
    res.once('close', () => {
      if (!(h2req ? res.writableEnded : res.writableFinished)) abort.abort();
    });

    let request: Request;
    try {
      const headers = requestHeaders(req, h2req);
      const host = headers.get('host');
      const body = hasBody(req, h2req) ? requestBody(req) : null;
      // An h2 body without content-length reaches HTTP/1.1 upstreams chunked (RFC 9113 §8.2.2).
      if (h2req && body !== null && !headers.has('content-length')) headers.set('transfer-encoding', 'chunked');
      request = adaptedRequest(method, host, target, headers, body, abort.signal);
    } catch {
      plainAnswer(res, 400, 'bad request\n');
      return;
    }
    const bindings: Bindings = { conn: tlsConnOf(key, socketOf, listener), line };
    try {
      const response = await fetch(request, bindings);
      await sendResponse(response, res, h2req);
    } catch {
      plainAnswer(res, 500, 'internal error\n');
    }
  }

  return onRequest;
}

/** Sessions are tracked for a graceful stop; their errors end them, never the process. */
export function trackSessions(server: { on(event: 'session', listener: (session: Http2Session) => void): unknown }, state: CompatState): void {
  server.on('session', (session: Http2Session) => {
    state.sessions.add(session);
    session.on('error', () => {});
    session.once('close', () => state.sessions.delete(session));
    if (state.stopping) session.close();
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

export async function listenTls(fetch: AppFetch, spec: ListenerSpec): Promise<Listener> {
  const options = tlsServerOptions(spec);
  const state = newCompatState();
  const { h1Sockets, sessions } = state;
  const onRequest = compatRequestHandler(fetch, spec, state);
  const server = createSecureServer(options, (req, res) => void onRequest(req as AnyRequest, res as AnyResponse));
  // Handshake failures (plain HTTP, garbage, an old TLS version, a missing client certificate,
  // a handshake that never finishes) close that connection only.
  server.on('tlsClientError', (_error, socket) => socket.destroy());
  server.on('sessionError', () => {});
  trackSessions(server, state);
  server.on('secureConnection', (socket: TLSSocket) => {
    socket.on('error', () => socket.destroy());
    socket.once('close', () => h1Sockets.delete(socket));
    // h1 connections count from their handshake, so stop also ends one that has not sent a request yet.
    if (socket.alpnProtocol !== 'h2') {
      h1Sockets.set(socket, 0);
      if (state.stopping) socket.end(); // its handshake finished after stop began
    }
  });

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
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // h2: GOAWAY, streams in flight finish; h1: idle connections close now, busy ones after their response.
      for (const session of sessions) session.close();
      for (const [socket, inflight] of h1Sockets) if (inflight <= 0) socket.end();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          for (const session of sessions) session.destroy();
          for (const socket of h1Sockets.keys()) socket.destroy();
          resolve();
        }, graceMs);
      });
      await Promise.race([closed, grace]);
      clearTimeout(timer);
    },
  };
}
