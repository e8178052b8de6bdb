// Node's HTTP/1.1 server: node:http through @hono/node-server's request listener, fed sockets
// by the plain listener (./net-engine.ts listenPlain, behind the connection gate) and by the
// TLS listener (./tls.ts, those that negotiated http/1.1). Connection facts once per socket, the
// request line as node:http parsed it, the hand-over of a connection after a 101 ('upgrade'
// event, kind 'bytes'), the client limits (./limits.ts) and the graceful stop.
import { createServer, type IncomingMessage, type Server, type ServerOptions, ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { getRequestListener, type Http2Bindings, type HttpBindings } from '@hono/node-server';
import type { Bindings, ConnInfo, TlsFacts } from '../app-env.ts';
import { requestDeclaresBody } from '../http/body-rules.ts';
import { CONNECTION_SPECIFIC } from '../http/hop-by-hop.ts';
import { plainReason } from '../http/reason.ts';
import { clock } from '../http1/clock.ts';
import { framingFields } from '../http1/fields.ts';
import { bodyRefusal, type FramingRefusal, isRefusal, requestFraming } from '../http1/framing.ts';
import { closingAnswer, switchingHead } from '../http1/response-head.ts';
import { normalizePeer } from '../proxy/headers.ts';
import { duplexByteStream } from '../tunnel/node-socket-stream.ts';
import type { ByteStream } from '../tunnel/types.ts';
import { parserHeadLimit } from './head-limit.ts';
import { DEFAULT_CLIENT_LIMITS } from './limits.ts';
import { listenPlain } from './net-engine.ts';
import type { AppFetch, Http1Server, Listener, ListenerSpec } from './types.ts';

/** Capabilities the conformance cases read (listener.cases.ts). */
export const nodeListenerFeatures = { line: true, connPerSocket: true, upgradeBody: true, upgrade: 'bytes' } as const;

// Per-socket and per-upgrade state, kept on node's own objects: no lookup table per request.
const CONN = Symbol('switchyard.conn');
const UPGRADE = Symbol('switchyard.upgrade');
const REFUSED = Symbol('switchyard.refused');
const ASTERISK = Symbol('switchyard.asterisk');
type TaggedSocket = Socket & { [CONN]?: ConnInfo; [REFUSED]?: true };
type UpgradeRequest = IncomingMessage & { [UPGRADE]?: BytesUpgrade; [ASTERISK]?: true };

/** node:http options: limits left to the proxy, no deadline for a whole request, the spec's for a head and an idle connection. */
function serverOptions(spec: ListenerSpec): ServerOptions {
  const limits = spec.limits ?? DEFAULT_CLIENT_LIMITS;
  return {
    // Let our own limits answer (431 for fields, 414 for the target, each <= 16 KiB).
    maxHeaderSize: parserHeadLimit(spec.maxHeaderBytes),
    // Node's 300 s default would cut a slow 1 GiB upload; bodies have their own limits (forward).
    requestTimeout: 0,
    // A head must arrive whole within this long (408), checked every second rather than 30.
    headersTimeout: limits.headerTimeoutMs,
    connectionsCheckingInterval: 1_000,
    // node:http closes an idle keep-alive socket 1 s after keepAliveTimeout (its
    // HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER, against clients racing the advertised timeout):
    // ask 1 s less, so it closes at idleTimeoutMs like our server (never under 1 s: 0 is "never").
    keepAliveTimeout: Math.max(1, limits.idleTimeoutMs - NODE_KEEP_ALIVE_BUFFER_MS),
  };
}

/** What node:http adds to keepAliveTimeout before it closes an idle socket (Node 20). */
const NODE_KEEP_ALIVE_BUFFER_MS = 1_000;
/** What a CONNECT gets (the app's words for it, proxy/guard.ts). */
const CONNECT_REFUSED = 'not implemented: CONNECT';
/** After refusing input, how long the client's further bytes are read and dropped. */
const LINGER_MS = 2_000;

/** node:http's client error codes, as our server answers the same input (bun-native.ts). */
const CLIENT_ERROR_STATUS: Readonly<Record<string, number>> = {
  ERR_HTTP_REQUEST_TIMEOUT: 408,
  HPE_HEADER_OVERFLOW: 431,
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 413,
};
const CLIENT_ERROR_REASON: Readonly<Record<number, string>> = {
  400: 'bad request',
  408: 'request timeout',
  413: 'payload too large',
  431: 'request header fields too large',
};

/**
 * @hono/node-server writes `content-type: text/plain` on any body without one; a proxy must not
 * invent headers, so for those (rare) responses this writeHead drops the injected field.
 */
function keepContentTypeAbsent(outgoing: { writeHead: (...args: never[]) => unknown }): void {
  const original = outgoing.writeHead as (this: unknown, status: number, headers?: Record<string, unknown>) => unknown;
  outgoing.writeHead = function writeHeadWithoutDefaultType(this: unknown, status: number, headers?: Record<string, unknown>) {
    if (headers && typeof headers === 'object' && !Array.isArray(headers)) delete headers['content-type'];
    return original.call(this, status, headers);
  } as never;
}

/**
 * The 'bytes' hand-over for one upgrade request. node:http has already given the socket up
 * (no parser on it); until `accept`, a ServerResponse on it answers the request the normal
 * way, with `Connection: close` since nothing parses what follows.
 */
class BytesUpgrade {
  readonly kind = 'bytes';
  accepted = false;
  constructor(
    private readonly socket: Socket,
    private readonly res: ServerResponse,
    private readonly head: Buffer,
  ) {}

  accept(headers: Headers): ByteStream {
    if (this.accepted) throw new Error('upgrade already accepted');
    if (this.res.headersSent) throw new Error('cannot accept an upgrade after the response started');
    this.accepted = true;
    this.res.detachSocket(this.socket);
    // RFC 9110 §15.2.2: the 101 names the protocol(s) switched to in Upgrade.
    this.socket.write(switchingHead(headers), 'latin1');
    // Bytes the client sent right behind its head belong to the new protocol.
    if (this.head.byteLength > 0) this.socket.unshift(this.head);
    return duplexByteStream(this.socket);
  }
}

/**
 * The response without connection-specific fields (http/hop-by-hop.ts): the transport never
 * returns them, but an answer that carried one would reach the client as a framing or upgrade
 * claim node:http did not make. Copied only in that rare case (fetch's headers may be immutable).
 */
function withoutConnectionFields(response: Response): Response {
  const headers = response.headers;
  let found = false;
  for (const name of CONNECTION_SPECIFIC) if (headers.has(name)) found = true;
  if (!found) return response;
  const clean = new Headers(headers);
  for (const name of CONNECTION_SPECIFIC) clean.delete(name);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers: clean });
}

