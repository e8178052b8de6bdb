// Black-box helpers for the WebSocket suite (websocket.test.ts): a real ws upstream (plain or
// TLS) whose connections a test can reach by id, ws clients that queue what they receive,
// raw-socket handshakes with a frame codec for clients that do things ws would not, and
// floods with sequence numbers for the backpressure cases. Loopback only; every wait has a
// deadline.
import { createHash } from 'node:crypto';
import type http from 'node:http';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import net from 'node:net';
import WebSocket, { type ClientOptions, WebSocketServer } from 'ws';
import { within } from '../support/wait.ts';
import { parseRaw, type RawResponse } from './harness.ts';

// --- queues ------------------------------------------------------------------------------------

/** Items in arrival order; `next` waits (with a deadline) for the next one not yet taken. */
export class Inbox<T> {
  readonly all: T[] = [];
  private taken = 0;
  private waiter: (() => void) | null = null;

  push(item: T): void {
    this.all.push(item);
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Items not yet taken. */
  get pending(): number {
    return this.all.length - this.taken;
  }

  async next(ms: number, what: string): Promise<T> {
    const end = Date.now() + ms;
    while (this.taken >= this.all.length) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms: ${what}`);
      await within(
        new Promise<void>((resolve) => {
          this.waiter = resolve;
        }),
        left,
        what,
      );
    }
    return this.all[this.taken++] as T;
  }
}

export interface Message {
  readonly data: Buffer;
  readonly binary: boolean;
}

export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
  /** performance.now() when 'close' fired. */
  readonly at: number;
}

/** What one side of a ws connection saw; `closed` resolves on 'close'. */
export interface Peer {
  readonly ws: WebSocket;
  readonly messages: Inbox<Message>;
  readonly pings: Inbox<Buffer>;
  readonly pongs: Inbox<Buffer>;
  readonly closed: Promise<CloseInfo>;
  /** The underlying socket (paused and resumed by the backpressure cases). */
  socket(): net.Socket;
}

function watch(ws: WebSocket): Omit<Peer, 'ws' | 'socket'> {
  const messages = new Inbox<Message>();
  const pings = new Inbox<Buffer>();
  const pongs = new Inbox<Buffer>();
  ws.on('message', (data, binary) => messages.push({ data: data as Buffer, binary }));
  ws.on('ping', (data) => pings.push(data));
  ws.on('pong', (data) => pongs.push(data));
  ws.on('error', () => {}); // 'close' follows; the cases assert on it
  const closed = new Promise<CloseInfo>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString('utf8'), at: performance.now() })),
  );
  return { messages, pings, pongs, closed };
}

const socketOf = (ws: WebSocket): net.Socket => (ws as unknown as { _socket: net.Socket })._socket;

// --- the upstream ------------------------------------------------------------------------------

/** An upgrade request the upstream saw (any path, any Upgrade). */
export interface SeenHandshake {
  readonly id: string;
  readonly url: string;
  readonly rawHeaders: string[];
  readonly headers: http.IncomingHttpHeaders;
}

/** An ordinary request the upstream saw. */
export interface SeenPlain {
  readonly id: string;
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: string[];
  readonly headers: http.IncomingHttpHeaders;
}

export interface ServerConn extends Peer {
  readonly id: string;
  readonly path: string;
  readonly handshake: SeenHandshake;
}

export interface WsUpstream {
  readonly port: number;
  /** `ws://127.0.0.1:PORT` or `wss://...`, for a route's `upstream`. */
  readonly origin: string;
  readonly handshakes: SeenHandshake[];
  readonly plain: SeenPlain[];
  /** The connection opened with `?id=<id>`, once it is open. */
  conn(id: string, ms?: number): Promise<ServerConn>;
  /** The connection opened with `?id=<id>` if it is open already. */
  peek(id: string): ServerConn | undefined;
  /** Sockets of the upgrades to `/hang`, `/greet` and `/hold`, by id: the test's to watch. */
  readonly held: Map<string, net.Socket>;
  /** ws connections not closed yet. */
  openCount(): number;
  close(): Promise<void>;
}

const idOf = (url: string): string => new URL(url, 'http://x').searchParams.get('id') ?? url;

/**
 * A node:http (or, with `tls`, node:https) server on 127.0.0.1:0 whose upgrades go to ws:
 * - every path echoes each message as it came (text as text, binary as binary), except
 *   `/sink*` (pauses its socket at once: a reader that stopped), `/quiet*` and `/flood*`
 *   (receive, never echo);
 * - `/deflate*` goes to a WebSocketServer with permessage-deflate, the rest to one without;
 * - `/reject*` answers the upgrade `403 Forbidden` with a body; `/hang*` never answers;
 * - `/greet*` writes its own 101 and a text frame `greeting` in one write (one TCP segment),
 *   then ignores the connection; `/hold*` writes its own 101 and nothing else, ignoring even
 *   the client's FIN (the connection stays half-closed);
 * - the subprotocol chosen is `chat.v2` when offered, else the first offered;
 * - every 101 carries `Connection: Upgrade, X-Hop`, `X-Hop: secret`, `Keep-Alive: timeout=5`,
 *   two Set-Cookie fields and `X-Public: yes`.
 * Ordinary requests get 200 with a JSON echo (`method`, `url`, `rawHeaders`).
 */
export async function startWsUpstream(options: { tls?: { cert: string; key: string } } = {}): Promise<WsUpstream> {
  const handshakes: SeenHandshake[] = [];
  const plain: SeenPlain[] = [];
  const conns = new Map<string, ServerConn>();
  const waiters = new Map<string, ((c: ServerConn) => void)[]>();
  const sockets = new Set<net.Socket>();
  const held = new Map<string, net.Socket>();

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = req.url ?? '';
    plain.push({ id: idOf(url), method: req.method ?? '', url, rawHeaders: req.rawHeaders, headers: req.headers });
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, url, rawHeaders: req.rawHeaders }));
    });
  };
  const server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, onRequest) : createHttpServer(onRequest);

  const common = {
    noServer: true,
    maxPayload: 64 << 20,
    handleProtocols: (offered: Set<string>) => (offered.has('chat.v2') ? 'chat.v2' : ([...offered][0] ?? false)),
  } as const;
  const plainWss = new WebSocketServer({ ...common, perMessageDeflate: false });
  const deflateWss = new WebSocketServer({ ...common, perMessageDeflate: { threshold: 0 } });
  for (const wss of [plainWss, deflateWss]) {
    wss.on('headers', (headers: string[]) => {
      const i = headers.findIndex((h) => /^connection:/i.test(h));
      if (i >= 0) headers[i] = 'Connection: Upgrade, X-Hop';
      headers.push('X-Hop: secret', 'Keep-Alive: timeout=5', 'Set-Cookie: a=1; Path=/', 'Set-Cookie: b=2; Path=/; HttpOnly', 'X-Public: yes');
    });
    wss.on('connection', (ws: WebSocket, req: http.IncomingMessage) => {
      const url = req.url ?? '';
      const id = idOf(url);
      const path = url.split('?')[0] as string;
      if (path.startsWith('/sink')) socketOf(ws).pause();
      const handshake = handshakes.find((h) => h.url === url && h.rawHeaders === req.rawHeaders) as SeenHandshake;
      const conn: ServerConn = { id, path, handshake, ws, ...watch(ws), socket: () => socketOf(ws) };
      if (!/^\/(sink|quiet|flood)/.test(path)) ws.on('message', (data, binary) => ws.send(data as Buffer, { binary }));
      conns.set(id, conn);
      for (const w of waiters.get(id) ?? []) w(conn);
      waiters.delete(id);
    });
  }

  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const url = req.url ?? '';
    handshakes.push({ id: idOf(url), url, rawHeaders: req.rawHeaders, headers: req.headers });
    socket.on('error', () => {});
    if (url.startsWith('/reject')) {
      const body = 'forbidden by upstream';
      socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nX-Why: nope\r\nConnection: close\r\n\r\n${body}`);
      return;
    }
    if (url.startsWith('/greet') || url.startsWith('/hold')) {
      const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      const head = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`;
      const greeting = url.startsWith('/greet') ? encodeFrame(0x1, 'greeting', { mask: false }) : Buffer.alloc(0);
      socket.write(Buffer.concat([Buffer.from(head, 'latin1'), greeting]));
      held.set(idOf(url), socket);
      return;
    }
    if (url.startsWith('/hang')) {
      held.set(idOf(url), socket);
      return;
    }
    const wss = url.startsWith('/deflate') ? deflateWss : plainWss;
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  server.on(options.tls ? 'secureConnection' : 'connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  if (options.tls) server.on('tlsClientError', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    origin: `${options.tls ? 'wss' : 'ws'}://127.0.0.1:${port}`,
    handshakes,
    plain,
    held,
    peek: (id) => conns.get(id),
    openCount: () => [...conns.values()].filter((c) => c.ws.readyState !== WebSocket.CLOSED).length,
    conn(id, ms = 5000) {
      const seen = conns.get(id);
      if (seen) return Promise.resolve(seen);
      return within(
        new Promise<ServerConn>((resolve) => {
          const list = waiters.get(id) ?? [];
          list.push(resolve);
          waiters.set(id, list);
        }),
        ms,
        `upstream connection ${id}`,
      );
    },
    close: () =>
      new Promise<void>((r) => {
        for (const c of conns.values()) c.ws.terminate();
        for (const s of sockets) s.destroy();
        for (const s of held.values()) s.destroy();
        plainWss.close();
        deflateWss.close();
        server.close(() => r());
      }),
  };
}

