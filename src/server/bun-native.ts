// Bun listener: HTTP/1.1 on Bun.listen sockets, the message-level work done by src/http1/.
//
// Why not the alternatives (docs/runtimes.md has the numbers):
// - Bun.serve is fast but drops a Content-Length set on a streamed body (oven-sh/bun#10507) and
//   rewrites the request target (dot segments, absolute-form) before the app sees it.
// - Bun's node:http is exact but its Node stream emulation cost ~30% of the CPU per request.
// Owning the bytes gives the exact target and field bytes, strict framing (RFC 9112), and a
// Content-Length that passes through untouched.
//
// This file is the socket glue and the connection's policy: one request at a time, in order
// (keep-alive and pipelining), request bodies streamed with backpressure, `Expect:
// 100-continue`, idle / slow-head / send timeouts, lingering close after an
// unread body, Upgrade handed over as a byte stream after a 101, and a graceful stop. Heads,
// framing, body decoding, chunk encoding and response heads are src/http1/'s. No TLS, no HTTP/2.
import type { Bindings, ConnInfo, RequestLine } from '../app-env.ts';
import { BODY_QUEUE, SMALL_BODY_BYTES } from '../http/buffering.ts';
import { BodyDecoder } from '../http1/body-decoder.ts';
import { type BunSocket, bunSockets, type SocketHandlers } from '../http1/bun-socket-types.ts';
import { encodeChunk, LAST_CHUNK } from '../http1/chunk-encoder.ts';
import { clock } from '../http1/clock.ts';
import { FIELDS_OK, FIELDS_TOO_MANY, framingFields, hasToken, parseFields } from '../http1/fields.ts';
import { BODY_CHUNKED, BODY_NONE, bodyRefusal, isRefusal, requestFraming } from '../http1/framing.ts';
import { HeadReader } from '../http1/head-reader.ts';
import { Outbox } from '../http1/outbox.ts';
import { BAD_GATEWAY_BODY, badGatewayHead, closingAnswer, endOfHead, type ResponseHead, responseHead, switchingHead } from '../http1/response-head.ts';
import { parseRequestLine } from '../http1/start-line.ts';
import { normalizePeer } from '../proxy/headers.ts';
import { SocketByteStream } from '../tunnel/bun-socket-stream.ts';
import type { ByteStream, ClientUpgrade } from '../tunnel/types.ts';
import { parserHeadLimit } from './head-limit.ts';
import { DEFAULT_CLIENT_LIMITS, TOO_MANY_CONNECTIONS } from './limits.ts';
import type { AppFetch, Listener, ListenerSpec } from './types.ts';

/** After answering a request whose body we did not read, keep reading (and dropping) this long. */
const LINGER_MS = 2_000;
/** Pipelined bytes held while a response goes out before the socket is paused. */
const HIGH_WATER_BYTES = 64 * 1024;

const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n');
const INTERNAL_ERROR = () => new Response('internal error\n', { status: 500, headers: { 'content-type': 'text/plain; charset=utf-8' } });

// Connection states.
const HEAD = 0; // waiting for (more of) a request head
const BODY = 1; // reading the request body into its stream
const WAIT = 2; // request read; its response is still going out (later bytes are held)
const LINGER = 3; // answered, closing: input is read and dropped until the client closes
const TUNNEL = 4; // switched protocols: bytes go to `tunnel`, HTTP is over

class Exchange {
  readonly abort = new AbortController();
  body: ReadableStreamDefaultController<Uint8Array> | null = null;
  bodyDone = true;
  /** The response head is being (or has been) written. */
  started = false;
  responded = false;
  /** Upgrade accepted: the app's Response is ignored. */
  switched = false;
  /** A chunked request held until its body's first size line is read (see startRequest). */
  held: { request: Request; env: Bindings } | null = null;
  constructor(
    readonly method: string,
    readonly http10: boolean,
    readonly hasBody: boolean,
  ) {}
}