/** The request head as node:http parsed it, for a second parse by a server without an 'upgrade' listener. */
function headBytes(req: IncomingMessage): Buffer {
  let out = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) out += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return Buffer.from(`${out}\r\n`, 'latin1');
}

/**
 * What our engine's requestFraming (http1/framing.ts) says of the head llhttp parsed: null when
 * it frames it too. Repeated fields are joined as our engine joins them, from rawHeaders
 * (node:http keeps only the first Content-Length in `headers`).
 */
function framingRefusal(req: IncomingMessage): FramingRefusal | null {
  const raw = req.rawHeaders;
  let fields: ReturnType<typeof framingFields> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    // Only names of these two lengths can matter: compare lowercased copies of those alone.
    if (name.length !== 14 && name.length !== 17) continue;
    const lower = name.toLowerCase();
    const value = raw[i + 1] as string;
    if (lower === 'content-length') {
      fields ??= framingFields();
      fields.contentLength = fields.contentLength === null ? value : `${fields.contentLength}, ${value}`;
    } else if (lower === 'transfer-encoding') {
      fields ??= framingFields();
      fields.transferEncoding = fields.transferEncoding === null ? value : `${fields.transferEncoding}, ${value}`;
    }
  }
  if (fields === null) return null;
  const framing = requestFraming(fields, req.httpVersion === '1.0');
  return isRefusal(framing) ? framing : bodyRefusal(req.method ?? '', framing);
}

/** Our engine's answer to a refused head (response-head.ts closingAnswer), through node:http so it queues behind earlier pipelined answers. */
function refuseOnResponse(res: ServerResponse, refusal: FramingRefusal): void {
  const body = `${refusal.message}\n`;
  res.shouldKeepAlive = false;
  res.writeHead(refusal.status, plainReason(STATUS_CODES[refusal.status] ?? ''), {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  });
  res.end(body);
}

/** The plain listener on Node: sockets accepted behind the gate, served by node:http. */
export const listenNode = (fetch: AppFetch, spec: ListenerSpec): Promise<Listener> => listenPlain(nodeHttp1(fetch, spec), spec);

