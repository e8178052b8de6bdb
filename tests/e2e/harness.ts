// Black-box harness: spawns the real artifacts (Bun binary, Deno entry, Node bundle) on port 0
// with a temporary routes file, stub upstreams on port 0, and raw-socket clients. Loopback only;
// every process is ended by PID when its test ends.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';

export const ROOT = resolve(import.meta.dirname, '../..');
export type Runtime = 'bun' | 'deno' | 'node';

/** Runtimes under test; E2E_RUNTIMES=bun,node narrows the run. */
export const RUNTIMES: Runtime[] = (process.env.E2E_RUNTIMES ?? 'bun,deno,node').split(',').filter(Boolean) as Runtime[];

/**
 * The command line that runs switchyard on `runtime` (the same ones the README gives), from
 * dist/, unless SWITCHYARD_DIST names another folder holding `switchyard` (Bun executable) and
 * `switchyard.mjs` (Node bundle). Deno runs src/main.ts of this checkout, or of
 * SWITCHYARD_DENO_ROOT (another tree, e.g. an exported commit).
 */
export function commandFor(runtime: Runtime): string[] {
  const dist = process.env.SWITCHYARD_DIST;
  const denoRoot = process.env.SWITCHYARD_DENO_ROOT;
  if (runtime === 'deno' && denoRoot) {
    const root = resolve(denoRoot);
    return [join(ROOT, 'node_modules/.bin/deno'), 'run', '-A', '--config', join(root, 'deno.json'), join(root, 'src/main.ts')];
  }
  if (dist && runtime !== 'deno') return runtime === 'bun' ? [join(resolve(dist), 'switchyard')] : [process.execPath, join(resolve(dist), 'switchyard.mjs')];
  switch (runtime) {
    case 'bun':
      return [join(ROOT, 'dist/switchyard')];
    case 'deno':
      return [join(ROOT, 'node_modules/.bin/deno'), 'run', '-A', '--config', join(ROOT, 'deno.json'), join(ROOT, 'src/main.ts')];
    case 'node':
      return [process.execPath, join(ROOT, 'dist/switchyard.mjs')];
  }
}

export interface LogLine {
  time: string;
  level: string;
  msg: string;
  [key: string]: unknown;
}

