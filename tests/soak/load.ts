// The soak's clients, through the proxy:
// - WsLoad: N concurrent WebSocket sessions (the `ws` package client). Each sends numbered
//   messages of varied sizes (a few bytes to 160 KiB, some over 64 KiB; text and binary; some
//   in several fragments) in bursts of 1 to WINDOW, the next burst once every echo of the last
//   is in and a pause of PAUSE_MS has passed, and checks that every echo is the next one it
//   sent, byte for byte; it pings every second and checks each pong. After
//   a lifetime of 1-4 s it waits for its last echoes and ends, one of four ways (it closes; it
//   asks the upstream to close; it drops its socket; it asks the upstream to drop its socket),
//   and a new session takes its place until the load stops.
// - SseLoad: N SSE streams (node:http client). Each checks every event's sequence number,
//   checksum and payload; after 2-5 s it leaves and reconnects with Last-Event-ID, so the
//   sequence must go on without a gap across connections.
// Nothing is counted as fine that was not seen: an echo that never came is lost.
import http from 'node:http';
import WebSocket from 'ws';
import { checksum, prng, ssePayload, wsMessage, wsMessageMatches } from './content.ts';

/** Messages in flight at most per session: each burst sends 1 to WINDOW, then waits for their echoes. */
const WINDOW = 4;
/** The pause between a burst's last echo and the next burst, ms (uniform in this range). */
const PAUSE_MS = [100, 500] as const;
const DRAIN_MS = 10_000;
const CLOSE_MS = 10_000;

export interface WsStats {
  sessions: number;
  opened: number;
  openErrors: number;
  messages: number;
  echoed: number;
  bytes: number;
  large: number;
  fragmented: number;
  corrupted: number;
  outOfOrder: number;
  lost: number;
  pings: number;
  pongs: number;
  badPongs: number;
  unexpectedCloses: number;
  badCloses: number;
  hung: number;
  ends: Record<string, number>;
  errors: string[];
}

type End = 'client-close' | 'upstream-close' | 'client-drop' | 'upstream-drop';

/** Size of a message: mostly up to 1 KiB, a third 1-16 KiB, 1 in 40 over 64 KiB (to 160 KiB). */
function sizeOf(r: () => number): number {
  const x = r();
  if (x < 0.64) return 1 + Math.floor(r() * 1024);
  if (x < 0.975) return 1024 + Math.floor(r() * 15 * 1024);
  return 65536 + 1 + Math.floor(r() * 96 * 1024);
}

export class WsLoad {
  readonly stats: WsStats = {
    sessions: 0,
    opened: 0,
    openErrors: 0,
    messages: 0,
    echoed: 0,
    bytes: 0,
    large: 0,
    fragmented: 0,
    corrupted: 0,
    outOfOrder: 0,
    lost: 0,
    pings: 0,
    pongs: 0,
    badPongs: 0,
    unexpectedCloses: 0,
    badCloses: 0,
    hung: 0,
    ends: {},
    errors: [],
  };
  private running = false;
  private nextId = 0;
  private readonly live = new Set<Promise<void>>();
  private readonly sockets = new Set<WebSocket>();

  constructor(
    private readonly url: string,
    private readonly concurrency: number,
    private readonly seed: number,
  ) {}

  /** Starts `concurrency` sessions, spread over about a second. */
  start(): void {
    this.running = true;
    for (let i = 0; i < this.concurrency; i++) {
      const t = setTimeout(() => this.running && this.spawn(), Math.floor((i * 1000) / this.concurrency));
      t.unref();
    }
  }

  /** Stops starting sessions; resolves once every session has ended (each waits for its echoes). */
  async stop(): Promise<void> {
    this.running = false;
    const limitMs = DRAIN_MS + CLOSE_MS + 5_000;
    const deadline = Date.now() + limitMs;
    while (this.live.size > 0 && Date.now() < deadline) await Promise.race([...this.live, sleep(500)]);
    if (this.live.size > 0) {
      this.stats.hung += this.live.size;
      this.note(`${this.live.size} sessions did not end within ${limitMs} ms of the stop; dropped`);
    }
    this.kill();
  }