/** A TCP port on 127.0.0.1 nothing listens on (bound, then closed). */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A TCP server on 127.0.0.1:0 that accepts connections and never says a word. */
export async function startSilent(): Promise<{ port: number; accepted: net.Socket[]; close(): Promise<void> }> {
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => {
    s.on('error', () => {});
    accepted.push(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted,
    close: () =>
      new Promise<void>((r) => {
        for (const s of accepted) s.destroy();
        server.close(() => r());
      }),
  };
}

// --- ws clients --------------------------------------------------------------------------------

export interface Client extends Peer {
  /** The 101 as the client got it. */
  readonly response: http.IncomingMessage;
}

/** ws's client options, with the subprotocols to offer and the TLS options ws passes on (@types/ws lacks them). */
export type OpenOptions = ClientOptions & { protocols?: string[]; servername?: string; ALPNProtocols?: string[] };

/** Opens a ws client (no permessage-deflate unless asked), resolving once it is open. */
export function openClient(url: string, options: OpenOptions = {}, ms = 5000): Promise<Client> {
  const { protocols, ...rest } = options;
  const ws = new WebSocket(url, protocols ?? [], { perMessageDeflate: false, handshakeTimeout: ms, ...rest });
  const seen = watch(ws);
  let response: http.IncomingMessage | undefined;
  ws.on('upgrade', (res) => {
    response = res;
  });
  return within(
    new Promise<Client>((resolve, reject) => {
      ws.once('open', () => resolve({ ws, ...seen, response: response as http.IncomingMessage, socket: () => socketOf(ws) }));
      ws.once('unexpected-response', (_req, res) => {
        res.resume();
        reject(new Error(`${url}: upgrade answered ${res.statusCode}`));
        ws.terminate();
      });
      ws.once('error', reject);
    }),
    ms + 500,
    `open ${url}`,
  ).catch((error) => {
    ws.terminate();
    throw error;
  });
}

export interface Refusal {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Milliseconds from the attempt to the answer. */
  ms: number;
}

/** Tries a ws upgrade that should be refused; resolves with the answer (rejects if it opens). */
export function expectRefused(url: string, options: ClientOptions = {}, ms = 8000): Promise<Refusal> {
  const t0 = performance.now();
  const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: ms, ...options });
  return within(
    new Promise<Refusal>((resolve, reject) => {
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        const done = () => {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ms: performance.now() - t0 });
          ws.terminate();
        };
        res.on('end', done);
        res.on('error', done);
      });
      ws.once('open', () => {
        ws.terminate();
        reject(new Error(`${url} opened; expected a refusal`));
      });
      ws.once('error', (e) => reject(new Error(`${url}: ${e.message} (no HTTP answer)`)));
    }),
    ms + 500,
    `refusal of ${url}`,
  ).finally(() => ws.terminate());
}

