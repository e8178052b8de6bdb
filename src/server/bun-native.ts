// Bun listener: HTTP/1.1 parsed and written by us on Bun.listen sockets.
//
// Why not the alternatives (docs/runtimes.md has the numbers):
// - Bun.serve is fast but drops a Content-Length set on a streamed body (oven-sh/bun#10507) and
//   rewrites the request target (dot segments, absolute-form) before the app sees it.
// - Bun's node:http is exact but its Node stream emulation cost ~30% of the CPU per request.
// Owning the parser gives the exact target and field bytes, strict framing (RFC 9112), and a
// Content-Length that passes through untouched.
//
// What this server does: request heads up to the configured size (431 beyond), strict request
// line and field syntax (400), Content-Length and chunked request bodies streamed with
// backpressure, keep-alive and pipelining (one request at a time, in order), `Expect:
// 100-continue`, HTTP/1.0 clients, chunked or close-delimited responses when no length is
// known, Date on every response, idle and slow-head timeouts, lingering close after an unread
// body, and a graceful stop. No TLS, no HTTP/2, no Upgrade (later issues).
import { STATUS_CODES } from 'node:http';
import { ChunkedDecoder } from '../http1/chunked.ts';
import { FIELDS_OK, FIELDS_TOO_MANY, framingFields, hasToken, parseFields } from '../http1/fields.ts';
import { HeadBuffer } from '../http1/head-buffer.ts';
import { Outbox } from '../http1/outbox.ts';
import { normalizePeer } from '../proxy/headers.ts';
import type { AppFetch, Listener, ListenOptions } from './types.ts';

// The parts of Bun's socket API used here, typed locally so Deno and Node type-check this file.
interface BunSocket {
  data: Conn;
  readonly remoteAddress: string;
  write(data: Uint8Array, byteOffset?: number, byteLength?: number): number;
  end(): void;
  terminate(): void;
  pause(): void;
  resume(): void;
}
interface Handlers {
  open(socket: BunSocket): void;
  data(socket: BunSocket, chunk: Buffer): void;
  drain(socket: BunSocket): void;
  close(socket: BunSocket, error?: Error): void;
  end(socket: BunSocket): void;
  error(socket: BunSocket, error: Error): void;
}
interface BunTcpListener {
  readonly port: number;
  stop(closeActiveConnections?: boolean): void;
}
interface BunListen {
  listen(options: { hostname: string; port: number; allowHalfOpen: boolean; socket: Handlers }): BunTcpListener;
}

/** A keep-alive connection with no request for this long is closed (Node's default). */
const IDLE_MS = 5_000;
/** A request head must arrive whole within this long (Node's headersTimeout; slowloris). */
const HEAD_MS = 60_000;
/** A request body that stalls (no byte we asked for) this long gets 408 (nginx's client_body_timeout). */
const BODY_MS = 60_000;
/** A client that takes none of our response bytes for this long is cut (nginx's send_timeout). */
const SEND_MS = 60_000;
/** After answering a request whose body we did not read, keep reading (and dropping) this long. */
const LINGER_MS = 2_000;
/** A small response with a declared length goes out in one write with its head. */
const SMALL_BODY_BYTES = 64 * 1024;
/** Request body bytes queued before the socket is paused; also the cap on pipelined bytes. */
const HIGH_WATER_BYTES = 64 * 1024;

const CRLF = Buffer.from('\r\n');
const EMPTY = Buffer.alloc(0);
const CRLFCRLF = Buffer.from('\r\n\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n');
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// RFC 9112 §3.2: visible ASCII only; anything else in a target is an error, not ours to fix.
const TARGET = /^[\x21-\x7e]+$/;
const DIGITS = /^\d+$/;
const PLAIN_REASON = /^[\t\x20-\x7e]*$/;
const BAD_GATEWAY_BODY = new TextEncoder().encode('bad gateway\n');
const INTERNAL_ERROR = () => new Response('internal error\n', { status: 500, headers: { 'content-type': 'text/plain; charset=utf-8' } });

// Request parser states per connection.
const HEAD = 0; // waiting for (more of) a request head
const BODY = 1; // reading the request body into its stream
const WAIT = 2; // request read; its response is still going out (later bytes are held)
const LINGER = 3; // answered, closing: input is read and dropped until the client closes