/** node:http as our Http1Server: it never listens itself, sockets are handed to it. */
export function nodeHttp1(fetch: AppFetch, spec: ListenerSpec): Http1Server {
  const proto = spec.proto;
  const listener = spec.name;
  const sendTimeoutMs = (spec.limits ?? DEFAULT_CLIENT_LIMITS).sendTimeoutMs;
  // Per connection handed to this server: its requests in flight (stop() ends a connection with
  // none at once, even one that never sent a request: node:http's closeIdleConnections counts
  // those as busy) and when its writes last stalled (0: not stalled; the send timeout).
  const conns = new Map<Socket, { inflight: number; stalledSince: number }>();
  let stopping = false;
  let onAllGone: (() => void) | null = null;

  // One request path for every request; those node:http handed over on 'upgrade' (only with
  // `spec.upgrades`) carry their hand-over, and what the app answers after accepting goes nowhere.
  const onRequest = getRequestListener(async function nodeRequest(request: Request, env: HttpBindings | Http2Bindings) {
    const incoming = env.incoming as UpgradeRequest;
    const upgrade = incoming[UPGRADE];
    const line = { method: incoming.method as string, target: incoming[ASTERISK] ? '*' : (incoming.url as string), version: incoming.httpVersion };
    // Set by `connection` on every socket this server gets.
    const conn = (incoming.socket as TaggedSocket)[CONN] as ConnInfo;
    const bindings: Bindings = upgrade === undefined ? { conn, line } : { conn, line, upgrade };
    const response = await fetch(request, bindings);
    if (upgrade?.accepted) {
      await response.body?.cancel().catch(() => {}); // nothing left to tell
      return new Response(null, { headers: { 'x-hono-already-sent': '1' } });
    }
    if (response.body !== null && !response.headers.has('content-type')) keepContentTypeAbsent(env.outgoing);
    // @hono/node-server writes the status alone; node:http then takes `statusMessage` as the
    // reason, so the upstream's (plain: http/reason.ts) reaches the client as on Bun and Deno.
    const reason = response.statusText;
    if (reason !== '' && reason !== undefined) (env.outgoing as ServerResponse).statusMessage = plainReason(reason) || (STATUS_CODES[response.status] ?? '');
    return withoutConnectionFields(response);
  });

  const options = serverOptions(spec);
  // Every request node:http parses, on `server` and on `replay`, is counted on its connection.
  const countedRequest = (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket as TaggedSocket;
    // llhttp has framed this request already, and any pipelined behind it: node:http emits
    // their 'request' events one after the other, in the same tick, from one read. So the
    // framing our engine refuses is refused here, before the app, and every later request on
    // that connection is dropped unanswered (the connection closes after the refusal).
    if (socket[REFUSED] === true) return;
    const refusal = framingRefusal(req);
    if (refusal !== null) {
      socket[REFUSED] = true;
      spec.onBadRequest?.({ listener, client: normalizePeer(socket.remoteAddress ?? ''), status: refusal.status, reason: refusal.message });
      refuseOnResponse(res, refusal);
      req.resume(); // what llhttp reads as its body is dropped
      return;
    }
    // @hono/node-server answers a bare 400 to any target not starting with "/": `OPTIONS *` is
    // the app's to answer (guard.ts), so it gets a URL and the target travels in `line`.
    if (req.url === '*') {
      (req as UpgradeRequest)[ASTERISK] = true;
      req.url = '/';
    }
    const state = conns.get(socket);
    if (state !== undefined) {
      state.inflight++;
      res.once('close', () => {
        if (--state.inflight <= 0 && stopping) socket.destroySoon();
      });
    }
    return onRequest(req, res);
  };
  const server = createServer(options, countedRequest);
  // Sockets handed over on 'upgrade' (tunnels, and the upgrade requests answered as ordinary
  // ones): stop() leaves them to their owner, and to the end of the grace period.
  const upgraded = new Set<Socket>();
  // Upgrade requests with a body are parsed again by a server that takes no upgrades.
  let replay: Server | null = null;

  // Without an 'upgrade' listener node:http treats requests with Upgrade as ordinary ones.
  if (spec.upgrades === true)
    server.on('upgrade', function nodeUpgrade(req: UpgradeRequest, socket: Socket, head: Buffer) {
      // node:http removed its own listeners; a reset must not become an uncaught 'error'.
      socket.on('error', () => socket.destroy());
      if (requestDeclaresBody(req.headers['content-length'], req.headers['transfer-encoding'])) {
        // node:http skipped the body of an upgrade request (it sits in `head`). Upgrades happen
        // after a complete request (RFC 9110 §7.8), and no client of ours sends one with a
        // body; such a request is answered as an ordinary one, as before listeners took upgrades.
        if (replay === null) {
          replay = createServer(options, countedRequest);
          replay.emit('listening'); // its head-timeout checks, as for `server`
        }
        socket.unshift(Buffer.concat([headBytes(req), head]));
        replay.emit('connection', socket);
        return;
      }
      upgraded.add(socket);
      socket.once('close', () => upgraded.delete(socket));
      const res = new ServerResponse(req);
      res.shouldKeepAlive = false;
      res.assignSocket(socket);
      res.once('finish', () => {
        res.detachSocket(socket);
        socket.destroySoon();
      });
      req[UPGRADE] = new BytesUpgrade(socket, res, head);
      void onRequest(req, res);
    });
  // CONNECT never reaches the app on node:http (its own 'connect' event; with no listener the
  // socket is just destroyed): answered here as the app answers it on Bun and Deno (guard.ts).
  server.on('connect', function nodeConnect(_req: IncomingMessage, socket: Socket) {
    socket.on('error', () => socket.destroy());
    spec.onBadRequest?.({ listener, client: normalizePeer(socket.remoteAddress ?? ''), status: 501, reason: CONNECT_REFUSED });
    socket.end(closingAnswer(501, CONNECT_REFUSED, clock.dateLine), 'latin1');
    socket.resume();
    setTimeout(() => socket.destroy(), LINGER_MS).unref?.();
  });
  // Input node:http refuses before it is a request gets our server's answer (the same status,
  // a short body, Connection: close) and the same `bad request` report, not node's bare one.
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (error.code === 'ECONNRESET' || error.code === 'EPIPE' || !socket.writable || socket.bytesWritten > 0) {
      socket.destroy();
      return;
    }
    const status = CLIENT_ERROR_STATUS[error.code ?? ''] ?? 400;
    const reason = CLIENT_ERROR_REASON[status] ?? 'bad request';
    spec.onBadRequest?.({ listener, client: normalizePeer(socket.remoteAddress ?? ''), status, reason });
    socket.end(closingAnswer(status, reason, clock.dateLine), 'latin1');
    // Read and drop what the client still sends, so our answer is not lost to a reset.
    socket.resume();
    setTimeout(() => socket.destroy(), LINGER_MS).unref?.();
  });

  // node:http starts its head-timeout checks (and connection list) on 'listening'; this server
  // never listens, its sockets are handed to it.
  server.emit('listening');

  // A client that takes none of our bytes for sendTimeoutMs while node's buffer is full is cut
  // (node:http has no send timeout; its socket timeout would also cut a quiet SSE stream).
  // On the shared one-second clock (http1/clock.ts), which also keeps its Date line current.
  const unregister = clock.add((now) => {
    for (const [socket, state] of conns) {
      if (!socket.writableNeedDrain) state.stalledSince = 0;
      else if (state.stalledSince === 0) state.stalledSince = now;
      else if (now - state.stalledSince > sendTimeoutMs) socket.destroy();
    }
  });

  return {
    connection(socket: TaggedSocket, tls?: TlsFacts) {
      const remoteAddr = normalizePeer(socket.remoteAddress ?? '');
      socket[CONN] = tls === undefined ? { remoteAddr, proto, listener } : { remoteAddr, proto, listener, tls };
      if (stopping) {
        socket.destroy();
        return;
      }
      const state = { inflight: 0, stalledSince: 0 };
      conns.set(socket, state);
      socket.on('drain', () => {
        state.stalledSince = 0;
      });
      socket.once('close', () => {
        conns.delete(socket);
        if (conns.size === 0) onAllGone?.();
      });
      server.emit('connection', socket);
    },
    async stop(graceMs) {
      stopping = true;
      const allGone = new Promise<void>((resolve) => {
        onAllGone = resolve;
        if (conns.size === 0) resolve();
      });
      // Connections without a request in flight close now, the others when their response
      // ends (countedRequest), whatever is left when the grace period runs out.
      for (const [socket, state] of conns) if (state.inflight <= 0 && !upgraded.has(socket)) socket.destroySoon();
      // Neither server listens, so close() reports ERR_SERVER_NOT_RUNNING at once; it still
      // ends their head-timeout checks.
      server.close(() => {});
      replay?.close(() => {});
      const timer = setTimeout(() => {
        for (const socket of conns.keys()) socket.destroy();
      }, graceMs);
      await allGone;
      unregister();
      clearTimeout(timer);
    },
  };
}