// --- raw sockets -------------------------------------------------------------------------------

/** The sample key of RFC 6455 §1.3 and its accept value. */
export const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
export const SAMPLE_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

/** A handshake request head: GET `path`, Host `host`, the four WebSocket fields, then `extra` lines. */
export function wsHead(path: string, host: string, extra: string[] = [], fields = { key: SAMPLE_KEY, version: '13' }): string {
  return [
    `GET ${path} HTTP/1.1`,
    `Host: ${host}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${fields.key}`,
    `Sec-WebSocket-Version: ${fields.version}`,
    ...extra,
    '',
    '',
  ].join('\r\n');
}

export interface Frame {
  fin: boolean;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** One frame; client frames are masked (RFC 6455 §5.3). */
export function encodeFrame(opcode: number, payload: Buffer | string, options: { mask?: boolean; fin?: boolean } = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const mask = options.mask ?? true;
  const len = data.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (mask ? 4 : 0));
  head[0] = ((options.fin ?? true) ? 0x80 : 0) | opcode;
  head[1] = (mask ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(len, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2);
  if (!mask) return Buffer.concat([head, data]);
  const key = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  key.copy(head, 2 + ext);
  const out = Buffer.from(data);
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) ^ (key[i & 3] as number);
  return Buffer.concat([head, out]);
}