class Exchange {
  readonly abort = new AbortController();
  body: ReadableStreamDefaultController<Uint8Array> | null = null;
  /** Content-Length bytes still due, when the body has a declared length. */
  remaining = 0;
  chunked: ChunkedDecoder | null = null;
  bodyDone = true;
  /** The response head is being (or has been) written. */
  started = false;
  responded = false;
  constructor(
    readonly method: string,
    readonly http10: boolean,
  ) {}
}

class Conn {
  state = HEAD;
  ex: Exchange | null = null;
  /** Input not parsed yet: bytes of the next (pipelined) request, or a partial chunk line. */
  rest: Buffer | null = null;
  /** A request head still arriving. */
  readonly head = new HeadBuffer();
  /** When the current head started arriving (0: none pending), or when the socket went idle. */
  headSince = 0;
  idleSince: number;
  lingerSince = 0;
  /** Last time the client sent bytes or took the ones we wrote (stall timeouts). */
  lastIo = 0;
  /** Close after the current response (Connection: close, HTTP/1.0, framing doubt, stop). */
  closing = false;
  paused = false;
  dead = false;
  readonly out = new Outbox();
  readonly peer: string;
  constructor(
    readonly socket: BunSocket,
    now: number,
  ) {
    this.idleSince = now;
    this.peer = normalizePeer(socket.remoteAddress ?? '');
  }
}

/** Queue cost of a body chunk: its bytes plus a per-chunk overhead. */
const chunkCost = (chunk?: Uint8Array): number => (chunk?.byteLength ?? 0) + 256;

/** True when `buf` has an LF not preceded by CR; `before` is the byte before `buf` (-1: none). */
function hasBareLf(buf: Buffer, before: number): boolean {
  for (let at = buf.indexOf(10); at >= 0; at = buf.indexOf(10, at + 1)) if ((at === 0 ? before : buf[at - 1]) !== 13) return true;
  return false;
}

class BadRequest extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function listenBunNative(fetch: AppFetch, options: ListenOptions): Promise<Listener> {
  const bun = (globalThis as unknown as { Bun: BunListen }).Bun;
  const maxHeadBytes = options.maxHeaderBytes + 16384 + 1024; // our own 431/414 answer below this
  const conns = new Set<Conn>();
  // Small responses are assembled here and written at once; never held across an await.
  const scratch = Buffer.allocUnsafe(SMALL_BODY_BYTES + 16 * 1024);
  let stopping = false;
  let now = Date.now();
  let dateLine = `date: ${new Date(now).toUTCString()}\r\n`;
  let onAllClosed: (() => void) | null = null;

  // One timer for every connection: the Date line, idle keep-alive, slow heads, lingering.
  const sweep = setInterval(() => {
    now = Date.now();
    dateLine = `date: ${new Date(now).toUTCString()}\r\n`;
    for (const conn of conns) {
      if (conn.state === LINGER) {
        if (now - conn.lingerSince > LINGER_MS) close(conn);
      } else if (conn.out.unsent !== null) {
        if (now - conn.lastIo > SEND_MS) close(conn);
      } else if (conn.state === BODY) {
        if (!conn.paused && now - conn.lastIo > BODY_MS) reject(conn, new BadRequest(408, 'request timeout: request body stalled'));
      } else if (conn.state === HEAD && conn.ex === null) {
        if (conn.headSince !== 0 && now - conn.headSince > HEAD_MS) reject(conn, new BadRequest(408, 'request timeout'));
        else if (conn.headSince === 0 && now - conn.idleSince > IDLE_MS) close(conn);
      }
    }
  }, 1_000);
  (sweep as { unref?: () => void }).unref?.();

  const close = (conn: Conn) => {
    if (conn.dead) return;
    conn.dead = true;
    conns.delete(conn);
    conn.socket.terminate();
    if (conns.size === 0) onAllClosed?.();
  };

  /** Ends the connection after what is written, reading and dropping input for a while. */
  const linger = (conn: Conn) => {
    if (conn.dead) return;
    conn.state = LINGER;
    conn.lingerSince = now;
    conn.rest = null;
    if (conn.paused) {
      conn.paused = false;
      conn.socket.resume();
    }
    conn.socket.end();
  };