class Conn {
  state = HEAD;
  ex: Exchange | null = null;
  /** Input not parsed yet: bytes of the next (pipelined) request, or a partial chunk line. */
  rest: Buffer | null = null;
  readonly reader: HeadReader;
  /** The start line of the head now arriving was checked already (see readHead). */
  lineChecked = false;
  readonly decoder = new BodyDecoder();
  /** Body pieces of one read, pushed into the body as one buffer (see `readBody`). */
  readonly pieces: Buffer[] = [];
  readonly onPiece = (data: Buffer) => void this.pieces.push(data);
  /**
   * When the current head started arriving (0: none pending), or when the socket went idle.
   * These stamps are Date.now(), not the coarse clock's `now`: a stamp up to a second old made
   * every timeout fire up to a second early (a 1 s idle timeout closed a connection 22 ms after
   * its answer). The sweep still runs once a second, so a timeout fires within a second after.
   */
  headSince = 0;
  idleSince: number;
  lingerSince = 0;
  /** Last time the client took bytes we wrote (the send timeout). */
  lastIo = 0;
  /** Close after the current response (Connection: close, HTTP/1.0, framing doubt, stop). */
  closing = false;
  paused = false;
  dead = false;
  readonly out = new Outbox();
  /** The connection's facts, one object for every request on it. */
  readonly info: ConnInfo;
  tunnel: SocketByteStream | null = null;
  constructor(
    readonly socket: BunSocket<Conn>,
    spec: ListenerSpec,
    maxHeadBytes: number,
  ) {
    this.idleSince = Date.now();
    // The first request's head is awaited from the connection's start: a client that connects
    // and sends nothing gets the head timeout's 408, as on node:http.
    this.headSince = Date.now();
    const remoteAddr = normalizePeer(socket.remoteAddress ?? '');
    const tls = socket.tls;
    this.info = tls === undefined ? { remoteAddr, proto: spec.proto, listener: spec.name } : { remoteAddr, proto: spec.proto, listener: spec.name, tls };
    this.reader = new HeadReader({ maxBytes: maxHeadBytes, server: true });
  }
}

class BadRequest extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The refused request is a HEAD: its answer has no body (RFC 9110 §9.3.2). */
    readonly head = false,
  ) {
    super(message);
  }
}

const EMPTY = Buffer.alloc(0);
const TOO_LARGE = 'request header fields too large';
const BARE_LF = 'bad request: line not ended by CRLF';

/** Cancels a body nobody will send; a failure to cancel changes nothing. */
const discard = (res: Response) => res.body?.cancel().catch(() => {});

/** The app's answer if it is one this server can send, else a 500 (a bug upstream of here: never crash over it). */
function finalResponse(answer: unknown): Response {
  if (answer instanceof Response && answer.status >= 200) return answer;
  console.error('switchyard: request handler returned no final Response', answer instanceof Response ? answer.status : typeof answer);
  return INTERNAL_ERROR();
}

/** The bytes of a small declared body, or null when they do not match its length. */
const matching = (bytes: Uint8Array, length: string | null): Uint8Array | null => (bytes.byteLength === Number(length) ? bytes : null);

/** Capabilities the conformance cases read (listener.cases.ts): our parser has the request line, one Conn per socket, and the byte hand-over. */
export const bunNativeListenerFeatures = { line: true, connPerSocket: true, upgradeBody: true, upgrade: 'bytes' } as const;

/**
 * The HTTP/1.1 server without its listening socket: the handlers of every connection and the
 * graceful stop of those it has. `listenBunNative` feeds it Bun.listen's sockets; the Bun TLS
 * listener (./tls.ts) feeds it node:tls sockets that negotiated http/1.1.
 */
export type Http1Conn = Conn;

export interface Http1Engine {
  readonly handlers: SocketHandlers<Conn>;
  /** Closes idle connections now and busy ones after their response, the rest after `graceMs`. */
  stop(graceMs: number): Promise<void>;
}

