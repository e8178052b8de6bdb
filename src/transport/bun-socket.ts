// Bun transport for http: upstreams: HTTP/1.1 written and parsed by us on Bun.connect sockets.
//
// Why: on Bun, undici runs over the node:net emulation with its wasm parser and costs ~50 us of
// CPU per small request; the same exchange on a native Bun socket costs ~15 us (docs/runtimes.md).
// Bun's fetch is faster too but is no option: it adds User-Agent/Accept and rewrites paths.
// Owning the bytes also keeps every transport promise: the target and Host exactly as given,
// nothing invented, no decompression, redirects returned, keep-alive pooled per origin.
//
// This file is the socket glue and the pool: one exchange per connection at a time (no
// pipelining), 1xx answers skipped, trailers dropped (as the other transport does), a 101 handed
// over as a byte stream by `upgrade`. Heads, framing, body decoding and chunk encoding are
// src/http1/'s; retry policy is proxy/retry.ts's (failures say what happened, see UpstreamError).
// https: upstreams go to undici until the TLS work (see ./index.ts).
import { bodilessHeaders, responseBodyIsNull } from '../http/body-rules.ts';
import { BODY_QUEUE, SMALL_BODY_BYTES } from '../http/buffering.ts';
import { BodyDecoder } from '../http1/body-decoder.ts';
import { type BunSocket, bunSockets, type SocketHandlers } from '../http1/bun-socket-types.ts';
import { encodeChunk, LAST_CHUNK } from '../http1/chunk-encoder.ts';
import { clock } from '../http1/clock.ts';
import { FIELDS_OK, framingFields, parseFields } from '../http1/fields.ts';
import { BODY_CHUNKED, BODY_LENGTH, BODY_NONE, BODY_UNTIL_CLOSE, responseFraming } from '../http1/framing.ts';
import { HeadReader } from '../http1/head-reader.ts';
import { Outbox } from '../http1/outbox.ts';
import { parseStatusLine } from '../http1/start-line.ts';
import { SocketByteStream } from '../tunnel/bun-socket-stream.ts';
import type { UpgradeResult } from '../tunnel/types.ts';
import { IDLE_KEEP_ALIVE_MS, type Transport, UpstreamError, type UpstreamInit } from './types.ts';

/** Longest response head (status line and fields) accepted from an upstream. */
const MAX_HEAD_BYTES = 64 * 1024;
/** Request heads up to this size are encoded into one reused buffer. */
const SCRATCH_BYTES = 64 * 1024;

// Parser phases of one exchange.
const HEAD = 0;
const BODY = 1;
const DONE = 2;

const INVALID = 'UPSTREAM_INVALID_RESPONSE';

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
  socket: BunSocket<Conn> | null = null;
  ex: Exchange | null = null;
  /** Unparsed bytes carried over to the next `data` callback (a partial chunk line). */
  rest: Buffer | null = null;
  readonly reader = new HeadReader({ maxBytes: MAX_HEAD_BYTES, server: false });
  readonly decoder = new BodyDecoder();
  /** Request bytes the socket did not take yet, and who waits for them to drain. */
  readonly out = new Outbox();
  /** Hands body bytes to the exchange in flight (made once per connection, not per read). */
  readonly onBody = (data: Buffer) => deliver(this, this.ex as Exchange, data);
  dead = false;
  /** It served an exchange before (the upstream may have closed it meanwhile). */
  reused = false;
  /** When it went back to the pool (for the idle sweep). */
  idleSince = 0;
  /** After a 101: the connection is a byte stream, out of the pool for good. */
  tunnel: SocketByteStream | null = null;
  constructor(readonly pool: Pool) {}
}

