// Helpers of the load-balancing e2e cases (balancing.test.ts): stub upstreams as child
// processes (tests/e2e/lb-upstream.ts) that can be SIGKILLed, SIGSTOPped and restarted on the
// same port; in-process upstreams that say who they are; a bounded load loop; clients that bind
// another loopback address. Loopback only; every child is ended by PID.
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import type net from 'node:net';
import { join } from 'node:path';
import { sleep } from '../support/wait.ts';
import { type LogLine, type ProxyHandle, ROOT, startUpstream, type Upstream } from './harness.ts';

const STUB = join(ROOT, 'tests/e2e/lb-upstream.ts');

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) if (child.pid && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
});

/** One request a stub saw, stamped with the time (Date.now) its line reached this process. */
export interface StubRequest {
  readonly at: number;
  /** Which run of the stub saw it: 1, then 2 after the first restart, ... */
  readonly gen: number;
  readonly method: string;
  readonly url: string;
  readonly id: string | null;
}

export interface Stub {
  readonly port: number;
  readonly origin: string;
  /** Every request head the stub saw, over all its runs, health checks included. */
  readonly requests: StubRequest[];
  /** The run now (or last) going. */
  gen(): number;
  pid(): number;
  alive(): boolean;
  /** Date.now() when the current run announced it listens. */
  readyAt(): number;
  /** SIGKILL; resolves once it has exited. Returns the time the signal was sent. */
  kill(): Promise<number>;
  /** Starts a new run on the same port; resolves with its readyAt. */
  restart(): Promise<number>;
  /** SIGSTOP (the listening socket stays: connections are accepted by the kernel, never answered). */
  pause(): number;
  /** SIGCONT. */
  resume(): number;
  /** Ends the stub (SIGKILL, after SIGCONT if paused); safe to call twice. */
  close(): Promise<void>;
}

/** Requests other than health checks. */
export const served = (requests: readonly StubRequest[]) => requests.filter((r) => r.url !== '/healthz');