  /** Drops every socket at once (cleanup after a failure). */
  kill(): void {
    for (const ws of this.sockets) ws.terminate();
    this.sockets.clear();
  }

  private note(error: string): void {
    if (this.stats.errors.length < 20) this.stats.errors.push(error);
  }

  private spawn(): void {
    const id = this.nextId++;
    const p = this.session(id).catch((error) => this.note(`session ${id}: ${error instanceof Error ? error.message : error}`));
    this.live.add(p);
    void p.finally(() => {
      this.live.delete(p);
      if (this.running) this.spawn();
    });
  }

  private async session(id: number): Promise<void> {
    const s = this.stats;
    const r = prng(this.seed * 1_000_003 + id);
    s.sessions++;
    const ws = new WebSocket(`${this.url}/ws/${id}`, { perMessageDeflate: false, handshakeTimeout: 10_000, maxPayload: 64 << 20 });
    this.sockets.add(ws);
    const queue: { seq: number; len: number; binary: boolean }[] = [];
    const pings: string[] = [];
    let seq = 0;
    let wasOpen = false;
    let closing = false;
    let drained: (() => void) | undefined;
    let closed: ((code: number, reason: string) => void) | undefined;
    const closedP = new Promise<{ code: number; reason: string }>((resolve) => {
      closed = (code, reason) => resolve({ code, reason });
    });
    ws.on('error', (e) => {
      if (!closing) this.note(`session ${id}: ${e.message}`);
    });
    ws.on('close', (code, reason) => {
      this.sockets.delete(ws);
      if (wasOpen && !closing) {
        s.unexpectedCloses++;
        s.lost += queue.length;
        if (queue.length) this.note(`session ${id}: closed (${code}) with ${queue.length} echoes outstanding`);
        queue.length = 0;
        drained?.();
      }
      closed?.(code, reason.toString());
    });
    const opened = await new Promise<boolean>((resolve) => {
      ws.once('open', () => resolve(true));
      ws.once('unexpected-response', (_req, res) => {
        this.note(`session ${id}: handshake answered ${res.statusCode}`);
        resolve(false);
      });
      ws.once('close', () => resolve(false));
    });
    if (!opened) {
      s.openErrors++;
      closing = true;
      ws.terminate();
      this.sockets.delete(ws);
      return;
    }
    wasOpen = true;
    s.opened++;
    const endAt = Date.now() + 1000 + Math.floor(r() * 3000);
    const send = () => {
      const len = sizeOf(r);
      const binary = r() < 0.6;
      const data = wsMessage(id, seq, len, binary);
      queue.push({ seq, len, binary });
      seq++;
      s.messages++;
      s.bytes += data.length;
      if (len > 65536) s.large++;
      if (data.length > 64 && r() < 0.05) {
        // Several frames: the first two with fin false, continuations following.
        s.fragmented++;
        const a = Math.floor(data.length / 3);
        const b = Math.floor((2 * data.length) / 3);
        ws.send(data.subarray(0, a), { binary, fin: false });
        ws.send(data.subarray(a, b), { binary, fin: false });
        ws.send(data.subarray(b), { binary, fin: true });
      } else ws.send(data, { binary });
    };
    const more = () => this.running && Date.now() < endAt;
    let pause: NodeJS.Timeout | undefined;
    // 1 to WINDOW messages at once; the next burst after all their echoes and a pause.
    const burst = () => {
      if (ws.readyState !== WebSocket.OPEN) return;
      const n = 1 + Math.floor(r() * WINDOW);
      for (let i = 0; i < n; i++) send();
    };
    ws.on('message', (data: Buffer, isBinary) => {
      const head = queue.shift();
      if (head === undefined) {
        s.corrupted++;
        this.note(`session ${id}: an echo nothing was waiting for (${data.length} bytes)`);
        return;
      }
      if (isBinary === head.binary && wsMessageMatches(data, id, head.seq, head.len, head.binary)) s.echoed++;
      else {
        const later = queue.findIndex((q) => wsMessageMatches(data, id, q.seq, q.len, q.binary));
        if (later >= 0) {
          s.outOfOrder++;
          this.note(`session ${id}: echo of ${queue[later]?.seq} came when ${head.seq} was due`);
        } else {
          s.corrupted++;
          this.note(`session ${id}: echo of ${head.seq} (${head.len} bytes, ${head.binary ? 'binary' : 'text'}) differs: got ${data.length} bytes`);
        }
      }
      if (queue.length === 0) {
        if (more()) pause = setTimeout(burst, PAUSE_MS[0] + Math.floor(r() * (PAUSE_MS[1] - PAUSE_MS[0])));
        else drained?.();
      }
    });
    ws.on('pong', (data: Buffer) => {
      const want = pings.shift();
      if (want !== undefined && data.toString('latin1') === want) s.pongs++;
      else s.badPongs++;
    });
    const pinger = setInterval(() => {
      const p = `p${id}.${s.pings}`;
      pings.push(p);
      s.pings++;
      ws.ping(p);
    }, 1000);
    try {
      burst();
      // Until the lifetime ends (or the load stops) and the last echo is in.
      await new Promise<void>((resolve) => {
        let check: NodeJS.Timeout | undefined;
        let limit: NodeJS.Timeout | undefined;
        const done = () => {
          clearInterval(check);
          clearTimeout(limit);
          drained = undefined;
          resolve();
        };
        check = setInterval(() => !more() && queue.length === 0 && done(), 100);
        limit = setTimeout(done, endAt - Date.now() + DRAIN_MS);
        drained = done;
        void closedP.then(done);
      });
      clearInterval(pinger);
      clearTimeout(pause);
      if (ws.readyState !== WebSocket.OPEN) return; // closed under it: counted above
      if (queue.length > 0) {
        s.lost += queue.length;
        this.note(`session ${id}: ${queue.length} echoes did not come within ${DRAIN_MS} ms`);
        queue.length = 0;
      }
      // Outstanding pongs get a moment; the close below waits for the peer anyway.
      const x = r();
      const end: End = x < 0.7 ? 'client-close' : x < 0.8 ? 'upstream-close' : x < 0.9 ? 'client-drop' : 'upstream-drop';
      s.ends[end] = (s.ends[end] ?? 0) + 1;
      closing = true;
      if (end === 'client-close') ws.close(1000, 'client-bye');
      else if (end === 'upstream-close') ws.send('!close');
      else if (end === 'upstream-drop') ws.send('!reset');
      else ws.terminate();
      const limit = sleep(CLOSE_MS).then(() => null);
      const got = await Promise.race([closedP, limit]);
      if (got === null) {
        s.hung++;
        this.note(`session ${id}: no close within ${CLOSE_MS} ms of ${end}`);
        ws.terminate();
        return;
      }
      const ok =
        end === 'client-close'
          ? got.code === 1000 && got.reason === 'client-bye'
          : end === 'upstream-close'
            ? got.code === 1000 && got.reason === 'upstream-bye'
            : true; // a dropped connection: 1006 expected, nothing to compare
      if (!ok) {
        s.badCloses++;
        this.note(`session ${id}: ${end} ended with ${got.code} "${got.reason}"`);
      }
    } finally {
      clearInterval(pinger);
      clearTimeout(pause);
    }
  }
}

