// Bun transport for http: upstreams: HTTP/1.1 written and parsed by us on Bun.connect sockets.
//
// Why: on Bun, undici runs over the node:net emulation with its wasm parser and costs ~50 us of
// CPU per small request; the same exchange on a native Bun socket costs ~15 us (docs/runtimes.md).
// Bun's fetch is faster too but is no option: it adds User-Agent/Accept and rewrites paths.
// Owning the bytes also keeps every transport promise: the target and Host exactly as given,
// nothing invented, no decompression, redirects returned, keep-alive pooled per origin.
//
// Scope: one exchange per connection at a time (no pipelining), Content-Length, chunked and
// close-delimited response bodies (RFC 9112 §6.3), 1xx answers skipped, trailers dropped (as the
// other transport does). https: upstreams go to undici until the TLS work (see ./index.ts).
import { ChunkedDecoder } from '../http1/chunked.ts';
import { FIELDS_OK, framingFields, hasToken, parseFields } from '../http1/fields.ts';
import { HeadBuffer } from '../http1/head-buffer.ts';
import { Outbox } from '../http1/outbox.ts';
import type { ClosableTransport, UpstreamInit } from './types.ts';

// The parts of Bun's socket API used here, typed locally so Deno and Node type-check this file.
interface BunSocket {
  data: Conn;
  write(data: Uint8Array, byteOffset?: number, byteLength?: number): number;
  end(): void;
  terminate(): void;
  pause(): void;
  resume(): void;
}
interface SocketHandlers {
  data(socket: BunSocket, chunk: Buffer): void;
  drain(socket: BunSocket): void;
  close(socket: BunSocket, error?: Error): void;
  end(socket: BunSocket): void;
  error(socket: BunSocket, error: Error): void;
}
interface BunConnect {
  connect(options: { hostname: string; port: number; data: Conn; socket: SocketHandlers }): Promise<BunSocket>;
}

/** Longest response head (status line and fields) accepted from an upstream. */
const MAX_HEAD_BYTES = 64 * 1024;
/** Bytes queued per response body before the socket is paused (backpressure). */
const BODY_HIGH_WATER_BYTES = 64 * 1024;
/** A declared body this small is awaited whole and handed over as bytes (like nginx's buffers). */
const SMALL_BODY_BYTES = 64 * 1024;
/** Request heads up to this size are encoded into one reused buffer. */
const SCRATCH_BYTES = 64 * 1024;
/** Idle keep-alive connections close after this long (undici's default is 4 s as well). */
const IDLE_SECONDS = 4;

const CRLF = Buffer.from('\r\n');
const EMPTY = Buffer.alloc(0);
const CRLFCRLF = Buffer.from('\r\n\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');
const PLAIN_REASON = /^[\t\x20-\x7e]*$/;
const STATUS_DIGITS = /^\d{3}$/;
const DIGITS = /^\d+$/;
// RFC 9110: these statuses never carry a body, and the Response constructor rejects one.
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

// Parser phases of one exchange.
const HEAD = 0;
const BODY = 1;
const DONE = 2;
// Body framings (RFC 9112 §6.3).
const LENGTH = 0;
const CHUNKED = 1;
const UNTIL_CLOSE = 2;

function upstreamError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** Where one origin's connections go, and its idle keep-alive connections (LIFO). */
interface Pool {
  /** Addresses to try in order; `localhost` offers both loopbacks (RFC 8305 spirit). */
  readonly hosts: string[];
  readonly port: number;
  /** Index in `hosts` of the address that last accepted a connection. */
  preferred: number;
  readonly idle: Conn[];
}

class Conn {
  socket: BunSocket | null = null;
  ex: Exchange | null = null;
  /** Unparsed bytes carried over to the next `data` callback (a partial chunk line). */
  rest: Buffer | null = null;
  /** A response head still arriving. */
  readonly head = new HeadBuffer();
  /** Request bytes the socket did not take yet, and who waits for them to drain. */
  readonly out = new Outbox();
  dead = false;
  reused = false;
  /** When it went back to the pool (for the idle sweep). */
  idleSince = 0;
  constructor(readonly pool: Pool) {}
}