  /** Writes `length` bytes; the rest is kept by the Outbox (`bytes` may be `scratch`). */
  const write = (conn: Conn, bytes: Uint8Array, length = bytes.byteLength): Promise<void> | undefined => {
    if (conn.dead) return undefined;
    const pending = conn.out.write(conn.socket, bytes, length);
    if (pending === null) return undefined; // closed: the close handler runs
    if (pending !== undefined) conn.lastIo = now;
    return pending;
  };

  const writeText = (conn: Conn, text: string): Promise<void> | undefined =>
    text.length <= scratch.byteLength ? write(conn, scratch, scratch.write(text, 0, 'latin1')) : write(conn, Buffer.from(text, 'latin1'));

  /** Refuses what cannot be parsed: a short plain answer, then the connection closes. */
  const reject = (conn: Conn, error: BadRequest) => {
    options.onBadRequest?.({ client: conn.peer, status: error.status, reason: error.message });
    if (conn.ex?.started) {
      // An answer is already on the wire: another one would land inside it. Cut instead.
      conn.ex.abort.abort(new Error(error.message));
      close(conn);
      return;
    }
    const body = `${error.message}\n`;
    const head = `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}\r\n${dateLine}content-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`;
    // An exchange in flight (its chunked body broke) is cancelled; its answer is this one.
    conn.ex?.abort.abort(new Error(error.message));
    const pending = write(conn, Buffer.from(head + body, 'latin1'));
    conn.state = LINGER; // from here on, input is dropped
    if (pending === undefined) linger(conn);
    else void pending.then(() => linger(conn));
  };

  // ---- reading requests ------------------------------------------------------------------

  const feed = (conn: Conn, input: Buffer) => {
    let buf = input;
    while (buf.byteLength > 0 && !conn.dead) {
      if (conn.state === LINGER) return;
      if (conn.state === BODY) {
        buf = readBody(conn, conn.ex as Exchange, buf);
        if (conn.state === BODY) return; // all consumed, body not finished
        continue;
      }
      if (conn.state === WAIT) {
        // Pipelined bytes wait for the response in flight; too many and the client waits too.
        conn.rest = buf;
        if (buf.byteLength > HIGH_WATER_BYTES && !conn.paused) {
          conn.paused = true;
          conn.socket.pause();
        }
        return;
      }
      // RFC 9112 §2.2: empty lines before a request line are ignored.
      let start = 0;
      while (start + 1 < buf.byteLength && buf[start] === 13 && buf[start + 1] === 10) start += 2;
      if (start > 0) buf = buf.subarray(start);
      if (conn.headSince === 0) conn.headSince = now;
      const end = buf.indexOf(CRLFCRLF);
      if (end < 0 || end > maxHeadBytes) {
        // (+3: a read may end inside the final CRLFCRLF of a head exactly at the limit)
        if (buf.byteLength > maxHeadBytes + 3) return reject(conn, new BadRequest(431, 'request header fields too large'));
        // Lines end in CRLF (RFC 9112 §2.2); a bare LF would otherwise wait for the head timeout.
        if (hasBareLf(buf, -1)) return reject(conn, new BadRequest(400, 'bad request: line not ended by CRLF'));
        conn.head.push(buf);
        return;
      }
      const text = buf.toString('latin1', 0, end);
      buf = end + 4 === buf.byteLength ? EMPTY : buf.subarray(end + 4);
      try {
        startRequest(conn, text);
      } catch (error) {
        if (error instanceof BadRequest) return reject(conn, error);
        throw error;
      }
    }
  };