export interface SseStats {
  connections: number;
  events: number;
  resumed: number;
  lost: number;
  corrupted: number;
  outOfOrder: number;
  badResponses: number;
  unexpectedEnds: number;
  maxGapMs: number;
  errors: string[];
}

export class SseLoad {
  readonly stats: SseStats = {
    connections: 0,
    events: 0,
    resumed: 0,
    lost: 0,
    corrupted: 0,
    outOfOrder: 0,
    badResponses: 0,
    unexpectedEnds: 0,
    maxGapMs: 0,
    errors: [],
  };
  private running = false;
  private readonly requests = new Set<http.ClientRequest>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Next seq expected, per stream (across its connections). */
  private readonly next: number[] = [];

  constructor(
    private readonly port: number,
    private readonly streams: number,
    private readonly base: number,
  ) {}

  start(): void {
    this.running = true;
    for (let i = 0; i < this.streams; i++) this.connect(this.base + i);
  }

  /** Ends every stream now (the client leaves, as a browser tab does). */
  stop(): void {
    this.running = false;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const req of this.requests) req.destroy();
    this.requests.clear();
  }

  private note(error: string): void {
    if (this.stats.errors.length < 20) this.stats.errors.push(error);
  }

  private later(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private connect(stream: number): void {
    if (!this.running) return;
    const s = this.stats;
    const expected = this.next[stream] ?? 0;
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (expected > 0) {
      headers['last-event-id'] = String(expected - 1);
      s.resumed++;
    }
    s.connections++;
    const req = http.request({ host: '127.0.0.1', port: this.port, path: `/sse/${stream}`, headers, agent: false });
    this.requests.add(req);
    // A stall (no byte for 15 s, where events come every 150-350 ms) ends the connection as an error.
    req.setTimeout(15_000, () => req.destroy(new Error('no byte for 15 s')));
    let leaving = false;
    let over = false;
    const again = (why: string | null) => {
      if (over) return;
      over = true;
      this.requests.delete(req);
      if (why !== null && this.running) {
        s.unexpectedEnds++;
        this.note(`stream ${stream}: ${why}`);
      }
      if (this.running) this.later(() => this.connect(stream), why === null ? Math.floor(Math.random() * 100) : 500);
    };
    req.on('error', (e) => {
      if (!leaving) again(`request error: ${e.message}`);
    });
    req.on('response', (res) => {
      const type = String(res.headers['content-type'] ?? '');
      if (res.statusCode !== 200 || !type.startsWith('text/event-stream')) {
        s.badResponses++;
        this.note(`stream ${stream}: answered ${res.statusCode} ${type}`);
        res.resume();
        leaving = true;
        req.destroy();
        again(null);
        return;
      }
      let buf = '';
      let last = Date.now();
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let end = buf.indexOf('\n\n');
        while (end >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          end = buf.indexOf('\n\n');
          this.event(stream, block, last);
          last = Date.now();
        }
      });
      res.on('error', () => {});
      res.on('end', () => {
        if (!leaving) again('the stream ended');
      });
      res.on('aborted', () => {
        if (!leaving) again('the stream was aborted');
      });
      // A lifetime of 2-5 s, then leave and come back with Last-Event-ID.
      this.later(
        () => {
          leaving = true;
          req.destroy();
          again(null);
        },
        2000 + Math.floor(Math.random() * 3000),
      );
    });
    req.end();
  }

  private event(stream: number, block: string, previousAt: number): void {
    const s = this.stats;
    let id: string | undefined;
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':') || line === '') continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + (line[colon + 1] === ' ' ? 2 : 1));
      if (field === 'id') id = value;
      else if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (id === undefined && data.length === 0) return; // comments only
    const gap = Date.now() - previousAt;
    if (gap > s.maxGapMs) s.maxGapMs = gap;
    const seq = Number(id);
    const expected = this.next[stream] ?? 0;
    let meta: { stream?: number; seq?: number; len?: number; sum?: string } = {};
    try {
      meta = JSON.parse(data[0] ?? '');
    } catch {
      // checked below
    }
    const payload = data[1] ?? '';
    const intact =
      event === 'tick' &&
      data.length === 2 &&
      meta.stream === stream &&
      meta.seq === seq &&
      meta.len === payload.length &&
      meta.sum === checksum(payload) &&
      payload === ssePayload(stream, seq);
    if (!intact) {
      s.corrupted++;
      this.note(`stream ${stream}: event ${id} is not what was sent (${block.length} bytes)`);
    }
    if (!Number.isInteger(seq)) return;
    if (seq === expected) {
      s.events++;
    } else if (seq > expected) {
      s.lost += seq - expected;
      s.events++;
      this.note(`stream ${stream}: events ${expected}..${seq - 1} never came`);
    } else {
      s.outOfOrder++;
      this.note(`stream ${stream}: event ${seq} again or late (expected ${expected})`);
      return;
    }
    this.next[stream] = seq + 1;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