/** A close frame's payload: code and reason. */
export const closePayload = (code: number, reason = ''): Buffer => {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
};

/** Parses frames out of a byte stream. */
export class FrameParser {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly onFrame: (f: Frame) => void) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      const masked = ((b[1] as number) & 0x80) !== 0;
      let len = (b[1] as number) & 0x7f;
      let at = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        at = 10;
      }
      const keyAt = at;
      if (masked) at += 4;
      if (b.length < at + len) return;
      const payload = Buffer.from(b.subarray(at, at + len));
      if (masked) for (let i = 0; i < len; i++) payload[i] = (payload[i] as number) ^ (b[keyAt + (i & 3)] as number);
      this.onFrame({ fin: ((b[0] as number) & 0x80) !== 0, opcode: (b[0] as number) & 0x0f, masked, payload });
      this.buf = b.subarray(at + len);
    }
  }
}

export interface RawTunnel {
  readonly socket: net.Socket;
  readonly status: number;
  /** The response head exactly as received, up to and including the blank line. */
  readonly head: string;
  /** Header lines as [lowercased name, value], in wire order. */
  readonly headers: [string, string][];
  /** Frames received after the head. */
  readonly frames: Inbox<Frame>;
  /** Resolves when the socket has closed (performance.now()). */
  readonly closed: Promise<number>;
  send(frame: Buffer): void;
}

/** Writes `request` on a fresh socket to `port` and resolves once a response head arrived. */
export function rawUpgrade(port: number, request: string, ms = 5000): Promise<RawTunnel> {
  const socket = net.connect(port, '127.0.0.1');
  const frames = new Inbox<Frame>();
  const parser = new FrameParser((f) => frames.push(f));
  const closed = new Promise<number>((r) => socket.on('close', () => r(performance.now())));
  socket.on('error', () => {});
  return within(
    new Promise<RawTunnel>((resolve, reject) => {
      let acc = Buffer.alloc(0);
      let headDone = false;
      socket.on('connect', () => socket.write(request, 'latin1'));
      socket.on('data', (chunk: Buffer) => {
        if (headDone) {
          parser.push(chunk);
          return;
        }
        acc = Buffer.concat([acc, chunk]);
        const end = acc.indexOf('\r\n\r\n');
        if (end < 0) return;
        headDone = true;
        const head = acc.subarray(0, end + 4).toString('latin1');
        const lines = head.slice(0, -4).split('\r\n');
        const status = Number((lines[0] ?? '').split(' ')[1] ?? 0);
        const headers = lines.slice(1).map((l): [string, string] => {
          const i = l.indexOf(':');
          return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()];
        });
        const rest = acc.subarray(end + 4);
        if (rest.length) parser.push(rest);
        resolve({ socket, status, head, headers, frames, closed, send: (frame) => socket.write(frame) });
      });
      socket.on('close', () => {
        if (!headDone) reject(new Error(`connection closed before a response head; got ${JSON.stringify(acc.toString('latin1'))}`));
      });
    }),
    ms,
    'raw upgrade response head',
  ).catch((error) => {
    socket.destroy();
    throw error;
  });
}

// --- payloads and floods -----------------------------------------------------------------------

/** `n` bytes of a pattern that shifts every 256 bytes (a reordered or dropped block shows). */
export function pattern(n: number, seed = 0): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >>> 8) * 7 + seed) & 0xff;
  return b;
}

export interface Flood {
  /** Frames handed to ws so far (each `frameBytes`). */
  readonly frames: number;
  /** Bytes handed to ws so far. */
  readonly offered: number;
  /** Bytes handed to the kernel: offered minus what ws and the socket still hold. */
  written(): number;
  /** Ends the flood after the frame in hand; then a text message `{"end":<frames>}` follows the last frame. */
  stop(): void;
  /** Resolves with the frame count once the end message was handed to ws. */
  readonly done: Promise<number>;
}

/**
 * Sends binary frames of `frameBytes` (seq as uint32 at the start and the end, `pattern` in
 * between) on `ws` as fast as its socket drains, keeping at most `window` bytes queued on the
 * sender, until `maxBytes` were offered or `stop()`.
 */