class Exchange {
  phase = HEAD;
  keepAlive = true;
  /** The request (head and body) is fully written. */
  requestDone = false;
  /** Any byte of the response arrived (a stale keep-alive connection gets none). */
  gotBytes = false;
  /** It went out on a connection that had served an earlier exchange. */
  reused = false;
  settled = false;
  head: ResponseInit | null = null;
  /** Small declared body being collected whole; null when streaming. */
  whole: Buffer[] | null = null;
  wholeBytes = 0;
  stream: ReadableStreamDefaultController<Uint8Array> | null = null;
  paused = false;
  /**
   * Body idle timeout: bytes arrived (or the body started, or the consumer resumed) since the
   * last sweep, and the sweep time from which the silence is counted. A flag per chunk instead
   * of a clock read: the coarse clock lags by up to a second and would cut early.
   */
  fed = false;
  quietSince = 0;
  /** Body bytes are read for framing only (a 205's). */
  discard = false;
  /** Set once the exchange is over, whichever way. */
  finished = false;
  /** The connection the request went out on (undefined while connecting). */
  conn: Conn | undefined = undefined;
  resolve!: (response: Response) => void;
  reject!: (error: unknown) => void;
  /** `upgrade()` only: takes the 101 and the connection. */
  onSwitch: ((headers: Headers, stream: SocketByteStream) => void) | null = null;
  onAbort!: () => void;
  constructor(
    readonly pool: Pool,
    readonly method: string,
    /** The request head, serialised. */
    readonly requestHead: string,
    readonly body: ReadableStream<Uint8Array> | null,
    readonly declared: number | null,
    readonly signal: AbortSignal,
    /** 0: no connect timeout of our own. */
    readonly connectMs: number,
    /** 0: no body idle timeout. */
    readonly bodyIdleMs: number,
  ) {}
}

/** The failure of `ex` as the retry policy reads it (transport/types.ts). */
function failure(ex: Exchange | null, message: string, code: string | undefined, cause?: unknown): UpstreamError {
  const facts = { connectFailed: false, reusedConnection: ex?.reused ?? false, responseStarted: ex?.gotBytes ?? false };
  return new UpstreamError(message, code, facts, cause === undefined ? undefined : { cause });
}

/** A socket error (or none: the upstream closed) as an UpstreamError with its system code. */
const connectionLost = (ex: Exchange, error: Error | undefined) =>
  error instanceof UpstreamError
    ? error
    : error === undefined
      ? failure(ex, 'upstream closed the connection', 'ECONNRESET')
      : failure(ex, error.message, codeOf(error), error);

/** A runtime error's system code, or undefined (the message then names the failure). */
const codeOf = (error: unknown): string | undefined => {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code ? code : undefined;
};

/** Where the bytes of a response body go: collected whole, or into its stream. */
function deliver(conn: Conn, ex: Exchange, bytes: Buffer): void {
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
}

