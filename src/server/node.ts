// Node's HTTP/1.1 server: node:http through @hono/node-server's request listener, fed sockets
// by the plain listener (./net-engine.ts listenPlain, behind the connection gate) and by the
// TLS listener (./tls.ts, those that negotiated http/1.1). Connection facts once per socket, the
// request line as node:http parsed it, the hand-over of a connection after a 101 ('upgrade'
// event, kind 'bytes'), the client limits (./limits.ts) and the graceful stop.
import { createServer, type IncomingMessage, type Server, type ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { getRequestListener, type Http2Bindings, type HttpBindings } from '@hono/node-server';
import type { Bindings, ConnInfo, TlsFacts } from '../app-env.ts';
import { requestDeclaresBody } from '../http/body-rules.ts';
import { CONNECTION_SPECIFIC } from '../http/hop-by-hop.ts';
import { clock } from '../http1/clock.ts';
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
type TaggedSocket = Socket & { [CONN]?: ConnInfo };
type UpgradeRequest = IncomingMessage & { [UPGRADE]?: BytesUpgrade };

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

/** The plain listener on Node: sockets accepted behind the gate, served by node:http. */
export const listenNode = (fetch: AppFetch, spec: ListenerSpec): Promise<Listener> => listenPlain(nodeHttp1(fetch, spec), spec);

/** node:http as our Http1Server: it never listens itself, sockets are handed to it. */
export function nodeHttp1(fetch: AppFetch, spec: ListenerSpec): Http1Server {
  const proto = spec.proto;
  const listener = spec.name;
  const sendTimeoutMs = (spec.limits ?? DEFAULT_CLIENT_LIMITS).sendTimeoutMs;
  const connOf = (socket: TaggedSocket): ConnInfo => {
    let conn = socket[CONN];
    if (conn === undefined) {
      conn = { remoteAddr: normalizePeer(socket.remoteAddress ?? ''), proto, listener };
      socket[CONN] = conn;
    }
    return conn;
  };

  // One request path for every request; those node:http handed over on 'upgrade' (only with
  // `spec.upgrades`) carry their hand-over, and what the app answers after accepting goes nowhere.
  const onRequest = getRequestListener(async function nodeRequest(request: Request, env: HttpBindings | Http2Bindings) {
    const incoming = env.incoming as UpgradeRequest;
    const upgrade = incoming[UPGRADE];
    const line = { method: incoming.method as string, target: incoming.url as string, version: incoming.httpVersion };
    const bindings: Bindings = upgrade === undefined ? { conn: connOf(incoming.socket), line } : { conn: connOf(incoming.socket), line, upgrade };
    const response = await fetch(request, bindings);
    if (upgrade?.accepted) {
      await response.body?.cancel().catch(() => {}); // nothing left to tell
      return new Response(null, { headers: { 'x-hono-already-sent': '1' } });
    }
    if (response.body !== null && !response.headers.has('content-type')) keepContentTypeAbsent(env.outgoing);
    return withoutConnectionFields(response);
  });

  // Requests in flight per connection: stop() ends a connection with none at once, even one
  // that never sent a request (node:http's closeIdleConnections counts those as busy).
  const inflight = new Map<Socket, number>();
  let stopping = false;
  const options = serverOptions(spec);
  const server = createServer(options, function nodeHttpRequest(req: IncomingMessage, res: ServerResponse) {
    const socket = req.socket;
    inflight.set(socket, (inflight.get(socket) ?? 0) + 1);
    res.once('close', () => {
      const left = (inflight.get(socket) ?? 1) - 1;
      if (!inflight.has(socket)) return;
      inflight.set(socket, left);
      if (stopping && left <= 0) socket.end();
    });
    return onRequest(req, res);
  });
  // Sockets node:http handed over on 'upgrade': it no longer tracks them, stop() must.
  const detached = new Set<Socket>();
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
        // The replay server never listens, so node:http tracks none of its connections: stop()
        if (replay === null) {
          replay = createServer(options, onRequest);
          replay.emit('listening'); // its head-timeout checks, as for `server`
        }
        detached.add(socket);
        socket.once('close', () => detached.delete(socket));
        socket.unshift(Buffer.concat([headBytes(req), head]));
        replay.emit('connection', socket);
        return;
      }
      detached.add(socket);
      socket.once('close', () => detached.delete(socket));
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
  const open = new Map<Socket, number>(); // socket -> when its writes last stalled (0: not stalled)
  // On the shared one-second clock (http1/clock.ts), which also keeps its Date line current.
  const unregister = clock.add((now) => {
    for (const [socket, since] of open) {
      if (!socket.writableNeedDrain) {
        if (since !== 0) open.set(socket, 0);
      } else if (since === 0) open.set(socket, now);
      else if (now - since > sendTimeoutMs) socket.destroy();
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
      open.set(socket, 0);
      inflight.set(socket, 0);
      socket.on('drain', () => open.has(socket) && open.set(socket, 0));
      socket.once('close', () => {
        open.delete(socket);
        inflight.delete(socket);
      });
      server.emit('connection', socket);
    },
    async stop(graceMs) {
      stopping = true;
      for (const [socket, count] of inflight) if (count <= 0 && !detached.has(socket)) socket.end();
      // Idle keep-alive connections go now, busy ones when their response ends or the grace
      // period runs out; close() resolves once every connection is gone.
      // Not listening, so close() reports ERR_SERVER_NOT_RUNNING at once; it still closes the
      // idle connections and ends the head-timeout checks. The wait is for `open` to empty.
      server.close(() => {});
      // A connection whose request finishes goes back to keep-alive; close those as they idle.
      const closeIdle = () => {
        server.closeIdleConnections();
        replay?.closeIdleConnections();
      };
      closeIdle();
      const sweepIdle = setInterval(closeIdle, 50);
      const timer = setTimeout(() => {
        server.closeAllConnections();
        replay?.closeAllConnections();
        for (const socket of detached) socket.destroy();
        for (const socket of open.keys()) socket.destroy();
      }, graceMs);
      await allGone();
      clearInterval(sweepIdle);
      unregister();
      clearTimeout(timer);
    },
  };

  /** Resolves once no connection handed to this server is open. */
  function allGone(): Promise<void> {
    return new Promise((resolve) => {
      const check = () => (open.size === 0 ? resolve() : setTimeout(check, 20));
      check();
    });
  }
}