  const readBody = (conn: Conn, ex: Exchange, buf: Buffer): Buffer => {
    let rest: Buffer;
    if (ex.chunked !== null) {
      try {
        // Pieces of one read go into the body as one buffer: a body of 1-byte chunks must not
        // become a queue of tiny Buffers (their overhead dwarfs the bytes the queue counts).
        const pieces: Buffer[] = [];
        rest = ex.chunked.decode(buf, (data) => pieces.push(data));
        if (pieces.length === 1) push(conn, ex, pieces[0] as Buffer);
        else if (pieces.length > 1) push(conn, ex, Buffer.concat(pieces));
      } catch (error) {
        ex.body?.error(error);
        ex.body = null;
        ex.bodyDone = true;
        reject(conn, new BadRequest(400, 'bad request: invalid chunked body'));
        return Buffer.alloc(0);
      }
      if (!ex.chunked.done) {
        conn.rest = rest.byteLength > 0 ? rest : null;
        return Buffer.alloc(0);
      }
    } else {
      const take = Math.min(ex.remaining, buf.byteLength);
      push(conn, ex, take === buf.byteLength ? buf : buf.subarray(0, take));
      ex.remaining -= take;
      rest = buf.subarray(take);
      if (ex.remaining > 0) return rest;
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

  const startRequest = (conn: Conn, text: string) => {
    let eol = text.indexOf('\r\n');
    if (eol < 0) eol = text.length;
    const sp1 = text.indexOf(' ');
    const sp2 = text.indexOf(' ', sp1 + 1);
    // method SP target SP version: a stray space lands in the target or version and fails there.
    if (sp1 <= 0 || sp2 < 0 || sp2 >= eol) throw new BadRequest(400, 'bad request: malformed request line');
    const method = text.slice(0, sp1);
    const target = text.slice(sp1 + 1, sp2);
    const version = text.slice(sp2 + 1, eol);
    if (!TOKEN.test(method) || !TARGET.test(target)) throw new BadRequest(400, 'bad request: malformed request line');
    if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') throw new BadRequest(400, 'bad request: unsupported HTTP version');
    const http10 = version === 'HTTP/1.0';

    const headers = new Headers();
    const fields = framingFields();
    // RFC 9112 §5: no whitespace before a colon, no obsolete line folding, no control characters.
    const parsed = parseFields(text, eol + 2, headers, false, fields);
    if (parsed === FIELDS_TOO_MANY) throw new BadRequest(431, 'request header fields too large');
    if (parsed !== FIELDS_OK) throw new BadRequest(400, 'bad request: malformed header field');
    const host = fields.host;
    const length = fields.contentLength;
    const coding = fields.transferEncoding;
    const connection = fields.connection;
    const expect = fields.expect !== null && fields.expect.toLowerCase() === '100-continue';

    const ex = new Exchange(method, http10);
    conn.ex = ex;
    conn.headSince = 0;
    if (hasToken(connection, 'close') || (http10 && !hasToken(connection, 'keep-alive')) || stopping) conn.closing = true;

    // Body framing (RFC 9112 §6.3). What we cannot frame goes to the app without a body (it
    // answers 400 or 501 from the same headers) and the connection closes after the answer.
    let hasBody = false;
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message is suspect; close after it.
    if (coding !== null && http10) conn.closing = true;
    if (coding !== null) {
      if (length === null && coding.trim().toLowerCase() === 'chunked') {
        ex.chunked = new ChunkedDecoder();
        hasBody = true;
      } else conn.closing = true;
    } else if (length !== null) {
      if (!DIGITS.test(length)) conn.closing = true;
      else if (!/^0+$/.test(length)) {
        ex.remaining = Number(length);
        hasBody = true;
      }
    }

    let body: ReadableStream<Uint8Array> | null = null;
    if (hasBody) {
      ex.bodyDone = false;
      body = new ReadableStream<Uint8Array>(
        {
          start(controller) {
            ex.body = controller;
          },
          pull() {
            if (conn.paused && conn.state === BODY) {
              conn.paused = false;
              conn.lastIo = now; // the stall clock restarts when we ask for bytes again
              conn.socket.resume();
            }
          },
          cancel() {
            // The app will not read the rest: drop it, and do not reuse this connection.
            ex.body = null;
            conn.closing = true;
            if (conn.paused) {
              conn.paused = false;
              conn.socket.resume();
            }
          },
        },
        // Counts a per-chunk overhead too, so many small chunks cannot pile up under the mark.
        { highWaterMark: HIGH_WATER_BYTES, size: chunkCost },
      );
      conn.state = BODY;
      if (expect && !http10) void write(conn, CONTINUE);
    } else conn.state = WAIT;

    // Absolute-form stays as sent so the guard can compare it with Host; asterisk-form
    // (`OPTIONS *`) reaches the app through `rawTarget`.
    const first = target.charCodeAt(0);
    const url = first === 47 /* / */ ? `http://${host ?? 'localhost'}${target}` : first === 42 /* * */ ? `http://${host ?? 'localhost'}/*` : target;
    let request: Request;
    try {
      // Bun's Request turns a method it does not know into GET (and uppercases those it knows):
      // the exact method travels in ConnInfo.method.
      request = new Request(url, { method, headers, body, signal: ex.abort.signal, duplex: 'half' } as RequestInit);
    } catch {
      // Not a URL (a Host no URL parser accepts, an odd target), or a method fetch forbids.
      throw new BadRequest(400, 'bad request: invalid Host header or request target');
    }
    let response: Response | Promise<Response>;
    try {
      response = fetch(request, { remoteAddr: conn.peer, rawTarget: target, proto: 'http', httpVersion: http10 ? '1.0' : '1.1', method });
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

  // ---- writing responses -----------------------------------------------------------------

  /**
   * Writes the app's answer. Never rejects: the writes are in a try that cuts the connection,
   * the rest cannot throw, and exchangeDone guards the parser it re-enters.
   */
  const respond = async (conn: Conn, ex: Exchange, answer: unknown): Promise<void> => {
    let res = answer as Response;
    if (!(answer instanceof Response) || answer.status < 200) {
      // Not an answer this server can send (a bug upstream of here): never crash over it.
      console.error('switchyard: request handler returned no final Response', answer instanceof Response ? answer.status : typeof answer);
      res = INTERNAL_ERROR();
    }
    if (conn.dead || conn.state === LINGER) {
      // Client gone, or the connection was already answered with an error.
      await res.body?.cancel().catch(() => {});
      return;
    }
    ex.started = true;
    const status = res.status;
    const noBody = ex.method === 'HEAD' || status === 204 || status === 304;
    // A reason phrase goes on the wire as is: only visible ASCII, or it could end the line.
    const reason = res.statusText;
    let head = `HTTP/1.1 ${status} ${reason && PLAIN_REASON.test(reason) ? reason : (STATUS_CODES[status] ?? '')}\r\n`;
    let hasDate = false;
    let length: string | null = null;
    const body = noBody ? null : res.body;
    // A Content-Length frames the bytes that follow, except on HEAD and 304 where it describes
    // the representation. Without a body it must say 0 (and a 204 carries none, RFC 9110 §8.6).
    const lengthFrames = !(ex.method === 'HEAD' || status === 304);
    for (const [name, value] of res.headers) {
      // Framing and connection fields are this server's to write, whatever the app set.
      if (name === 'transfer-encoding' || name === 'connection' || name === 'keep-alive') continue;
      if (name === 'content-length') {
        if (body === null && lengthFrames) continue;
        length = value;
      } else if (name === 'date') hasDate = true;
      head += `${name}: ${value}\r\n`;
    }
    if (body === null && lengthFrames && status !== 204) head += 'content-length: 0\r\n';
    if (!hasDate) head += dateLine;
    let chunked = false;
    if (body !== null && length === null) {
      // No length known: chunked for HTTP/1.1, the end of the connection for HTTP/1.0.
      if (ex.http10) conn.closing = true;
      else {
        chunked = true;
        head += 'transfer-encoding: chunked\r\n';
      }
    }

    try {
      if (body === null || (length !== null && Number(length) <= SMALL_BODY_BYTES)) {
        let bytes: Uint8Array | null = null;
        if (body !== null) {
          try {
            bytes = new Uint8Array(await res.arrayBuffer());
            if (bytes.byteLength !== Number(length)) throw new Error('body does not match its Content-Length');
          } catch {
            // A small body that broke on its way becomes a clean 502, never a truncated answer.
            const text = 'bad gateway\n';
            head = `HTTP/1.1 502 Bad Gateway\r\n${dateLine}content-type: text/plain; charset=utf-8\r\ncontent-length: ${text.length}\r\n`;
            bytes = BAD_GATEWAY_BODY;
          }
        } else if (noBody) await res.body?.cancel().catch(() => {});
        if (conn.dead || conn.state === LINGER) return;
        // The whole answer is in hand: if the request body is not, this connection ends after it.
        if (!ex.bodyDone || stopping) conn.closing = true;
        head += conn.closing ? 'connection: close\r\n\r\n' : ex.http10 ? 'connection: keep-alive\r\n\r\n' : '\r\n';
        if (bytes === null) await writeText(conn, head);
        else {
          // Head and body in one write, through a buffer reused by every response.
          const total = head.length + bytes.byteLength;
          const out = total <= scratch.byteLength ? scratch : Buffer.allocUnsafe(total);
          out.write(head, 0, 'latin1');
          out.set(bytes, head.length);
          await write(conn, out, total);
        }
      } else {
        if (stopping) conn.closing = true;
        head += conn.closing ? 'connection: close\r\n\r\n' : ex.http10 ? 'connection: keep-alive\r\n\r\n' : '\r\n';
        await writeText(conn, head);
        await streamBody(conn, body, chunked, length === null ? -1 : Number(length));
      }
    } catch {
      // The body broke mid-way: cut the connection so the client sees a truncated response,
      // never a clean end (RFC 9112 §6.3).
      ex.responded = true;
      close(conn);
      return;
    }
    ex.responded = true;
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
      let pending: Promise<void> | undefined;
      if (chunked) pending = write(conn, Buffer.concat([Buffer.from(`${value.byteLength.toString(16)}\r\n`, 'latin1'), value, CRLF]));
      else pending = write(conn, value);
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
    conn.idleSince = now;
    const rest = conn.rest;
    conn.rest = null;
    if (conn.paused) {
      conn.paused = false;
      conn.socket.resume();
    }
    if (rest === null) return;
    try {
      feed(conn, rest); // the next pipelined request
    } catch (error) {
      console.error('switchyard: connection handler failed', error);
      close(conn);
    }
  };

  const handlers: Handlers = {
    open(socket) {
      const conn = new Conn(socket, now);
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
      conn.lastIo = now;
      try {
        const head = conn.head;
        if (head.size > 0) {
          // The rest of a head: only the new bytes are looked at (see http1/head-buffer.ts).
          const before = head.lastByte;
          const whole = head.push(chunk);
          if (whole === null) {
            if (head.size > maxHeadBytes + 3) reject(conn, new BadRequest(431, 'request header fields too large'));
            else if (hasBareLf(chunk, before)) reject(conn, new BadRequest(400, 'bad request: line not ended by CRLF'));
            return;
          }
          feed(conn, whole);
          return;
        }
        const rest = conn.rest;
        conn.rest = null;
        feed(conn, rest === null ? chunk : Buffer.concat([rest, chunk]));
      } catch (error) {
        // A bug in this parser; never crash the process over one connection.
        console.error('switchyard: connection handler failed', error);
        close(conn);
      }
    },
    drain(socket) {
      const conn = socket.data;
      conn.lastIo = now;
      conn.out.drain(socket);
    },
    close(socket) {
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
      conn.dead = true;
      if (conns.delete(conn) && conns.size === 0) onAllClosed?.();
      conn.out.release();
    },
    end(socket) {
      // The client closed its side: like nginx, a request still in flight counts as abandoned
      // (499), so the upstream exchange is cancelled at once.
      const conn = socket.data;
      if (conn.dead) return;
      handlers.close(socket);
      socket.terminate();
    },
    error(socket) {
      const conn = socket.data;
      if (conn !== undefined) close(conn);
    },
  };

  const server = bun.listen({ hostname: options.hostname, port: options.port, allowHalfOpen: false, socket: handlers });

  return {
    hostname: options.hostname,
    port: server.port,
    async stop(graceMs) {
      stopping = true;
      server.stop(false);
      const allClosed = new Promise<void>((resolve) => {
        onAllClosed = resolve;
      });
      // Idle connections go now; busy ones after their response (Connection: close).
      for (const conn of conns) if (conn.ex === null) close(conn);
      if (conns.size > 0) {
        const timer = setTimeout(() => {
          for (const conn of [...conns]) close(conn);
        }, graceMs);
        await allClosed;
        clearTimeout(timer);
      }
      clearInterval(sweep);
    },
  };
}