/** Starts lb-upstream.ts under Node (tsx) on `port` (0: a free one). */
export async function startStub(options: { port?: number; backlog?: number } = {}): Promise<Stub> {
  const requests: StubRequest[] = [];
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let gen = 0;
  let readyAt = 0;
  let port = options.port ?? 0;

  const run = () =>
    new Promise<number>((resolve, reject) => {
      gen += 1;
      const thisGen = gen;
      const args = ['--import', 'tsx', STUB, '--port', String(port)];
      if (options.backlog !== undefined) args.push('--backlog', String(options.backlog));
      const c = spawn(process.execPath, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
      child = c;
      children.add(c);
      let stderr = '';
      let partial = '';
      const timer = setTimeout(() => reject(new Error(`stub on port ${port} did not listen within 15 s: ${stderr}`)), 15_000);
      exited = new Promise<void>((r) =>
        c.on('exit', () => {
          children.delete(c);
          clearTimeout(timer);
          r();
        }),
      );
      c.on('error', reject);
      c.stderr!.on('data', (d) => {
        stderr += d;
      });
      c.stdout!.setEncoding('utf8');
      c.stdout!.on('data', (chunk: string) => {
        const now = Date.now();
        partial += chunk;
        let nl = partial.indexOf('\n');
        while (nl >= 0) {
          const text = partial.slice(0, nl);
          partial = partial.slice(nl + 1);
          nl = partial.indexOf('\n');
          let ev: { ev: string; port?: number; method?: string; url?: string; id?: string | null };
          try {
            ev = JSON.parse(text);
          } catch {
            continue;
          }
          if (ev.ev === 'listening') {
            port = ev.port as number;
            readyAt = now;
            clearTimeout(timer);
            resolve(now);
          } else if (ev.ev === 'req') requests.push({ at: now, gen: thisGen, method: ev.method ?? '', url: ev.url ?? '', id: ev.id ?? null });
        }
      });
    });

  await run();
  const isAlive = () => child !== undefined && child.exitCode === null && child.signalCode === null;
  const stub: Stub = {
    get port() {
      return port;
    },
    get origin() {
      return `http://127.0.0.1:${port}`;
    },
    requests,
    gen: () => gen,
    pid: () => child?.pid as number,
    alive: isAlive,
    readyAt: () => readyAt,
    async kill() {
      const at = Date.now();
      if (isAlive()) process.kill(child?.pid as number, 'SIGKILL');
      await exited;
      return at;
    },
    async restart() {
      if (isAlive()) await stub.kill();
      // The port was just freed; another process could take it in between (unlikely on a test box).
      for (let tries = 0; ; tries++) {
        try {
          return await run();
        } catch (error) {
          if (tries >= 3) throw error;
          await sleep(100);
        }
      }
    },
    pause() {
      process.kill(child?.pid as number, 'SIGSTOP');
      return Date.now();
    },
    resume() {
      process.kill(child?.pid as number, 'SIGCONT');
      return Date.now();
    },
    async close() {
      if (!isAlive()) return;
      try {
        process.kill(child?.pid as number, 'SIGCONT');
      } catch {
        // gone already
      }
      await stub.kill();
    },
  };
  return stub;
}

/** In-process upstream that names itself: `x-stub: <port>` on every answer, JSON {port, id}. */
export interface Named extends Upstream {
  /** Non-health requests seen. */
  hits(): number;
}

export async function startNamed(options: { delayMs?: number; cookie?: boolean } = {}): Promise<Named> {
  let port = 0;
  const u = await startUpstream((req, res, seen) => {
    if (seen.url === '/healthz') {
      res.end('ok');
      return;
    }
    const delay = options.delayMs ?? Number(req.headers['x-delay-ms'] ?? 0);
    const body = JSON.stringify({ port, id: req.headers['x-req-id'] ?? null, method: seen.method, bytes: seen.bodyBytes });
    const answer = () => {
      const headers: [string, string][] = [
        ['content-type', 'application/json'],
        ['content-length', String(Buffer.byteLength(body))],
        ['x-stub', String(port)],
      ];
      if (seen.url.startsWith('/with-cookie')) headers.push(['set-cookie', 'app=1; Path=/']);
      res.writeHead(200, headers as unknown as http.OutgoingHttpHeaders);
      res.end(body);
    };
    if (delay > 0) setTimeout(answer, delay);
    else answer();
  });
  port = u.port;
  return Object.assign(u, { hits: () => u.requests.filter((r) => r.url !== '/healthz').length });
}

/** A port nobody listens on: bind one, note it, close it. */
export async function deadPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The `x-stub` header: which upstream answered (null for the proxy's own answers). */
  stub: number | null;
  ms: number;
}

/** One request through the proxy on `port` with Host `host`; `agent` (keep-alive) or a fresh socket. */
export function call(
  port: number,
  host: string,
  options: {
    path?: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    agent?: http.Agent;
    localAddress?: string;
    timeoutMs?: number;
  } = {},
): Promise<Answer> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host, ...options.headers };
    if (options.body !== undefined) headers['content-length'] = String(Buffer.byteLength(options.body));
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: options.path ?? '/',
        method: options.method ?? 'GET',
        headers,
        agent: options.agent ?? false,
        localAddress: options.localAddress,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => {
          const stub = res.headers['x-stub'];
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            stub: typeof stub === 'string' ? Number(stub) : null,
            ms: performance.now() - t0,
          });
        });
        res.on('error', reject);
        res.on('aborted', () => reject(new Error('response aborted')));
      },
    );
    req.setTimeout(options.timeoutMs ?? 10_000, () => req.destroy(new Error(`no answer within ${options.timeoutMs ?? 10_000} ms`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** `n` sequential GETs; the `x-stub` of each answer (asserting 200). */
export async function sequence(port: number, host: string, n: number, options: Parameters<typeof call>[2] = {}): Promise<number[]> {
  const agent = options.agent ?? new http.Agent({ keepAlive: true, maxSockets: 1 });
  const out: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const a = await call(port, host, { ...options, agent });
      if (a.status !== 200) throw new Error(`request ${i} to ${host}: ${a.status} ${a.body}`);
      out.push(a.stub as number);
    }
  } finally {
    if (!options.agent) agent.destroy();
  }
  return out;
}

/** How many of each value. */
export function tally<T>(values: readonly T[]): Map<T, number> {
  const m = new Map<T, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return m;
}

/** One client request of a load loop. */
export interface Outcome {
  readonly id: string;
  readonly method: string;
  readonly start: number;
  readonly end: number;
  /** 0 when the request failed without a response (`error` says why). */
  readonly status: number;
  readonly stub: number | null;
  readonly error: string | null;
}

export interface Load {
  readonly outcomes: Outcome[];
  /** Ends the loop after the requests in flight; resolves with every outcome. */
  stop(): Promise<Outcome[]>;
}

/**
 * A bounded load loop: `workers` clients, each sending one request at a time (keep-alive), with
 * `pauseMs` between, `x-req-id: <prefix>-<worker>-<n>` (POSTs also carry it in a small body),
 * until stopped, `maxRequests` in all or `maxMs`, whichever comes first.
 */
export function startLoad(options: {
  port: number;
  host: string;
  method?: 'GET' | 'POST';
  workers: number;
  pauseMs: number;
  maxRequests: number;
  maxMs: number;
  prefix: string;
  timeoutMs?: number;
}): Load {
  const outcomes: Outcome[] = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.workers });
  const method = options.method ?? 'GET';
  const deadline = Date.now() + options.maxMs;
  let stopped = false;
  let sent = 0;
  const worker = async (w: number) => {
    for (let n = 0; !stopped && Date.now() < deadline && sent < options.maxRequests; n++) {
      sent += 1;
      const id = `${options.prefix}-${w}-${n}`;
      const start = Date.now();
      try {
        const a = await call(options.port, options.host, {
          method,
          agent,
          path: `/load/${id}`,
          headers: { 'x-req-id': id },
          body: method === 'POST' ? JSON.stringify({ id, pad: 'p'.repeat(200) }) : undefined,
          timeoutMs: options.timeoutMs ?? 10_000,
        });
        outcomes.push({ id, method, start, end: Date.now(), status: a.status, stub: a.stub, error: null });
      } catch (error) {
        outcomes.push({ id, method, start, end: Date.now(), status: 0, stub: null, error: error instanceof Error ? error.message : String(error) });
      }
      await sleep(options.pauseMs);
    }
  };
  const all = Promise.all(Array.from({ length: options.workers }, (_, w) => worker(w))).finally(() => agent.destroy());
  return {
    outcomes,
    async stop() {
      stopped = true;
      await all;
      return outcomes;
    },
  };
}