class Exchange {
  phase = HEAD;
  framing = LENGTH;
  /** LENGTH: body bytes still due. */
  remaining = 0;
  /** CHUNKED: the body's decoder (http1/chunked.ts, limits on lines and trailers included). */
  chunked: ChunkedDecoder | null = null;
  keepAlive = true;
  /** The request (head and body) is fully written. */
  requestDone = false;
  /** Any byte of the response arrived (a stale keep-alive connection gets none). */
  gotBytes = false;
  settled = false;
  head: ResponseInit | null = null;
  /** Small declared body being collected whole; null when streaming. */
  whole: Buffer[] | null = null;
  wholeBytes = 0;
  stream: ReadableStreamDefaultController<Uint8Array> | null = null;
  paused = false;
  /** Body bytes are read for framing only (a 205's). */
  discard = false;
  /** Set once the exchange is over, whichever way. */
  finished = false;
  /** The connection the request went out on (undefined while connecting). */
  conn: Conn | undefined = undefined;
  /** Sent on a pooled connection (which the upstream may have just closed). */
  onPooled = false;
  retried = false;
  resolve!: (response: Response) => void;
  reject!: (error: unknown) => void;
  onAbort!: () => void;
  constructor(
    readonly pool: Pool,
    readonly method: string,
    /** The request head, serialised. */
    readonly requestHead: string,
    readonly body: ReadableStream<Uint8Array> | null,
    readonly declared: number | null,
    readonly signal: AbortSignal,
  ) {}
}

