// node:http listener through @hono/node-server's request listener: connection facts once per
// socket, the request line as node:http parsed it, the hand-over of a connection after a 101
// ('upgrade' event, kind 'bytes'), binding and graceful stop. No TLS, no HTTP/2 (issue 7).
import { createServer, type IncomingMessage, type Server, type ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { getRequestListener, type Http2Bindings, type HttpBindings } from '@hono/node-server';
import type { Bindings, ConnInfo } from '../app-env.ts';
import { requestDeclaresBody } from '../http/body-rules.ts';
import { switchingHead } from '../http1/response-head.ts';
import { normalizePeer } from '../proxy/headers.ts';
import { duplexByteStream } from '../tunnel/node-socket-stream.ts';
import type { ByteStream } from '../tunnel/types.ts';
import { bindServer } from './bind.ts';
import { parserHeadLimit } from './head-limit.ts';
import type { AppFetch, Listener, ListenerSpec } from './types.ts';

/** Capabilities the conformance cases read (listener.cases.ts). */
export const nodeListenerFeatures = { line: true, connPerSocket: true, upgradeBody: true, upgrade: 'bytes' } as const;

// Per-socket and per-upgrade state, kept on node's own objects: no lookup table per request.
const CONN = Symbol('switchyard.conn');
const UPGRADE = Symbol('switchyard.upgrade');
type TaggedSocket = Socket & { [CONN]?: ConnInfo };
type UpgradeRequest = IncomingMessage & { [UPGRADE]?: BytesUpgrade };

/** node:http options: limits left to the proxy, no deadline for a whole request, 60 s for its head. */
function serverOptions(spec: ListenerSpec): ServerOptions {
  return {
    // Let our own limits answer (431 for fields, 414 for the target, each <= 16 KiB).
    maxHeaderSize: parserHeadLimit(spec.maxHeaderBytes),
    // Node's 300 s default would cut a slow 1 GiB upload; the proxy bounds waits per route.
    requestTimeout: 0,
    // With requestTimeout 0 Node 20 sets no head deadline at all (headersTimeout follows it):
    // a slowloris client could hold a connection for ever. 60 s, like Bun's listener (408).
    headersTimeout: 60_000,
  };
}

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

/** The request head as node:http parsed it, for a second parse by a server without an 'upgrade' listener. */
function headBytes(req: IncomingMessage): Buffer {
  let out = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) out += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return Buffer.from(`${out}\r\n`, 'latin1');
}

export async function listenNode(fetch: AppFetch, spec: ListenerSpec): Promise<Listener> {
  const proto = spec.proto;
  const listener = spec.name;
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
    return response;
  });

  const options = serverOptions(spec);
  const server = createServer(options, onRequest);
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
        // must, and its head timeout does not apply to them (noted for issue 8).
        replay ??= createServer(options, onRequest);
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
  server.on('connection', (socket: TaggedSocket) => void connOf(socket));

  const port = await bindServer(server, spec);
  return {
    name: spec.name,
    proto,
    hostname: spec.hostname,
    port,
    async stop(graceMs) {
      // close() stops accepting and resolves once every connection is gone; idle keep-alive
      // connections go now, busy ones when their response ends or the grace period runs out.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // A connection whose request finishes goes back to keep-alive; close those as they idle.
      const closeIdle = () => {
        server.closeIdleConnections();
        replay?.closeIdleConnections();
      };
      closeIdle();
      const sweep = setInterval(closeIdle, 50);
      const timer = setTimeout(() => {
        server.closeAllConnections();
        replay?.closeAllConnections();
        for (const socket of detached) socket.destroy();
      }, graceMs);
      await closed;
      clearInterval(sweep);
      clearTimeout(timer);
    },
  };
}