/** Epoch milliseconds of a log line. */
export const timeOf = (line: LogLine): number => Date.parse(line.time);

/** The proxy's access lines for `host`. */
export const accessOf = (proxy: ProxyHandle, host: string): LogLine[] => proxy.lines.filter((l) => l.msg === 'access' && l.host === host);

/** The origins a request's access line says it tried (`upstreams` when more than one try, else `upstream`). */
export function triedOf(line: LogLine): string[] {
  if (Array.isArray(line.upstreams)) return line.upstreams as string[];
  return typeof line.upstream === 'string' ? [line.upstream] : [];
}

/** The `upstream down` / `upstream up` lines for `origin` on route `route`. */
export function transitions(proxy: ProxyHandle, route: string, origin: string, msg: 'upstream down' | 'upstream up'): LogLine[] {
  return proxy.lines.filter((l) => l.msg === msg && l.route === route && l.upstream === origin);
}

/** `name=value` and the attributes (lowercased, as a sorted list) of one Set-Cookie value. */
export function parseSetCookie(value: string): { name: string; value: string; attributes: string[] } {
  const [pair = '', ...attrs] = value.split(';').map((s) => s.trim());
  const eq = pair.indexOf('=');
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attributes: attrs.map((a) => a.toLowerCase()).sort() };
}

/** The Set-Cookie values of an answer for cookie `name`. */
export function setCookiesFor(answer: Answer, name: string): { name: string; value: string; attributes: string[] }[] {
  const raw = answer.headers['set-cookie'] ?? [];
  return raw.map(parseSetCookie).filter((c) => c.name === name);
}