export function createBunSocketTransport(): Transport {
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
    conn.idleSince = clock.now;
    conn.pool.idle.push(conn);
  };

  /**
   * On the shared clock's tick: closes connections idle longer than IDLE_KEEP_ALIVE_MS, and cuts
   * response bodies that sent nothing for their body idle timeout (not while paused: the
   * consumer is the slow one then). One sweep instead of a timer per exchange.
   */
  const unregister = clock.add((now) => {
    for (const pool of pools.values()) {
      for (const conn of [...pool.idle]) if (now - conn.idleSince > IDLE_KEEP_ALIVE_MS) kill(conn);
    }
    for (const conn of live) {
      const ex = conn.ex;
      if (ex === null || ex.phase !== BODY || ex.bodyIdleMs === 0) continue;
      if (ex.fed || ex.paused) {
        // Silence is counted from a sweep that saw bytes: never early, at most a tick late.
        ex.fed = false;
        ex.quietSince = now;
      } else if (now - ex.quietSince >= ex.bodyIdleMs) {
        failExchange(conn, ex, failure(ex, `upstream sent no body bytes for ${ex.bodyIdleMs} ms`, 'UPSTREAM_BODY_TIMEOUT'));
      }
    }
  });

  /** `socket`, or a connect failure once `ms` pass first (the socket, if it opens later, is closed). */
  const withinConnectTimeout = (opening: Promise<BunSocket<Conn>>, ms: number): Promise<BunSocket<Conn>> => {
    if (ms === 0) return opening;
    return new Promise((resolve, reject) => {
      let late = false;
      const timer = setTimeout(() => {
        late = true;
        reject(Object.assign(new Error(`connect timed out after ${ms} ms`), { code: 'ETIMEDOUT' }));
      }, ms);
      opening.then(
        (socket) => {
          clearTimeout(timer);
          if (late) socket.terminate();
          else resolve(socket);
        },
        (error) => {
          clearTimeout(timer);
          if (!late) reject(error);
        },
      );
    });
  };

  const connect = async (pool: Pool, connectMs: number): Promise<Conn> => {
    let lastError: unknown;
    for (let i = 0; i < pool.hosts.length; i++) {
      const at = (pool.preferred + i) % pool.hosts.length;
      const conn = new Conn(pool);
      try {
        // allowHalfOpen: a tunnel's upstream may end its side and still read ours; HTTP
        // connections end on the upstream's FIN (`end` below).
        conn.socket = await withinConnectTimeout(
          bunSockets().connect({ hostname: pool.hosts[at] as string, port: pool.port, allowHalfOpen: true, data: conn, socket: handlers }),
          connectMs,
        );
        pool.preferred = at;
        live.add(conn);
        return conn;
      } catch (error) {
        lastError = error;
      }
    }
    const code = codeOf(lastError);
    const message = `cannot connect to ${pool.hosts.join(' or ')} port ${pool.port}: ${(lastError as Error | undefined)?.message ?? code ?? 'failed'}`;
    throw new UpstreamError(message, code, { connectFailed: true, reusedConnection: false, responseStarted: false }, { cause: lastError });
  };

  // ---- the exchange ----------------------------------------------------------------------

  /** Ends an exchange that failed: the caller's promise rejects, or its body stream errors. */
  const failExchange = (conn: Conn, ex: Exchange, error: unknown) => {
    if (ex.finished) return;
    if (conn.ex === ex) conn.ex = null;
    kill(conn);
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
            ex.fed = true; // the wait was the consumer's
            conn.socket?.resume();
          }
        },
        cancel(reason) {
          // The consumer left (client gone): the rest of this body is not wanted.
          ex.stream = null;
          failExchange(conn, ex, reason instanceof Error ? reason : new Error('response body cancelled'));
        },
      },
      BODY_QUEUE,
    );
    ex.settled = true;
    ex.resolve(new Response(body, ex.head as ResponseInit));
  };

  /** The upstream switched protocols: the connection leaves the pool as a byte stream. */
  const switchProtocols = (conn: Conn, ex: Exchange, headers: Headers, rest: Buffer) => {
    ex.phase = DONE;
    ex.finished = true;
    ex.settled = true;
    // The exchange is over; the tunnel's life is its owner's (destroy), not the request's signal.
    ex.signal.removeEventListener('abort', ex.onAbort);
    conn.ex = null;
    const stream = new SocketByteStream(conn.socket as BunSocket<Conn>, conn.out, rest.byteLength > 0 ? rest : null);
    conn.tunnel = stream;
    (ex.onSwitch as NonNullable<Exchange['onSwitch']>)(headers, stream);
  };

  /**
   * Parses a response head. An interim (1xx) answer is skipped, leaving the phase at HEAD; a
   * 101 to `upgrade()` switches the connection. Throws UpstreamError on a malformed head.
   */
  const onHead = (conn: Conn, ex: Exchange, text: string): void => {
    let eol = text.indexOf('\r\n');
    if (eol < 0) eol = text.length;
    const line = parseStatusLine(text, eol);
    if (typeof line === 'string') throw failure(ex, line, INVALID);
    const code = line.status;
    if (code < 100 || code > 599) throw failure(ex, `invalid status ${code}`, 'UPSTREAM_INVALID_STATUS');
    const switching = code === 101 && ex.onSwitch !== null;
    // fetch() never asks to switch protocols (Upgrade is hop-by-hop and removed): a 101 is an error.
    if (code === 101 && !switching) throw failure(ex, 'unexpected 101 Switching Protocols', INVALID);
    if (code < 200 && !switching) return;
    let headers = new Headers();
    const fields = framingFields();
    // A 101's fields are handed over as received: Upgrade and Connection are its substance.
    if (parseFields(text, eol + 2, headers, !switching, fields) !== FIELDS_OK) throw failure(ex, 'invalid response header fields', INVALID);
    if (switching) {
      switchProtocols(conn, ex, headers, conn.reader.rest);
      return;
    }
    const framing = responseFraming(ex.method, code, line.version === '1.0', fields);
    if (typeof framing === 'string') throw failure(ex, framing, INVALID);
    ex.keepAlive = framing.keepAlive;
    if (framing.kind === BODY_CHUNKED) {
      // Transfer-Encoding overrides Content-Length, which must not travel on (RFC 9112 §6.3).
      if (fields.contentLength !== null) headers.delete('content-length');
    } else if (framing.contentLength !== null && framing.contentLength !== fields.contentLength) headers.set('content-length', framing.contentLength);
    // 204 / 205: their content is empty by definition, whatever length the upstream sent.
    headers = bodilessHeaders(code, headers);
    const head: ResponseInit = { status: code, statusText: line.reason, headers };
    ex.head = head;
    if (framing.kind === BODY_NONE || (framing.kind === BODY_LENGTH && framing.length === 0)) {
      ex.settled = true;
      ex.resolve(new Response(null, head));
      ex.phase = DONE;
      return;
    }
    conn.decoder.start(framing.kind, framing.length);
    ex.phase = BODY;
    ex.fed = true;
    if (responseBodyIsNull(ex.method, code)) {
      // A 205 with a framed body: the Response can carry none, so its bytes are read and dropped.
      ex.discard = true;
      ex.settled = true;
      ex.resolve(new Response(null, head));
      return;
    }
    if (framing.kind === BODY_LENGTH && framing.length <= SMALL_BODY_BYTES) ex.whole = [];
    else settleStreaming(conn, ex);
  };

  /** Feeds response bytes through the parser. Throws UpstreamError on a malformed response. */
  const parse = (conn: Conn, ex: Exchange, input: Buffer) => {
    let buf = input;
    while (buf.byteLength > 0 && ex.phase === HEAD) {
      const result = conn.reader.read(buf);
      if (result === 'incomplete') return;
      if (result !== 'complete') throw failure(ex, 'response head too large', INVALID);
      buf = conn.reader.rest;
      onHead(conn, ex, conn.reader.head); // an interim 1xx leaves the phase at HEAD: read the next head
      if (conn.tunnel !== null) return; // switched: the rest went to the tunnel
    }
    if (ex.phase === BODY && buf.byteLength > 0) {
      try {
        buf = conn.decoder.decode(buf, conn.onBody);
      } catch (error) {
        throw failure(ex, `invalid chunked body: ${(error as Error).message}`, INVALID, error);
      }
      if (!conn.decoder.done) {
        if (conn.decoder.kind === BODY_CHUNKED) conn.rest = buf.byteLength > 0 ? buf : null; // a partial chunk line
        return;
      }
      ex.phase = DONE;
    }
    if (ex.phase === DONE) {
      // Bytes after a complete response: we never pipeline, so the upstream is confused.
      if (buf.byteLength > 0) ex.keepAlive = false;
      finishResponse(conn, ex);
    }
  };

  /** The connection ended (FIN, reset or error) while `ex` was running on it. */
  const onEof = (conn: Conn, ex: Exchange, error: Error | undefined) => {
    if (ex.phase === BODY && error === undefined && conn.decoder.kind === BODY_UNTIL_CLOSE && conn.decoder.end()) {
      ex.keepAlive = false;
      ex.requestDone = true;
      finishResponse(conn, ex);
      return;
    }
    if (ex.phase === DONE) {
      // The response is complete; only the request body was still going (an early answer).
      ex.keepAlive = false;
      ex.requestDone = true;
      endExchange(conn, ex);
      return;
    }
    // Before any byte on a reused connection, this is the stale keep-alive race: the retry
    // policy (proxy/retry.ts) reads reusedConnection and responseStarted to decide.
    failExchange(conn, ex, connectionLost(ex, error));
  };

  const handlers: SocketHandlers<Conn> = {
    data(socket, chunk) {
      const conn = socket.data;
      if (conn.tunnel !== null) return conn.tunnel.data(chunk);
      const ex = conn.ex;
      if (ex === null || ex.phase === DONE) {
        // Bytes nobody asked for (an idle connection, or after a full answer): not reusable.
        if (ex !== null) ex.keepAlive = false;
        else kill(conn);
        return;
      }
      ex.gotBytes = true;
      ex.fed = true;
      try {
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
      if (conn.tunnel !== null) {
        conn.tunnel.closed(error);
        live.delete(conn);
        conn.dead = true;
        return;
      }
      const ex = conn.ex;
      if (ex !== null && !ex.finished) onEof(conn, ex, error);
      kill(conn); // also wakes a writer waiting for a drain
    },
    end(socket) {
      const conn = socket.data;
      // A tunnel is half-closed: the upstream is done sending, our side may still write.
      if (conn.tunnel !== null) return conn.tunnel.end();
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
  const write = (conn: Conn, ex: Exchange, bytes: Uint8Array, length = bytes.byteLength): Promise<void> | undefined => {
    const pending = conn.dead ? null : conn.out.write(conn.socket as BunSocket<Conn>, bytes, length);
    if (pending === null) throw failure(ex, 'upstream closed the connection', 'ECONNRESET');
    return pending;
  };

  /** Writes a request head (latin1: header values are byte strings) through the scratch buffer. */
  const writeHead = (conn: Conn, ex: Exchange, head: string): Promise<void> | undefined => {
    if (head.length > scratch.byteLength) return write(conn, ex, Buffer.from(head, 'latin1'));
    return write(conn, ex, scratch, scratch.write(head, 0, 'latin1'));
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
        if (declared === null) pending = write(conn, ex, encodeChunk(value));
        else {
          sent += value.byteLength;
          if (sent > declared) throw new Error('request body longer than its Content-Length');
          pending = write(conn, ex, value);
        }
        if (pending !== undefined) await pending;
      }
      if (ex.phase !== DONE || ex.keepAlive) {
        if (declared === null) await write(conn, ex, LAST_CHUNK);
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

  const start = (conn: Conn, ex: Exchange) => {
    conn.ex = ex;
    conn.rest = null;
    ex.conn = conn;
    ex.reused = conn.reused;
    const pending = writeHead(conn, ex, ex.requestHead);
    const body = ex.body;
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
    if (pending === undefined) void sendBody(conn, ex, body, ex.declared);
    else
      pending.then(
        () => sendBody(conn, ex, body, ex.declared),
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

  /** Ends an exchange that never got a connection (refused, or cut by close()). */
  const notSent = (ex: Exchange, error: unknown) => {
    ex.finished = true;
    ex.settled = true;
    ex.signal.removeEventListener('abort', ex.onAbort);
    ex.reject(error);
  };

  /** Sends `ex` on a pooled connection, or on a new one (`fresh` skips the pool). */
  const open = (ex: Exchange, fresh: boolean) => {
    const idle = ex.pool.idle;
    while (!fresh && idle.length > 0) {
      const conn = idle.pop() as Conn;
      if (conn.dead) continue;
      run(ex, conn);
      return;
    }
    connect(ex.pool, ex.connectMs).then(
      (conn) => {
        // close() ran while this connection was opening: the exchange is cut like the rest.
        if (closed && !ex.finished) notSent(ex, failure(null, 'proxy shutting down', 'ECONNRESET'));
        if (ex.finished) return release(conn);
        run(ex, conn);
      },
      (error) => {
        if (!ex.finished) notSent(ex, error);
      },
    );
  };

  const run = (ex: Exchange, conn: Conn) => {
    try {
      start(conn, ex);
    } catch (error) {
      failExchange(conn, ex, error);
    }
  };

  /** Serialises the request and starts it; `ex.resolve` / `ex.reject` are set by the caller. */
  const exchange = (url: string, init: UpstreamInit): Exchange => {
    const pathStart = url.indexOf('/', url.indexOf('//') + 2);
    const pool = poolFor(url.slice(0, pathStart));
    const { method, headers, body, signal } = init;
    let text = `${method} ${url.slice(pathStart)} HTTP/1.1\r\n`;
    for (const [name, value] of headers) text += `${name}: ${value}\r\n`;
    const length = headers.get('content-length');
    const declared = body !== null && length !== null ? Number(length) : null;
    if (body !== null && length === null) text += 'transfer-encoding: chunked\r\n';
    return new Exchange(pool, method, `${text}\r\n`, body, declared, signal, init.connectTimeoutMs ?? 0, init.bodyIdleTimeoutMs ?? 0);
  };

  /** Starts `ex` unless the transport is closed or the signal already aborted. */
  const begin = (ex: Exchange, init: UpstreamInit) => {
    if (closed) return ex.reject(failure(null, 'transport closed', 'ECONNRESET'));
    if (init.signal.aborted) return ex.reject(init.signal.reason);
    ex.onAbort = () => abortExchange(ex);
    init.signal.addEventListener('abort', ex.onAbort, { once: true });
    open(ex, init.fresh === true);
  };

  return {
    name: 'bun-socket',
    fetch(url: string, init: UpstreamInit): Promise<Response> {
      const ex = exchange(url, init);
      return new Promise<Response>((resolve, reject) => {
        ex.resolve = resolve;
        ex.reject = reject;
        begin(ex, init);
      });
    },
    upgrade(url: string, init: UpstreamInit): Promise<UpgradeResult> {
      // Bytes after a request body would be ambiguous (body or new protocol?).
      if (init.body !== null) return Promise.reject(new TypeError('an upgrade request carries no body'));
      const ex = exchange(url, init);
      return new Promise<UpgradeResult>((resolve, reject) => {
        ex.resolve = (response) => resolve({ switched: false, response });
        ex.reject = reject;
        ex.onSwitch = (headers, stream) => resolve({ switched: true, headers, stream });
        begin(ex, init);
      });
    },
    async close() {
      closed = true;
      unregister();
      for (const conn of [...live]) {
        const ex = conn.ex;
        if (ex !== null) failExchange(conn, ex, failure(ex, 'proxy shutting down', 'ECONNRESET'));
        if (conn.tunnel !== null) conn.tunnel.destroy(new Error('proxy shutting down'));
        kill(conn);
      }
    },
  };
}