export async function listenBunNative(fetch: AppFetch, spec: ListenerSpec): Promise<Listener> {
  const engine = createHttp1Engine(fetch, spec);
  // allowHalfOpen: a tunnel's peer may end its side and still read ours; HTTP connections are
  // closed on the client's FIN by the engine's `end`.
  const server = bunSockets().listen({ hostname: spec.hostname, port: spec.port, allowHalfOpen: true, socket: gatedHandlers(engine.handlers, spec) });
  return {
    name: spec.name,
    proto: spec.proto,
    hostname: spec.hostname,
    port: server.port,
    async stop(graceMs) {
      server.stop(false);
      await engine.stop(graceMs);
    },
  };
}

/**
 * The engine's handlers behind the spec's connection gate (./limits.ts): a refused socket gets
 * a 503 and is closed, and never reaches the engine; an admitted one is released once, when it closes.
 */
function gatedHandlers(inner: SocketHandlers<Conn>, spec: ListenerSpec): SocketHandlers<Conn> {
  const gate = spec.gate;
  if (gate === undefined) return inner;
  const admitted = new Map<BunSocket<Conn>, string>();
  const refused = new WeakSet<BunSocket<Conn>>();
  return {
    open(socket) {
      const client = normalizePeer(socket.remoteAddress ?? '');
      if (!gate.admit(client)) {
        refused.add(socket);
        socket.write(TOO_MANY_CONNECTIONS);
        socket.end();
        return;
      }
      admitted.set(socket, client);
      inner.open?.(socket);
    },
    data(socket, chunk) {
      if (!refused.has(socket)) inner.data(socket, chunk);
    },
    drain(socket) {
      if (!refused.has(socket)) inner.drain(socket);
    },
    end(socket) {
      if (refused.has(socket)) socket.terminate();
      else inner.end(socket);
    },
    error(socket, error) {
      if (!refused.has(socket)) inner.error(socket, error);
    },
    close(socket, error) {
      const client = admitted.get(socket);
      if (client !== undefined) {
        admitted.delete(socket);
        gate.release(client);
      }
      if (!refused.has(socket)) inner.close(socket, error);
    },
  };
}