export function createBunSocketTransport(): ClosableTransport {
  const bun = (globalThis as unknown as { Bun: BunConnect }).Bun;
  const pools = new Map<string, Pool>();
  // Request heads are encoded here and written at once; never held across an await.
  const scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  const live = new Set<Conn>();
  let closed = false;

  const poolFor = (origin: string): Pool => {
    let pool = pools.get(origin);
    if (pool === undefined) {
      const url = new URL(origin);
      const name = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
      const hosts = name === 'localhost' || name.endsWith('.localhost') ? ['127.0.0.1', '::1'] : [name];
      pool = { hosts, port: Number(url.port || 80), preferred: 0, idle: [] };
      pools.set(origin, pool);
    }
    return pool;
  };

  // ---- connection life -------------------------------------------------------------------

  const kill = (conn: Conn) => {
    if (conn.dead) return;
    conn.dead = true;
    live.delete(conn);
    const at = conn.pool.idle.indexOf(conn);
    if (at >= 0) conn.pool.idle.splice(at, 1);
    conn.socket?.terminate();
    // A request body writer waiting for the socket to drain must learn it never will.
    conn.out.release();
  };

  const release = (conn: Conn) => {
    conn.ex = null;
    if (conn.dead || closed || conn.out.unsent !== null) return kill(conn);
    conn.reused = true;
    conn.idleSince = now;
    conn.pool.idle.push(conn);
  };

  // One timer for every pool: the clock the idle check reads, and closing connections idle
  // longer than IDLE_SECONDS (a timer per connection would cost two native calls per request).
  let now = Date.now();
  const sweep = setInterval(() => {
    now = Date.now();
    for (const pool of pools.values()) {
      for (const conn of [...pool.idle]) if (now - conn.idleSince > IDLE_SECONDS * 1000) kill(conn);
    }
  }, 1_000);
  (sweep as { unref?: () => void }).unref?.();

  const connect = async (pool: Pool): Promise<Conn> => {
    let lastError: unknown;
    for (let i = 0; i < pool.hosts.length; i++) {
      const at = (pool.preferred + i) % pool.hosts.length;
      const conn = new Conn(pool);
      try {
        conn.socket = await bun.connect({ hostname: pool.hosts[at] as string, port: pool.port, data: conn, socket: handlers });
        pool.preferred = at;
        live.add(conn);
        return conn;
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  };

  // ---- the exchange ----------------------------------------------------------------------

  /** Ends an exchange that failed: the caller's promise rejects, or its body stream errors. */
  const failExchange = (conn: Conn, ex: Exchange, error: unknown) => {
    if (ex.finished) return;
    if (conn.ex === ex) conn.ex = null;
    kill(conn);
    // A pooled connection the upstream closed a moment ago fails before any answer: an
    // idempotent request without a body is tried once more on a fresh connection. The upstream
    // may have acted on the first one, which is why only idempotent methods qualify (RFC 9110
    // §9.2.2; nginx does not retry POST, PATCH or LOCK either).
    if (ex.onPooled && !ex.retried && ex.body === null && !ex.gotBytes && !ex.settled && !ex.signal.aborted && !closed && IDEMPOTENT.has(ex.method)) {
      ex.retried = true;
      ex.onPooled = false;
      ex.conn = undefined;
      ex.phase = HEAD;
      open(ex, true);
      return;
    }
    ex.finished = true;
    ex.phase = DONE;
    ex.signal.removeEventListener('abort', ex.onAbort);
    if (!ex.settled) {
      ex.settled = true;
      ex.reject(error);
    } else if (ex.stream !== null) {
      try {
        ex.stream.error(error);
      } catch {
        // the consumer cancelled already
      }
    }
  };

  /** The response is complete: hand over what is pending and reuse the connection if we may. */
  const finishResponse = (conn: Conn, ex: Exchange) => {
    ex.phase = DONE;
    if (ex.whole !== null) {
      const parts = ex.whole;
      const bytes = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, ex.wholeBytes);
      ex.settled = true;
      ex.resolve(new Response(bytes as unknown as Uint8Array<ArrayBuffer>, ex.head as ResponseInit));
    } else if (ex.stream !== null) {
      try {
        ex.stream.close();
      } catch {
        // cancelled by the consumer; nothing to hand over
      }
    }
    if (!ex.requestDone) {
      // The upstream answered before taking the whole body (a 413, say). It may have stopped
      // reading, so stop sending and close: a half-written request cannot be reused (nginx too).
      ex.keepAlive = false;
      ex.requestDone = true;
    }
    endExchange(conn, ex);
  };

  const endExchange = (conn: Conn, ex: Exchange) => {
    if (ex.phase !== DONE || !ex.requestDone || ex.finished) return;
    ex.finished = true;
    ex.signal.removeEventListener('abort', ex.onAbort);
    if (ex.paused) conn.socket?.resume();
    if (ex.keepAlive && conn.rest === null) release(conn);
    else {
      conn.ex = null;
      kill(conn);
    }
  };

  const settleStreaming = (conn: Conn, ex: Exchange) => {
    const body = new ReadableStream<Uint8Array>(
      {
        start(controller) {
          ex.stream = controller;
        },
        pull() {
          if (ex.paused && !conn.dead) {
            ex.paused = false;
            conn.socket?.resume();
          }
        },
        cancel(reason) {
          // The consumer left (client gone): the rest of this body is not wanted.
          ex.stream = null;
          failExchange(conn, ex, reason instanceof Error ? reason : new Error('response body cancelled'));
        },
      },
      // A per-chunk overhead is counted too: a body of tiny chunks must not pile up unseen.
      { highWaterMark: BODY_HIGH_WATER_BYTES, size: (chunk?: Uint8Array) => (chunk?.byteLength ?? 0) + 256 },
    );
    ex.settled = true;
    ex.resolve(new Response(body, ex.head as ResponseInit));
  };

  const deliver = (conn: Conn, ex: Exchange, bytes: Buffer) => {
    if (bytes.byteLength === 0 || ex.discard) return;
    if (ex.whole !== null) {
      ex.whole.push(bytes);
      ex.wholeBytes += bytes.byteLength;
      return;
    }
    const stream = ex.stream;
    if (stream === null) return; // consumer gone; the exchange is failing
    stream.enqueue(bytes);
    if ((stream.desiredSize ?? 1) <= 0 && !ex.paused) {
      ex.paused = true;
      conn.socket?.pause();
    }
  };

  /** Parses a response head; an interim (1xx) answer is skipped, leaving the phase at HEAD. */
  const onHead = (conn: Conn, ex: Exchange, text: string): void => {
    // Status line: HTTP/1.x SP 3DIGIT [SP reason] (RFC 9112 §4).
    let eol = text.indexOf('\r\n');
    if (eol < 0) eol = text.length;
    const minor = text.charCodeAt(7);
    if (!text.startsWith('HTTP/1.') || (minor !== 48 && minor !== 49) || text.charCodeAt(8) !== 32 || (eol > 12 && text.charCodeAt(12) !== 32)) {
      throw upstreamError('invalid status line', 'UPSTREAM_INVALID_RESPONSE');
    }
    const digits = text.slice(9, 12);
    if (!STATUS_DIGITS.test(digits)) throw upstreamError('invalid status line', 'UPSTREAM_INVALID_RESPONSE');
    const code = Number(digits);
    if (code < 100 || code > 599) throw upstreamError(`invalid status ${code}`, 'UPSTREAM_INVALID_STATUS');
    // We never ask to switch protocols (Upgrade is hop-by-hop and removed), so a 101 is an error.
    if (code === 101) throw upstreamError('unexpected 101 Switching Protocols', 'UPSTREAM_INVALID_RESPONSE');
    if (code < 200) return;
    const headers = new Headers();
    const fields = framingFields();
    if (parseFields(text, eol + 2, headers, true, fields) !== FIELDS_OK) throw upstreamError('invalid response header fields', 'UPSTREAM_INVALID_RESPONSE');
    let length: string | null = null;
    if (fields.contentLength !== null) {
      // Repeated or listed lengths must agree (RFC 9112 §6.3 item 5).
      for (const part of fields.contentLength.split(',')) {
        const n = part.trim();
        if (!DIGITS.test(n) || (length !== null && n !== length)) throw upstreamError('invalid Content-Length', 'UPSTREAM_INVALID_RESPONSE');
        length = n;
      }
      // Listed or repeated: pass one value on.
      if (length !== fields.contentLength) headers.set('content-length', length as string);
    }
    const coding = fields.transferEncoding;
    ex.keepAlive = minor === 48 ? hasToken(fields.connection, 'keep-alive') : !hasToken(fields.connection, 'close');
    const reason = eol > 13 ? text.slice(13, eol) : '';
    const head: ResponseInit = { status: code, statusText: PLAIN_REASON.test(reason) ? reason : '', headers };
    // RFC 9112 §6.3: these end at the empty line whatever their fields say (205 is not one
    // of them: it may carry an empty framed body, which is read and dropped below).
    const bodiless = code === 204 || code === 304 || ex.method === 'HEAD';
    if (bodiless) {
      // Their framing fields describe the body a GET would get; they travel on as they are.
      ex.framing = LENGTH;
      ex.remaining = 0;
    } else if (coding !== null) {
      // We decode chunked and nothing else, and Transfer-Encoding does not travel on: any other
      // coding would reach the client unmarked. Both TE and CL, or TE in HTTP/1.0, are a
      // framing doubt (RFC 9112 §6.1, §6.3): the connection is not reused.
      if (coding.trim().toLowerCase() !== 'chunked') throw upstreamError(`unsupported transfer coding "${coding}"`, 'UPSTREAM_INVALID_RESPONSE');
      if (length !== null || minor === 48) ex.keepAlive = false;
      // Transfer-Encoding overrides Content-Length, which must not travel on (RFC 9112 §6.3).
      headers.delete('content-length');
      length = null;
      ex.framing = CHUNKED;
      ex.chunked = new ChunkedDecoder();
    } else if (length !== null) {
      ex.framing = LENGTH;
      ex.remaining = Number(length);
    } else {
      ex.framing = UNTIL_CLOSE;
      ex.keepAlive = false;
    }
    ex.head = head;
    if (bodiless || (ex.framing === LENGTH && ex.remaining === 0)) {
      ex.settled = true;
      ex.resolve(new Response(null, head));
      ex.phase = DONE;
      return;
    }
    ex.phase = BODY;
    if (NULL_BODY_STATUS.has(code)) {
      // A 205 with a framed body: the Response can carry none, so its bytes are read and dropped.
      ex.discard = true;
      ex.settled = true;
      ex.resolve(new Response(null, head));
      return;
    }
    if (ex.framing === LENGTH && ex.remaining <= SMALL_BODY_BYTES) ex.whole = [];
    else settleStreaming(conn, ex);
  };

  /** Feeds response bytes through the parser. Throws on a malformed response. */
  const parse = (conn: Conn, ex: Exchange, input: Buffer) => {
    let buf = input;
    while (buf.byteLength > 0) {
      if (ex.phase === HEAD) {
        const end = buf.indexOf(CRLFCRLF);
        if (end < 0) {
          // (+3: a read may end inside the final CRLFCRLF of a head exactly at the limit)
          if (buf.byteLength > MAX_HEAD_BYTES + 3) throw upstreamError('response head too large', 'UPSTREAM_INVALID_RESPONSE');
          conn.head.push(buf);
          return;
        }
        if (end > MAX_HEAD_BYTES) throw upstreamError('response head too large', 'UPSTREAM_INVALID_RESPONSE');
        const text = buf.toString('latin1', 0, end);
        buf = end + 4 === buf.byteLength ? EMPTY : buf.subarray(end + 4);
        onHead(conn, ex, text); // an interim 1xx leaves the phase at HEAD: parse the next head
        continue;
      }
      if (ex.phase === DONE) break;
      if (ex.framing === UNTIL_CLOSE) {
        deliver(conn, ex, buf);
        return;
      }
      if (ex.framing === LENGTH) {
        const take = Math.min(ex.remaining, buf.byteLength);
        const all = take === buf.byteLength;
        deliver(conn, ex, all ? buf : buf.subarray(0, take));
        ex.remaining -= take;
        buf = all ? EMPTY : buf.subarray(take);
        if (ex.remaining === 0) ex.phase = DONE;
        continue;
      }
      // Chunked (RFC 9112 §7.1): the decoder the server uses for request bodies.
      const decoder = ex.chunked as ChunkedDecoder;
      let rest: Buffer;
      try {
        rest = decoder.decode(buf, (data) => deliver(conn, ex, data));
      } catch (error) {
        throw upstreamError(`invalid chunked body: ${(error as Error).message}`, 'UPSTREAM_INVALID_RESPONSE');
      }
      if (!decoder.done) {
        conn.rest = rest.byteLength > 0 ? rest : null;
        return;
      }
      ex.phase = DONE;
      buf = rest;
      break;
    }
    if (ex.phase === DONE) {
      // Bytes after a complete response: we never pipeline, so the upstream is confused.
      if (buf.byteLength > 0) ex.keepAlive = false;
      finishResponse(conn, ex);
    }
  };

  /** The connection ended (FIN, reset or error) while `ex` was running on it. */
  const onEof = (conn: Conn, ex: Exchange, error: Error | undefined) => {
    if (ex.phase === BODY && ex.framing === UNTIL_CLOSE && error === undefined) {
      ex.keepAlive = false;
      ex.requestDone = true;
      finishResponse(conn, ex);
      return;
    }
    const reason = error ?? upstreamError('upstream closed the connection', 'ECONNRESET');
    if (ex.phase === DONE) {
      // The response is complete; only the request body was still going (an early answer).
      ex.keepAlive = false;
      ex.requestDone = true;
      endExchange(conn, ex);
      return;
    }
    failExchange(conn, ex, reason);
  };

  const handlers: SocketHandlers = {
    data(socket, chunk) {
      const conn = socket.data;
      const ex = conn.ex;
      if (ex === null || ex.phase === DONE) {
        // Bytes nobody asked for (an idle connection, or after a full answer): not reusable.
        if (ex !== null) ex.keepAlive = false;
        else kill(conn);
        return;
      }
      ex.gotBytes = true;
      try {
        const head = conn.head;
        if (head.size > 0) {
          // The rest of a head: only the new bytes are looked at (see http1/head-buffer.ts).
          const whole = head.push(chunk);
          if (whole === null) {
            if (head.size > MAX_HEAD_BYTES + 3) throw upstreamError('response head too large', 'UPSTREAM_INVALID_RESPONSE');
            return;
          }
          parse(conn, ex, whole);
          return;
        }
        const rest = conn.rest;
        conn.rest = null;
        parse(conn, ex, rest === null ? chunk : Buffer.concat([rest, chunk]));
      } catch (error) {
        failExchange(conn, ex, error);
      }
    },
    drain(socket) {
      socket.data.out.drain(socket);
    },
    close(socket, error) {
      const conn = socket.data;
      const ex = conn.ex;
      if (ex !== null && !ex.finished) onEof(conn, ex, error);
      kill(conn); // also wakes a writer waiting for a drain
    },
    end(socket) {
      // The upstream closed its side: treat as the end of the connection.
      handlers.close(socket);
    },
    error(socket, error) {
      handlers.close(socket, error);
    },
  };

  /**
   * Writes `length` bytes of `bytes`; returns undefined when the socket took them all, else a
   * promise for the drain. The rest is kept by the Outbox: `bytes` may be the scratch buffer.
   */
  const write = (conn: Conn, bytes: Uint8Array, length = bytes.byteLength): Promise<void> | undefined => {
    const pending = conn.dead ? null : conn.out.write(conn.socket as BunSocket, bytes, length);
    if (pending === null) throw upstreamError('upstream closed the connection', 'ECONNRESET');
    return pending;
  };

  /** Writes a request head (latin1: header values are byte strings) through the scratch buffer. */
  const writeHead = (conn: Conn, head: string): Promise<void> | undefined => {
    if (head.length > scratch.byteLength) return write(conn, Buffer.from(head, 'latin1'));
    return write(conn, scratch, scratch.write(head, 0, 'latin1'));
  };

  /** Streams the request body: as declared, or chunked when no length was given. */
  const sendBody = async (conn: Conn, ex: Exchange, body: ReadableStream<Uint8Array>, declared: number | null) => {
    const reader = body.getReader();
    let sent = 0;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (ex.finished || conn.dead) {
          await reader.cancel().catch(() => {});
          return;
        }
        if (done) break;
        if (ex.phase === DONE) {
          // The upstream answered before taking the whole body (a 413, say): stop sending, and
          // do not reuse a connection whose request is half-written (nginx does the same).
          ex.keepAlive = false;
          await reader.cancel().catch(() => {});
          break;
        }
        if (value.byteLength === 0) continue;
        let pending: Promise<void> | undefined;
        if (declared === null) {
          const size = Buffer.from(`${value.byteLength.toString(16)}\r\n`, 'latin1');
          pending = write(conn, Buffer.concat([size, value, CRLF]));
        } else {
          sent += value.byteLength;
          if (sent > declared) throw new Error('request body longer than its Content-Length');
          pending = write(conn, value);
        }
        if (pending !== undefined) await pending;
      }
      if (ex.phase !== DONE || ex.keepAlive) {
        if (declared === null) await write(conn, LAST_CHUNK);
        else if (sent !== declared) throw new Error('request body shorter than its Content-Length');
      }
    } catch (error) {
      // The client's body broke (client gone, body limit) or the upstream went away.
      failExchange(conn, ex, ex.signal.aborted ? ex.signal.reason : error);
      return;
    }
    ex.requestDone = true;
    endExchange(conn, ex);
  };

  const start = (conn: Conn, ex: Exchange, head: string, body: ReadableStream<Uint8Array> | null, declared: number | null) => {
    conn.ex = ex;
    conn.rest = null;
    const pending = writeHead(conn, head);
    if (body === null) {
      // The request is done once its head is on the wire, not before: a connection with
      // request bytes still queued must never carry the next request.
      if (pending === undefined) ex.requestDone = true;
      else
        pending.then(() => {
          if (conn.dead) return;
          ex.requestDone = true;
          endExchange(conn, ex);
        });
      return;
    }
    if (pending === undefined) void sendBody(conn, ex, body, declared);
    else
      pending.then(
        () => sendBody(conn, ex, body, declared),
        (error) => failExchange(conn, ex, error),
      );
  };

  const abortExchange = (ex: Exchange) => {
    const reason = ex.signal.reason;
    if (ex.conn !== undefined && ex.conn.ex === ex) failExchange(ex.conn, ex, reason);
    else if (!ex.settled) {
      // Still connecting: the connection goes to the pool when it opens.
      ex.settled = true;
      ex.finished = true;
      ex.reject(reason);
    }
  };

  /** Sends `ex` on a pooled connection, or on a new one (`fresh` skips the pool). */
  const open = (ex: Exchange, fresh: boolean) => {
    const idle = ex.pool.idle;
    while (!fresh && idle.length > 0) {
      const conn = idle.pop() as Conn;
      if (conn.dead) continue;
      ex.onPooled = true;
      run(ex, conn);
      return;
    }
    connect(ex.pool).then(
      (conn) => {
        if (closed && !ex.finished) {
          // close() ran while this connection was opening: the exchange is cut like the rest.
          ex.finished = true;
          ex.settled = true;
          ex.signal.removeEventListener('abort', ex.onAbort);
          ex.reject(upstreamError('proxy shutting down', 'ECONNRESET'));
        }
        if (ex.finished) return release(conn);
        run(ex, conn);
      },
      (error) => {
        if (ex.finished) return;
        ex.finished = true;
        ex.settled = true;
        ex.signal.removeEventListener('abort', ex.onAbort);
        ex.reject(error);
      },
    );
  };

  const run = (ex: Exchange, conn: Conn) => {
    ex.conn = conn;
    try {
      start(conn, ex, ex.requestHead, ex.body, ex.declared);
    } catch (error) {
      failExchange(conn, ex, error);
    }
  };

  return {
    name: 'bun-socket',
    fetch(url: string, init: UpstreamInit): Promise<Response> {
      const pathStart = url.indexOf('/', url.indexOf('//') + 2);
      const pool = poolFor(url.slice(0, pathStart));
      const { method, headers, body, signal } = init;
      let text = `${method} ${url.slice(pathStart)} HTTP/1.1\r\n`;
      for (const [name, value] of headers) text += `${name}: ${value}\r\n`;
      const length = headers.get('content-length');
      const declared = body !== null && length !== null ? Number(length) : null;
      if (body !== null && length === null) text += 'transfer-encoding: chunked\r\n';
      const ex = new Exchange(pool, method, `${text}\r\n`, body, declared, signal);
      return new Promise<Response>((resolve, reject) => {
        if (closed) return reject(upstreamError('transport closed', 'ECONNRESET'));
        if (signal.aborted) return reject(signal.reason);
        ex.resolve = resolve;
        ex.reject = reject;
        ex.onAbort = () => abortExchange(ex);
        signal.addEventListener('abort', ex.onAbort, { once: true });
        open(ex, false);
      });
    },
    async close() {
      closed = true;
      clearInterval(sweep);
      for (const conn of [...live]) {
        const ex = conn.ex;
        if (ex !== null) failExchange(conn, ex, upstreamError('proxy shutting down', 'ECONNRESET'));
        kill(conn);
      }
    },
  };
}