export function flood(ws: WebSocket, options: { frameBytes?: number; maxBytes?: number; window?: number } = {}): Flood {
  const frameBytes = options.frameBytes ?? 1 << 20;
  const maxBytes = options.maxBytes ?? 1024 ** 3;
  const window = options.window ?? 4 << 20;
  const template = pattern(frameBytes);
  const socket = socketOf(ws);
  let frames = 0;
  let stopped = false;
  let wake: (() => void) | null = null;
  const state = {
    get frames() {
      return frames;
    },
    get offered() {
      return frames * frameBytes;
    },
    written: () => frames * frameBytes - ws.bufferedAmount,
    stop() {
      stopped = true;
      wake?.();
    },
    done: (async () => {
      while (!stopped && frames * frameBytes < maxBytes && ws.readyState === WebSocket.OPEN) {
        if (ws.bufferedAmount >= window) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            socket.once('drain', resolve);
            socket.once('close', resolve);
          });
          wake = null;
          continue;
        }
        const frame = Buffer.from(template);
        frame.writeUInt32BE(frames, 0);
        frame.writeUInt32BE(frames, frameBytes - 4);
        ws.send(frame, { binary: true });
        frames++;
      }
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ end: frames }));
      return frames;
    })(),
  };
  return state;
}

/**
 * Takes messages from `inbox` until the flood's end message: every frame must come whole, in
 * order, with its pattern. Resolves with the frame count.
 */
export async function verifyFlood(inbox: Inbox<Message>, frameBytes: number, ms: number): Promise<number> {
  const template = pattern(frameBytes);
  const end = Date.now() + ms;
  for (let seq = 0; ; seq++) {
    const m = await inbox.next(Math.max(1, end - Date.now()), `flood frame ${seq}`);
    if (!m.binary) {
      const { end: sent } = JSON.parse(m.data.toString('utf8')) as { end: number };
      if (sent !== seq) throw new Error(`flood: ${sent} frames sent, ${seq} arrived`);
      return seq;
    }
    if (m.data.length !== frameBytes) throw new Error(`flood frame ${seq}: ${m.data.length} bytes, expected ${frameBytes}`);
    const first = m.data.readUInt32BE(0);
    const last = m.data.readUInt32BE(frameBytes - 4);
    if (first !== seq || last !== seq) throw new Error(`flood frame ${seq} arrived as seq ${first}/${last} (out of order)`);
    for (const at of [4, 4096, frameBytes >>> 1, frameBytes - 5])
      if (m.data[at] !== template[at]) throw new Error(`flood frame ${seq}: byte ${at} is ${m.data[at]}, expected ${template[at]}`);
  }
}

// --- plain answers -----------------------------------------------------------------------------

/**
 * Sends exact bytes on a fresh socket and resolves as soon as one whole response arrived (its
 * Content-Length or chunked body read, or the peer closed): no waiting for silence.
 */
export function rawExchange(port: number, bytes: string, ms = 5000): Promise<RawResponse> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  let acc = Buffer.alloc(0);
  return within(
    new Promise<RawResponse>((resolve) => {
      const complete = (): boolean => {
        const end = acc.indexOf('\r\n\r\n');
        if (end < 0) return false;
        const r = parseRaw(acc);
        if (r.status === 101 || r.status === 204 || r.status === 304 || (r.status >= 100 && r.status < 200)) return true;
        const cl = r.headers.find(([n]) => n === 'content-length');
        if (cl) return r.body.length >= Number(cl[1]);
        if (r.headers.some(([n, v]) => n === 'transfer-encoding' && /chunked/i.test(v))) return r.body.includes('0\r\n\r\n');
        return false;
      };
      socket.on('connect', () => socket.write(bytes, 'latin1'));
      socket.on('data', (c: Buffer) => {
        acc = Buffer.concat([acc, c]);
        if (complete()) resolve(parseRaw(acc));
      });
      socket.on('close', () => resolve(parseRaw(acc)));
    }),
    ms,
    `answer to ${JSON.stringify(bytes.slice(0, 60))}`,
  ).finally(() => socket.destroy());
}

/**
 * Resolves once `read()` has not changed for `quietMs` (polled every 50 ms); throws after
 * `maxMs` naming the last value: a flood the proxy keeps swallowing never stalls.
 */
export async function untilStalled(read: () => number, quietMs: number, maxMs: number, what: string): Promise<number> {
  const t0 = Date.now();
  let last = read();
  let since = Date.now();
  for (;;) {
    await new Promise((r) => setTimeout(r, 50));
    const now = read();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return now;
    if (Date.now() - t0 > maxMs) throw new Error(`${what}: still moving after ${maxMs} ms (at ${(now / 1024 ** 2).toFixed(1)} MiB)`);
  }
}