export function createHttp1Engine(fetch: AppFetch, spec: ListenerSpec): Http1Engine {
  const maxHeadBytes = parserHeadLimit(spec.maxHeaderBytes);
  const { headerTimeoutMs, idleTimeoutMs, sendTimeoutMs } = spec.limits ?? DEFAULT_CLIENT_LIMITS;
  const conns = new Set<Conn>();
  const scheme = `${spec.proto}://`;
  const upgrades = spec.upgrades === true;
  // Small responses are assembled here and written at once; never held across an await.
  const scratch = Buffer.allocUnsafe(SMALL_BODY_BYTES + 16 * 1024);
  let stopping = false;
  let onAllClosed: (() => void) | null = null;

  /**
   * Idle keep-alive, slow heads, stalled sends, lingering; tunnels are their owner's. A stalled
   * or trickling request body is the app's to judge (proxy/body-watch.ts, the same on every
   * runtime, with an access line): a second timer here raced it with a 408 of its own.
   */
  const sweep = (now: number) => {
    for (const conn of conns) {
      if (conn.state === TUNNEL) continue;
      if (conn.state === LINGER) {
        if (now - conn.lingerSince > LINGER_MS) close(conn);
      } else if (conn.out.unsent !== null) {
        if (now - conn.lastIo > sendTimeoutMs) close(conn);
      } else if (conn.state === BODY && conn.ex !== null && conn.ex.held !== null) {
        // A chunked request whose first size line has not come: still the head's time.
        if (now - conn.headSince > headerTimeoutMs) reject(conn, new BadRequest(408, 'request timeout'));
      } else if (conn.state === HEAD && conn.ex === null) {
        if (conn.headSince !== 0 && now - conn.headSince > headerTimeoutMs) reject(conn, new BadRequest(408, 'request timeout'));
        else if (conn.headSince === 0 && now - conn.idleSince > idleTimeoutMs) close(conn);
      }
    }
  };
  const unregister = clock.add(sweep);

  const close = (conn: Conn) => {
    if (conn.dead) return;
    conn.dead = true;
    conns.delete(conn);
    conn.socket.terminate();
    if (conns.size === 0) onAllClosed?.();
  };

  const resume = (conn: Conn) => {
    if (!conn.paused) return;
    conn.paused = false;
    conn.socket.resume();
  };

  /** Ends the connection after what is written, reading and dropping input for a while. */
  const linger = (conn: Conn) => {
    if (conn.dead) return;
    conn.state = LINGER;
    conn.lingerSince = Date.now();
    conn.rest = null;
    resume(conn);
    conn.socket.end();
  };

  /** Writes `length` bytes; the rest is kept by the Outbox (`bytes` may be `scratch`). */
  const write = (conn: Conn, bytes: Uint8Array, length = bytes.byteLength): Promise<void> | undefined => {
    if (conn.dead) return undefined;
    const pending = conn.out.write(conn.socket, bytes, length);
    if (pending === null) return undefined; // closed: the close handler runs
    if (pending !== undefined) conn.lastIo = Date.now();
    return pending;
  };

  const writeText = (conn: Conn, text: string): Promise<void> | undefined =>
    text.length <= scratch.byteLength ? write(conn, scratch, scratch.write(text, 0, 'latin1')) : write(conn, Buffer.from(text, 'latin1'));

  /** Refuses what cannot be parsed: a short plain answer, then the connection closes. */
  const reject = (conn: Conn, error: BadRequest) => {
    spec.onBadRequest?.({ listener: spec.name, client: conn.info.remoteAddr, status: error.status, reason: error.message });
    // An exchange in flight (its chunked body broke) is cancelled; its answer is this one.
    conn.ex?.abort.abort(new Error(error.message));
    if (conn.ex?.started) {
      // An answer is already on the wire: another one would land inside it. Cut instead.
      close(conn);
      return;
    }
    const pending = write(conn, Buffer.from(closingAnswer(error.status, error.message, clock.dateLine, !error.head), 'latin1'));
    conn.state = LINGER; // from here on, input is dropped
    if (pending === undefined) linger(conn);
    else void pending.then(() => linger(conn));
  };

  // ---- reading requests ------------------------------------------------------------------

  /** Parses `input` as far as the connection's state allows. */
  const feed = (conn: Conn, input: Buffer) => {
    let buf = input;
    while (buf.byteLength > 0 && !conn.dead) {
      switch (conn.state) {
        case LINGER:
          return;
        case TUNNEL:
          conn.tunnel?.data(buf);
          return;
        case BODY:
          buf = readBody(conn, conn.ex as Exchange, buf);
          if (conn.state === BODY) return; // all consumed, body not finished
          continue;
        case WAIT:
          // Pipelined bytes wait for the response in flight; too many and the client waits too.
          conn.rest = buf;
          if (buf.byteLength > HIGH_WATER_BYTES && !conn.paused) {
            conn.paused = true;
            conn.socket.pause();
          }
          return;
      }
      if (conn.headSince === 0) conn.headSince = Date.now();
      if (!readHead(conn, buf)) return;
      buf = conn.reader.rest;
    }
  };

  /** Feeds a read to the head reader; true when a request started (its rest is `reader.rest`). */
  const readHead = (conn: Conn, buf: Buffer): boolean => {
    const reader = conn.reader;
    const result = reader.read(buf);
    if (result === 'incomplete') {
      // A request line that has ended but can start no request (HTTP/0.9's `GET /`, a bad
      // version) is refused now: waiting for an empty line that may never come helps nobody.
      const line = reader.startLine;
      if (line !== null && !conn.lineChecked) {
        conn.lineChecked = true;
        const parsed = parseRequestLine(line, line.length);
        if (typeof parsed === 'string') reject(conn, new BadRequest(400, parsed));
      }
      return false;
    }
    conn.lineChecked = false;
    if (result === 'too-large') reject(conn, new BadRequest(431, TOO_LARGE));
    else if (result === 'bare-lf') reject(conn, new BadRequest(400, BARE_LF));
    if (result !== 'complete') return false;
    try {
      startRequest(conn, conn.reader.head);
    } catch (error) {
      if (!(error instanceof BadRequest)) throw error;
      reject(conn, error);
      return false;
    }
    return true;
  };

  /** Passes body bytes to the request's stream; returns what follows the body. */
  const readBody = (conn: Conn, ex: Exchange, buf: Buffer): Buffer => {
    const decoder = conn.decoder;
    const pieces = conn.pieces;
    let rest: Buffer;
    try {
      rest = decoder.decode(buf, conn.onPiece);
    } catch (error) {
      pieces.length = 0;
      ex.body?.error(error);
      ex.body = null;
      ex.bodyDone = true;
      reject(conn, new BadRequest(400, 'bad request: invalid chunked body'));
      return EMPTY;
    }
    const held = ex.held;
    if (held !== null && decoder.sized) {
      ex.held = null;
      dispatch(conn, ex, held.request, held.env);
    }
    // Pieces of one read go into the body as one buffer: a body of 1-byte chunks must not
    // become a queue of tiny Buffers (their overhead dwarfs the bytes the queue counts).
    if (pieces.length === 1) push(conn, ex, pieces[0] as Buffer);
    else if (pieces.length > 1) push(conn, ex, Buffer.concat(pieces));
    pieces.length = 0;
    if (!decoder.done) {
      conn.rest = rest.byteLength > 0 ? rest : null; // a partial chunk line
      return EMPTY;
    }
    ex.bodyDone = true;
    try {
      ex.body?.close();
    } catch {
      // the app cancelled the body already
    }
    ex.body = null;
    conn.state = WAIT;
    if (ex.responded) exchangeDone(conn, ex);
    return rest;
  };

  const push = (conn: Conn, ex: Exchange, data: Buffer) => {
    const body = ex.body;
    if (body === null || data.byteLength === 0) return; // cancelled by the app: dropped
    body.enqueue(data);
    if ((body.desiredSize ?? 1) <= 0 && !conn.paused) {
      conn.paused = true;
      conn.socket.pause();
    }
  };

  const requestBody = (conn: Conn, ex: Exchange) =>
    new ReadableStream<Uint8Array>(
      {
        start(controller) {
          ex.body = controller;
        },
        pull() {
          if (conn.paused && conn.state === BODY) resume(conn);
        },
        cancel() {
          // The app will not read the rest: drop it, and do not reuse this connection.
          ex.body = null;
          conn.closing = true;
          resume(conn);
        },
      },
      BODY_QUEUE,
    );

  /** Parses a complete head and hands the request to the app. Throws BadRequest. */
  const startRequest = (conn: Conn, text: string) => {
    let eol = text.indexOf('\r\n');
    if (eol < 0) eol = text.length;
    const line = parseRequestLine(text, eol);
    if (typeof line === 'string') throw new BadRequest(400, line);
    // No open proxy: a CONNECT is refused and its connection closed, as node:http's is (node.ts),
    // before anything could take the bytes after it for a tunnel.
    if (line.method === 'CONNECT') throw new BadRequest(501, 'not implemented: CONNECT');
    // TRACE echoes the request (cookies, credentials) back (cross-site tracing); no proxy of
    // ours forwards it (nginx answers 405). Node's and Deno's Request cannot carry it anyway.
    if (line.method === 'TRACE') throw new BadRequest(501, 'not implemented: TRACE');
    const http10 = line.version === '1.0';
    const headers = new Headers();
    const fields = framingFields();
    // RFC 9112 §5: no whitespace before a colon, no obsolete line folding, no control characters.
    const parsed = parseFields(text, eol + 2, headers, false, fields);
    if (parsed === FIELDS_TOO_MANY) throw new BadRequest(431, TOO_LARGE);
    if (parsed !== FIELDS_OK) throw new BadRequest(400, 'bad request: malformed header field');
    const connection = fields.connection;
    // Framing in doubt is answered here and the connection closes: the app never sees the
    // request, and nothing after it on this connection is parsed (framing.ts says which).
    const framing = requestFraming(fields, http10);
    if (isRefusal(framing)) throw new BadRequest(framing.status, framing.message, line.method === 'HEAD');
    const bodyless = bodyRefusal(line.method, framing);
    if (bodyless !== null) throw new BadRequest(bodyless.status, bodyless.message, line.method === 'HEAD');
    const hasBody = framing.kind !== BODY_NONE;
    if (hasToken(connection, 'close') || (http10 && !hasToken(connection, 'keep-alive')) || stopping) conn.closing = true;

    const ex = new Exchange(line.method, http10, hasBody);
    conn.ex = ex;
    let body: ReadableStream<Uint8Array> | null = null;
    if (hasBody) {
      ex.bodyDone = false;
      conn.decoder.start(framing.kind, framing.length);
      body = requestBody(conn, ex);
      conn.state = BODY;
      if (!http10 && fields.expect !== null && fields.expect.toLowerCase() === '100-continue') void write(conn, CONTINUE);
    } else conn.state = WAIT;

    const request = toRequest(line, fields.host, headers, body, ex.abort.signal);
    // RFC 9110 §7.8: an Upgrade the client asks for in Connection may be taken over by the app.
    const env: Bindings =
      upgrades && hasToken(connection, 'upgrade') && headers.has('upgrade')
        ? { conn: conn.info, line, upgrade: clientUpgrade(conn, ex) }
        : { conn: conn.info, line };
    // A chunked body reaches the app once its first chunk-size line has parsed: a size line
    // that breaks the framing is then a 400 of ours with nothing sent upstream. (A later chunk
    // can still break mid-stream: the upstream then sees a cut body, never a second request.)
    // Until then the head timeout still runs.
    if (framing.kind === BODY_CHUNKED) ex.held = { request, env };
    else dispatch(conn, ex, request, env);
  };

  /** Hands a request to the app; its answer goes out through `respond`. */
  const dispatch = (conn: Conn, ex: Exchange, request: Request, env: Bindings) => {
    conn.headSince = 0;
    let response: Response | Promise<Response>;
    try {
      response = fetch(request, env);
    } catch (error) {
      response = Promise.reject(error);
    }
    if (response instanceof Response) void respond(conn, ex, response);
    else
      Promise.resolve(response).then(
        (r) => respond(conn, ex, r),
        (error) => {
          // The app maps its own failures; reaching here is a bug. Never crash.
          console.error('switchyard: request handler failed', error);
          return respond(conn, ex, INTERNAL_ERROR());
        },
      );
  };

  /**
   * The Request the app gets. Bun's turns a method it does not know into GET (and uppercases
   * those it knows): the exact method travels in `line`. Absolute-form stays as sent so the
   * guard can compare it with Host; asterisk-form (`OPTIONS *`) reaches the app through `line`.
   */
  const toRequest = (line: RequestLine, host: string | null, headers: Headers, body: ReadableStream<Uint8Array> | null, signal: AbortSignal) => {
    const target = line.target;
    const first = target.charCodeAt(0);
    const url = first === 47 /* / */ ? `${scheme}${host ?? 'localhost'}${target}` : first === 42 /* * */ ? `${scheme}${host ?? 'localhost'}/*` : target;
    try {
      return new Request(url, { method: line.method, headers, body, signal, duplex: 'half' } as RequestInit);
    } catch {
      // Not a URL (a Host no URL parser accepts, an odd target), or a method fetch forbids.
      throw new BadRequest(400, 'bad request: invalid Host header or request target');
    }
  };

  // ---- switching protocols ---------------------------------------------------------------

  const clientUpgrade = (conn: Conn, ex: Exchange): ClientUpgrade => ({ kind: 'bytes', accept: (headers) => acceptUpgrade(conn, ex, headers) });

  /** Writes the 101 and turns the connection into a byte stream (RFC 9110 §15.2.2). */
  const acceptUpgrade = (conn: Conn, ex: Exchange, headers: Headers): ByteStream => {
    // Bytes after a request body would be ambiguous (body or new protocol?): refuse.
    if (ex.hasBody) throw new Error('an upgrade request with a body cannot be switched');
    if (ex.started || ex.switched || conn.dead || conn.ex !== ex) throw new Error('the request was answered or its connection is gone');
    ex.switched = true;
    ex.started = true;
    ex.responded = true;
    conn.ex = null;
    conn.state = TUNNEL;
    void writeText(conn, switchingHead(headers));
    const first = conn.rest;
    conn.rest = null;
    resume(conn); // pipelined bytes may have paused it: they are the new protocol's now
    conn.tunnel = new SocketByteStream(conn.socket, conn.out, first);
    return conn.tunnel;
  };

  // ---- writing responses -----------------------------------------------------------------

  /** The connection can still take this exchange's answer. */
  const answering = (conn: Conn, ex: Exchange) => !conn.dead && conn.state !== LINGER && !ex.switched;

  /**
   * Writes the app's answer. Never rejects. The small-body path awaits only what it must (the
   * body, a write the socket did not take at once): each await is a promise per request.
   */
  const respond = async (conn: Conn, ex: Exchange, answer: unknown): Promise<void> => {
    const res = finalResponse(answer);
    // Client gone, the connection already answered with an error, or switched protocols.
    if (!answering(conn, ex)) return void (await discard(res));
    ex.started = true;
    const head = responseHead(ex.method, ex.http10, res, clock.dateLine);
    if (head.untilClose) conn.closing = true;
    let sent = true;
    if (head.body === null) {
      // HEAD, 204, 304: whatever body the app made is not sent.
      if (res.body !== null) await discard(res);
      const pending = sendWhole(conn, ex, head.text, null);
      if (pending !== undefined) await pending;
    } else if (head.length !== null && Number(head.length) <= SMALL_BODY_BYTES) {
      let bytes: Uint8Array | null;
      try {
        bytes = matching(new Uint8Array(await res.arrayBuffer()), head.length);
      } catch {
        bytes = null;
      }
      // A small body that broke on its way becomes a clean 502, never a truncated answer.
      const pending = bytes === null ? sendWhole(conn, ex, badGatewayHead(clock.dateLine), BAD_GATEWAY_BODY) : sendWhole(conn, ex, head.text, bytes);
      if (pending !== undefined) await pending;
    } else sent = await sendStreamed(conn, ex, head);
    ex.responded = true;
    // The body broke mid-way: cut the connection so the client sees a truncated response,
    // never a clean end (RFC 9112 §6.3).
    if (!sent) return close(conn);
    if (conn.dead || conn.state === LINGER) return;
    if (!ex.bodyDone) {
      // Answered before the request body was read whole (a 413, a 421): nobody will read the
      // rest, so drop it and close; lingering lets the client see this answer first.
      const body = ex.body;
      ex.body = null;
      ex.bodyDone = true;
      try {
        body?.error(new Error('response sent before the request body was read'));
      } catch {
        // already cancelled
      }
      conn.closing = true;
    }
    exchangeDone(conn, ex);
  };

  /** A head (without its end) and a whole body in one write, through a buffer reused by every response. */
  const sendWhole = (conn: Conn, ex: Exchange, head: string, bytes: Uint8Array | null): Promise<void> | undefined => {
    if (!answering(conn, ex)) return undefined;
    // The whole answer is in hand: if the request body is not, this connection ends after it.
    if (!ex.bodyDone || stopping) conn.closing = true;
    const text = head + endOfHead(conn.closing, ex.http10);
    if (bytes === null) return writeText(conn, text);
    const total = text.length + bytes.byteLength;
    const out = total <= scratch.byteLength ? scratch : Buffer.allocUnsafe(total);
    out.write(text, 0, 'latin1');
    out.set(bytes, text.length);
    return write(conn, out, total);
  };

  /** The head, then the body as it comes. False when the body broke or broke its length. */
  const sendStreamed = async (conn: Conn, ex: Exchange, head: ResponseHead): Promise<boolean> => {
    if (stopping) conn.closing = true;
    await writeText(conn, head.text + endOfHead(conn.closing, ex.http10));
    try {
      await streamBody(conn, head.body as ReadableStream<Uint8Array>, head.chunked, head.length === null ? -1 : Number(head.length));
      return true;
    } catch {
      return false;
    }
  };

  const streamBody = async (conn: Conn, body: ReadableStream<Uint8Array>, chunked: boolean, declared: number) => {
    const reader = body.getReader();
    let sent = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (conn.dead) {
        await reader.cancel(new Error('client closed the connection')).catch(() => {});
        return;
      }
      if (done) break;
      if (value.byteLength === 0) continue;
      sent += value.byteLength;
      if (declared >= 0 && sent > declared) throw new Error('response body longer than its Content-Length');
      const pending = write(conn, chunked ? encodeChunk(value) : value);
      if (pending !== undefined) await pending;
    }
    if (chunked) await write(conn, LAST_CHUNK);
    else if (declared >= 0 && sent !== declared) throw new Error('response body does not match its Content-Length');
  };

  /** Request read and response written: next request, or close. */
  const exchangeDone = (conn: Conn, ex: Exchange) => {
    if (conn.ex !== ex || conn.dead) return;
    conn.ex = null;
    if (conn.closing) {
      // The client may still be sending a body we never read: linger so it sees our answer.
      linger(conn);
      return;
    }
    conn.state = HEAD;
    conn.idleSince = Date.now();
    const rest = conn.rest;
    conn.rest = null;
    resume(conn);
    if (rest === null) return;
    try {
      feed(conn, rest); // the next pipelined request
    } catch (error) {
      console.error('switchyard: connection handler failed', error);
      close(conn);
    }
  };

  const handlers: SocketHandlers<Conn> = {
    open(socket) {
      const conn = new Conn(socket, spec, maxHeadBytes);
      socket.data = conn;
      if (stopping) {
        close(conn);
        return;
      }
      conns.add(conn);
    },
    data(socket, chunk) {
      const conn = socket.data;
      if (conn.dead || conn.state === LINGER) return;
      try {
        if (conn.state === TUNNEL) conn.tunnel?.data(chunk);
        else if (conn.reader.pending) {
          // The rest of a head (http1/head-reader.ts looks at the new bytes only).
          if (readHead(conn, chunk)) feed(conn, conn.reader.rest);
        } else {
          const rest = conn.rest;
          conn.rest = null;
          feed(conn, rest === null ? chunk : Buffer.concat([rest, chunk]));
        }
      } catch (error) {
        // A bug in this parser; never crash the process over one connection.
        console.error('switchyard: connection handler failed', error);
        close(conn);
      }
    },
    drain(socket) {
      const conn = socket.data;
      conn.lastIo = Date.now();
      conn.out.drain(socket);
    },
    close(socket, error) {
      const conn = socket.data;
      if (conn === undefined) return;
      const ex = conn.ex;
      if (ex !== null) {
        // Client gone: cancel the upstream exchange at once (logged as 499 by the app).
        if (!ex.responded) ex.abort.abort(new Error('client closed the connection'));
        if (ex.body !== null) {
          try {
            ex.body.error(new Error('client closed the connection'));
          } catch {
            // already closed
          }
          ex.body = null;
        }
      }
      conn.tunnel?.closed(error);
      conn.dead = true;
      if (conns.delete(conn) && conns.size === 0) onAllClosed?.();
      conn.out.release();
    },
    end(socket) {
      const conn = socket.data;
      if (conn.dead) return;
      if (conn.tunnel !== null) {
        // A tunnel is half-closed: the peer is done sending, our side may still write.
        conn.tunnel.end();
        return;
      }
      // The client closed its side: like nginx, a request still in flight counts as abandoned
      // (499), so the upstream exchange is cancelled at once.
      handlers.close(socket);
      socket.terminate();
    },
    error(socket) {
      const conn = socket.data;
      if (conn !== undefined) close(conn);
    },
  };

  return {
    handlers,
    async stop(graceMs) {
      stopping = true;
      const allClosed = new Promise<void>((resolve) => {
        onAllClosed = resolve;
      });
      // Idle connections go now; busy ones after their response (Connection: close), tunnels
      // at the end of the grace period.
      for (const conn of conns) if (conn.ex === null && conn.state !== TUNNEL) close(conn);
      if (conns.size > 0) {
        const timer = setTimeout(() => {
          for (const conn of [...conns]) close(conn);
        }, graceMs);
        await allClosed;
        clearTimeout(timer);
      }
      unregister();
    },
  };
}