export interface ProxyHandle {
  readonly port: number;
  readonly origin: string;
  readonly process: ChildProcess;
  readonly pid: number;
  readonly dir: string;
  /** Every JSON line seen on stdout so far. */
  readonly lines: LogLine[];
  /** The `listening` line of each listener waited for (`options.listeners`), by listener name. */
  readonly listening: Record<string, LogLine>;
  /** stderr so far. */
  stderr(): string;
  /** True while the process runs. */
  alive(): boolean;
  /** Resolves with the first line (seen or future) matching `pred`. */
  waitForLine(pred: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

/** Writes `routes` (TypeScript source, or an object serialised as the default export) to a temp dir. */
export function writeRoutes(routes: string | object, name = 'routes.ts'): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-e2e-'));
  const file = join(dir, name);
  writeFileSync(file, typeof routes === 'string' ? routes : `export default ${JSON.stringify(routes, null, 2)};\n`);
  return { dir, file };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs switchyard with `args` to completion (for check, init, --help, bad flags). */
export function runCli(runtime: Runtime, args: string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const [cmd, ...pre] = commandFor(runtime);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd as string, [...pre, ...args], { cwd: options.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${runtime} ${args.join(' ')} did not exit within ${options.timeoutMs ?? 30000} ms`));
    }, options.timeoutMs ?? 30000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) if (child.pid && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
});

export interface StartOptions {
  readonly args?: string[];
  readonly env?: Record<string, string>;
  /** A folder prepared by the caller (routes file and what it names), instead of one written from `routes`. */
  readonly folder?: { dir: string; file: string };
  /** Listeners whose `listening` line to wait for. @default ['http'] */
  readonly listeners?: readonly string[];
}

/**
 * Starts switchyard on 127.0.0.1:0 with `routes`; resolves once every listener asked for
 * announced its port. A proxy that dies under a test, or stops with an exit code other than 0,
 * is printed as `[proxy] ...` with its stderr: the finding, where the test output shows it.
 */
export async function startProxy(runtime: Runtime, routes: string | object, options: StartOptions = {}): Promise<ProxyHandle> {
  const { dir, file } = options.folder ?? writeRoutes(routes);
  const [cmd, ...pre] = commandFor(runtime);
  const child = spawn(cmd as string, [...pre, 'serve', '--routes', file, '--listen', '127.0.0.1:0', ...(options.args ?? [])], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  live.add(child);
  const lines: LogLine[] = [];
  const waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  let stderr = '';
  let partial = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    partial += chunk;
    let nl = partial.indexOf('\n');
    while (nl >= 0) {
      const text = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      nl = partial.indexOf('\n');
      if (!text.trim()) continue;
      let line: LogLine;
      try {
        line = JSON.parse(text);
      } catch {
        line = { time: '', level: 'raw', msg: text };
      }
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.pred(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  let started = false;
  let stopping = false;
  const exited = new Promise<number | null>((r) =>
    child.on('exit', (code, signal) => {
      live.delete(child);
      if (started && !stopping)
        console.log(
          `[proxy] ${runtime} exited unexpectedly (code ${code}, signal ${signal}); stderr: ${stderr.slice(-3000)}; last lines: ${JSON.stringify(lines.slice(-5))}`,
        );
      r(code ?? (signal ? -1 : null));
    }),
  );

  const waitForLine = (pred: (l: LogLine) => boolean, timeoutMs = 10_000) => {
    const seen = lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise<LogLine>((res, rej) => {
      const timer = setTimeout(
        () => rej(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${stderr}; lines: ${JSON.stringify(lines.slice(-5))}`)),
        timeoutMs,
      );
      waiters.push({
        pred,
        resolve: (l) => {
          clearTimeout(timer);
          res(l);
        },
      });
    });
  };

  const names = options.listeners ?? ['http'];
  const listening: Record<string, LogLine> = {};
  try {
    const announced = await Promise.race([
      Promise.all(names.map((name) => waitForLine((l) => l.msg === 'listening' && (names.length === 1 || l.listener === name), 20_000))),
      exited.then((code) => {
        throw new Error(`${runtime} exited with ${code} before listening: ${stderr}`);
      }),
    ]);
    names.forEach((name, i) => {
      listening[name] = announced[i] as LogLine;
    });
  } catch (error) {
    if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  started = true;
  const port = (listening[names[0] as string] as LogLine).port as number;
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    process: child,
    pid: child.pid as number,
    dir,
    lines,
    listening,
    stderr: () => stderr,
    alive,
    waitForLine,
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (!stopping && !alive())
        console.log(`[proxy] ${runtime} had exited before stop (code ${child.exitCode}, signal ${child.signalCode}); stderr: ${stderr.slice(-3000)}`);
      stopping = true;
      if (alive()) process.kill(child.pid as number, signal);
      const timer = setTimeout(() => alive() && process.kill(child.pid as number, 'SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      if (code !== 0) console.log(`[proxy] ${runtime} stopped with ${signal}, exit ${code}, signal ${child.signalCode}; stderr: ${stderr.slice(-3000)}`);
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

export interface SeenRequest {
  method: string;
  url: string;
  rawHeaders: string[];
  headers: http.IncomingHttpHeaders;
  bodyBytes: number;
  body: Buffer;
}

export interface Upstream {
  readonly port: number;
  readonly origin: string;
  readonly server: http.Server;
  /** Requests seen so far, body fully read (up to 1 MiB kept in `body`). */
  readonly requests: SeenRequest[];
  close(): Promise<void>;
}

/**
 * A real node:http upstream on `host`:0. The default handler echoes the request as JSON; give
 * `handler` to do anything else (it receives the request after the body was read, unless
 * `raw` is set, in which case it gets the untouched request stream).
 */
export async function startUpstream(
  handler?: (req: http.IncomingMessage, res: http.ServerResponse, seen: SeenRequest) => void,
  options: { host?: string; raw?: boolean } = {},
): Promise<Upstream> {
  const requests: SeenRequest[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer({ maxHeaderSize: 65536 }, (req, res) => {
    const seen: SeenRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      rawHeaders: req.rawHeaders,
      headers: req.headers,
      bodyBytes: 0,
      body: Buffer.alloc(0),
    };
    requests.push(seen);
    if (options.raw && handler) {
      handler(req, res, seen);
      return;
    }
    const chunks: Buffer[] = [];
    let kept = 0;
    req.on('data', (c: Buffer) => {
      seen.bodyBytes += c.length;
      if (kept < 1 << 20) {
        chunks.push(c);
        kept += c.length;
      }
    });
    req.on('end', () => {
      seen.body = Buffer.concat(chunks);
      if (handler) handler(req, res, seen);
      else {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ method: seen.method, url: seen.url, rawHeaders: seen.rawHeaders, bodyBytes: seen.bodyBytes }));
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((r) => server.listen(0, host, r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    origin: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    server,
    requests,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

export interface RawResponse {
  /** Status of the first (final) response, or 0 when none arrived. */
  status: number;
  /** Header lines of that response as [name, value] in wire order, names lowercased. */
  headers: [string, string][];
  /** Everything after the head, undecoded (chunked framing included). */
  body: Buffer;
  raw: Buffer;
}

/** Sends exact bytes and reads until the peer closes or `idleMs` of silence. */
export function rawRequest(port: number, bytes: string | Buffer, options: { idleMs?: number; host?: string } = {}): Promise<RawResponse> {
  return new Promise((resolvePromise, reject) => {
    const socket = net.connect(port, options.host ?? '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolvePromise(parseRaw(Buffer.concat(chunks)));
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(finish, options.idleMs ?? 1500);
    };
    socket.on('connect', () => {
      socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
      arm();
    });
    socket.on('data', (c) => {
      chunks.push(c);
      arm();
    });
    socket.on('end', finish);
    socket.on('error', (e) => (chunks.length ? finish() : reject(e)));
  });
}

export function parseRaw(raw: Buffer): RawResponse {
  const headEnd = raw.indexOf('\r\n\r\n');
  if (headEnd < 0) return { status: 0, headers: [], body: Buffer.alloc(0), raw };
  const lines = raw.subarray(0, headEnd).toString('latin1').split('\r\n');
  const status = Number((lines[0] ?? '').split(' ')[1] ?? 0);
  const headers = lines.slice(1).map((l): [string, string] => {
    const i = l.indexOf(':');
    return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()];
  });
  return { status, headers, body: raw.subarray(headEnd + 4), raw };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

/** One request through node:http (no added headers beyond Host and framing), fresh socket each time. */
export function send(
  url: string,
  options: { method?: string; headers?: Record<string, string | string[]> | string[]; body?: Buffer | string; timeoutMs?: number } = {},
): Promise<Reply> {
  return new Promise((resolvePromise, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers as http.OutgoingHttpHeaders, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(options.timeoutMs ?? 20_000, () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** JSON echo body of the default upstream handler. */
export function echoOf(reply: Reply): { method: string; url: string; rawHeaders: string[]; bodyBytes: number } {
  return JSON.parse(reply.body.toString('utf8'));
}

export const PLAIN = 'Hello, switchyard! '.repeat(200);
export const GZ = zlib.gzipSync(Buffer.from(PLAIN));
export const BR = zlib.brotliCompressSync(Buffer.from(PLAIN));

/** What the default answer of `forwardingHandler` says about the request it saw. */
export interface Echo {
  method: string;
  url: string;
  httpVersion: string;
  rawHeaders: string[];
  bodyBytes: number;
}

/**
 * The upstream of the forwarding cases, plain and TLS (startUpstream's handler): special answers
 * under `/__/`, otherwise a JSON `Echo`. `seen` (startUpstream's record) is what most assertions
 * read.
 */
export function forwardingHandler(req: http.IncomingMessage, res: http.ServerResponse, seen: SeenRequest): void {
  const url = seen.url;
  const raw = (status: number, headers: [string, string][], body?: string | Buffer) => {
    res.writeHead(status, headers as unknown as http.OutgoingHttpHeaders);
    res.end(body);
  };
  if (url.startsWith('/__/gzip'))
    raw(
      200,
      [
        ['Content-Type', 'text/plain'],
        ['Content-Encoding', 'gzip'],
        ['Content-Length', String(GZ.length)],
      ],
      GZ,
    );
  else if (url.startsWith('/__/br'))
    raw(
      200,
      [
        ['Content-Type', 'text/plain'],
        ['Content-Encoding', 'br'],
        ['Content-Length', String(BR.length)],
      ],
      BR,
    );
  else if (url.startsWith('/__/redirect'))
    raw(302, [
      ['Location', `${url.includes('abs') ? `http://127.0.0.1:${(req.socket.localPort as number) || 0}` : ''}/__/target`],
      ['Content-Length', '0'],
    ]);
  else if (url.startsWith('/__/trailer')) {
    res.writeHead(200, { 'content-type': 'text/plain', trailer: 'X-T', 'keep-alive': 'timeout=99' });
    res.write('tr');
    res.addTrailers({ 'X-T': '1' });
    res.end('ailer');
  } else if (url.startsWith('/__/head'))
    // The body the length declares: node:http drops it for HEAD, so a proxy that turned HEAD
    // into GET would show it.
    raw(
      200,
      [
        ['Content-Type', 'text/plain'],
        ['Content-Length', '1234'],
      ],
      'h'.repeat(1234),
    );
  else if (url.startsWith('/__/cookies'))
    raw(
      200,
      [
        ['Content-Type', 'text/plain'],
        ['Set-Cookie', 'a=1; Path=/'],
        ['Set-Cookie', 'b=2; Path=/; HttpOnly'],
        ['Content-Length', '2'],
      ],
      'ok',
    );
  else if (url.startsWith('/__/hop-framing')) {
    // What node:http2 refuses to send (ERR_HTTP2_INVALID_CONNECTION_HEADERS on Node and Deno).
    res.writeHead(200, [
      ['Content-Type', 'text/plain'],
      ['Connection', 'keep-alive'],
      ['Keep-Alive', 'timeout=5'],
      ['Transfer-Encoding', 'chunked'],
    ] as unknown as http.OutgoingHttpHeaders);
    res.write('chunked-');
    setTimeout(() => res.end('body'), 10);
  } else if (url.startsWith('/__/hop'))
    raw(
      200,
      [
        ['Content-Type', 'text/plain'],
        ['Connection', 'x-private'],
        ['X-Private', '1'],
        ['Keep-Alive', 'timeout=5'],
        ['Proxy-Connection', 'keep-alive'],
        ['Upgrade', 'h2c'],
        ['X-Public', 'yes'],
        ['Content-Length', '3'],
      ],
      'hop',
    );
  else if (url.startsWith('/__/204')) raw(204, [['X-Kind', 'no-content']]);
  else if (url.startsWith('/__/304'))
    raw(304, [
      ['ETag', '"v1"'],
      ['X-Kind', 'not-modified'],
    ]);
  else if (url.startsWith('/__/sts'))
    raw(
      200,
      [
        ['Strict-Transport-Security', 'max-age=1'],
        ['Content-Length', '3'],
      ],
      'sts',
    );
  else if (url.startsWith('/__/echo-body'))
    raw(
      200,
      [
        ['Content-Type', 'application/octet-stream'],
        ['Content-Length', String(seen.body.length)],
      ],
      seen.body,
    );
  else {
    res.setHeader('content-type', 'application/json');
    const echo: Echo = { method: seen.method, url: seen.url, httpVersion: req.httpVersion, rawHeaders: seen.rawHeaders, bodyBytes: seen.bodyBytes };
    res.end(JSON.stringify(echo));
  }
}

/** Values of header `name` (lowercase) in a raw header list, in order. */
export function valuesOf(rawHeaders: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if ((rawHeaders[i] as string).toLowerCase() === name) out.push(rawHeaders[i + 1] as string);
  return out;
}

/** Values of header `name` (case-insensitive) in a raw header list, in order. */
export function headerValues(rawHeaders: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if ((rawHeaders[i] as string).toLowerCase() === name) out.push(rawHeaders[i + 1] as string);
  return out;
}

/** RSS in KiB of a process, from /proc. */
export function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** A Readable producing `total` bytes in 1 MiB chunks, generated on the fly (one shared buffer). */
export function generator(total: number, chunk = 1 << 20): Readable {
  const block = Buffer.alloc(chunk, 0x61);
  let left = total;
  return new Readable({
    highWaterMark: chunk,
    read() {
      if (left <= 0) {
        this.push(null);
        return;
      }
      const n = Math.min(left, chunk);
      left -= n;
      this.push(n === chunk ? block : block.subarray(0, n));
    },
  });
}

/** Samples the RSS of `pid` every 100 ms until stopped; returns the peak in KiB. */
export function sampleRss(pid: number): { stop(): number } {
  let peak = rssKiB(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssKiB(pid));
    } catch {
      // process gone: the transfer's own assertions say why
    }
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

export const mib = (kib: number): string => `${(kib / 1024).toFixed(1)} MiB`;
