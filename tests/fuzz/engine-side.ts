// Side (a) of the request fuzzer: the real `createHttp1Engine` (src/server/bun-native.ts) fed
// through an in-memory socket exactly as net-engine.ts feeds it a node:net one (open, data
// while not paused, drain, close), with an app that records what it is handed. No network.
import type { BunSocket } from '../../src/http1/bun-socket-types.ts';
import { createHttp1Engine, type Http1Conn, type Http1Engine } from '../../src/server/bun-native.ts';
import type { AppFetch } from '../../src/server/types.ts';
import { normaliseFields, type Outcome, quiesce, recordOutput, type SeenRequest, turns } from './outcome.ts';

/** The one engine every run shares (as one listener serves many connections); outcomes are per connection. */
let engine: Http1Engine | null = null;
/** Which outcome the app's calls belong to, by connection (`env.conn` is per connection). */
const byConn = new WeakMap<object, Outcome>();

const OK = () => new Response('ok\n', { headers: { 'content-length': '3' } });

/** Records the request, then reads its body whole (as `forward` would stream it) before answering. */
const app: AppFetch = async (request, env) => {
  const outcome = byConn.get(env.conn);
  const line = env.line;
  if (outcome === undefined || line === undefined) return OK();
  const seen: SeenRequest = {
    method: line.method,
    target: line.target,
    version: line.version,
    fields: normaliseFields(request.headers),
    body: '',
    complete: request.body === null,
  };
  outcome.requests.push(seen);
  outcome.order.push('r');
  if (request.body !== null) {
    const reader = request.body.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        seen.body += Buffer.from(value).toString('latin1');
      }
      seen.complete = true;
    } catch {
      // The body broke (the engine refused its chunked framing, or the connection went): the
      // refusal is recorded by onBadRequest, the request stays incomplete.
    }
  }
  return OK();
};

function theEngine(): Http1Engine {
  engine ??= createHttp1Engine(app, {
    name: 'fuzz',
    hostname: '127.0.0.1',
    port: 0,
    proto: 'http',
    maxHeaderBytes: 8192,
    onBadRequest: (info) => {
      // The client of a report is its connection's peer address; each fake socket has its own.
      const outcome = bySocketAddress.get(info.client);
      if (outcome === undefined) return;
      outcome.refusal ??= { code: String(info.status), reason: info.reason, after: outcome.requests.length };
      outcome.order.push('x');
    },
  });
  return engine;
}

/** onBadRequest names the connection only by its peer address: each run gets a unique one. */
const bySocketAddress = new Map<string, Outcome>();
let nextPeer = 0;

/** A node:net socket as NodeSocketShim sees it, kept in memory: writes collected, pause honoured. */
class MemorySocket implements BunSocket<Http1Conn> {
  data!: Http1Conn;
  readonly remoteAddress: string;
  readonly written: Buffer[] = [];
  paused = false;
  ended = false;
  dead = false;
  /** Reads that arrived while paused (a paused node socket emits none). */
  readonly held: Buffer[] = [];
  constructor(
    readonly engine: Http1Engine,
    peer: string,
  ) {
    this.remoteAddress = peer;
  }
  write(data: Uint8Array, byteOffset = 0, byteLength = data.byteLength - byteOffset): number {
    if (this.dead || this.ended) return -1;
    this.written.push(Buffer.from(data.subarray(byteOffset, byteOffset + byteLength)));
    return byteLength;
  }
  end(): void {
    this.ended = true;
  }
  shutdown(): void {
    this.ended = true;
  }
  terminate(): void {
    if (this.dead) return;
    this.dead = true;
    // node's destroy() emits 'close' on a later tick; net-engine.ts forwards it to the engine.
    setImmediate(() => this.engine.handlers.close(this));
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
    setImmediate(() => this.flush());
  }
  /** Delivers one read, or holds it while paused. */
  deliver(chunk: Buffer): void {
    if (this.paused || this.held.length > 0) this.held.push(chunk);
    else if (!this.dead) this.engine.handlers.data(this, chunk);
    this.flush();
  }
  flush(): void {
    while (!this.paused && !this.dead && this.held.length > 0) this.engine.handlers.data(this, this.held.shift() as Buffer);
  }
  get progress(): number {
    let n = this.held.length + (this.ended ? 1 : 0) + (this.dead ? 2 : 0);
    for (const part of this.written) n += part.byteLength;
    return n;
  }
}

/** Feeds `segments` (each one socket read) to our engine on one connection and returns what it did. */
export async function runEngine(segments: readonly Buffer[]): Promise<Outcome> {
  const outcome: Outcome = { requests: [], refusal: null, closed: false, output: '', order: [] };
  const peer = `10.${(nextPeer >> 16) & 255}.${(nextPeer >> 8) & 255}.${nextPeer & 255}`;
  nextPeer = (nextPeer + 1) % 16_777_216;
  bySocketAddress.set(peer, outcome);
  const eng = theEngine();
  const socket = new MemorySocket(eng, peer);
  eng.handlers.open?.(socket);
  byConn.set(socket.data.info, outcome);
  const progress = () => socket.progress + outcome.order.length + outcome.requests.reduce((n, r) => n + r.body.length + (r.complete ? 1 : 0), 0);
  try {
    for (const segment of segments) {
      socket.deliver(Buffer.from(segment));
      await turns(2);
    }
    await quiesce(progress);
  } finally {
    outcome.closed = socket.ended || socket.dead;
    outcome.output = recordOutput(Buffer.concat(socket.written));
    // The client goes away: the engine cancels what is still in flight.
    if (!socket.dead) {
      socket.dead = true;
      eng.handlers.close(socket);
    }
    bySocketAddress.delete(peer);
    await turns(1);
  }
  return outcome;
}

/** Stops the shared engine (its sweep timer is unref'd, but a test run ends cleaner this way). */
export async function stopEngine(): Promise<void> {
  const running = engine;
  engine = null;
  await running?.stop(0);
}
