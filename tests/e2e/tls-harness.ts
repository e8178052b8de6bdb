// Black-box helpers for the TLS and HTTP/2 suites (issue 7): a proxy started with a `tls` block
// (both ports from its two `listening` lines), its own copy of the generated certificates (so a
// test may swap files under it), real clients (node:tls, node:https, node:http2, curl, openssl
// s_client, h2load), HTTPS upstreams, and a check that the CLI tools are installed. Loopback
// only; every process is ended by PID; every wait has a deadline.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex, Readable } from 'node:stream';
import tls from 'node:tls';
import { createTlsFixtures, type TlsFixtures } from '../support/tls-fixtures.ts';
import { type LogLine, type ProxyHandle, type RunResult, type Runtime, runCli, type SeenRequest, startProxy } from './harness.ts';

// --- artifacts ---------------------------------------------------------------------------------

// --- tools -------------------------------------------------------------------------------------

const hasCommand = (name: string): boolean => spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;

/** Debian package of each CLI tool the suites drive. */
const PACKAGES: Record<string, string> = { curl: 'curl', openssl: 'openssl', h2load: 'nghttp2-client' };

/**
 * Why each tool is unavailable (absent: usable). Missing tools are installed with apt-get once
 * (as `make test` does for other suites); only when that is impossible does a tool's tests skip,
 * with the reason.
 */
export const missingTools: Record<string, string> = (() => {
  const missing = Object.keys(PACKAGES).filter((tool) => !hasCommand(tool));
  const reasons: Record<string, string> = {};
  if (missing.length === 0) return reasons;
  const packages = missing.map((tool) => PACKAGES[tool] as string);
  let why = '';
  if (!hasCommand('apt-get')) why = 'apt-get not available';
  else if (process.getuid?.() !== 0) why = 'not root, cannot apt-get install';
  else {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { stdio: 'ignore', env, timeout: 300_000 });
    if (install().status !== 0) {
      spawnSync('apt-get', ['update'], { stdio: 'ignore', env, timeout: 300_000 });
      if (install().status !== 0) why = `apt-get install ${packages.join(' ')} failed`;
    }
  }
  for (const tool of missing)
    if (!hasCommand(tool)) reasons[tool] = `${tool} (Debian ${PACKAGES[tool]}) is not installed: ${why || 'still missing after apt-get'}`;
  return reasons;
})();

/** `{ skip: reason }` when any of `tools` is unavailable, for node:test options. */
export const needs = (...tools: string[]): { skip?: string } => {
  const reasons = tools.map((tool) => missingTools[tool]).filter(Boolean);
  return reasons.length ? { skip: reasons.join('; ') } : {};
};

// --- certificates ------------------------------------------------------------------------------

let shared: TlsFixtures | undefined;

/**
 * The fixtures of tests/support/tls-fixtures.ts (the `e2e-*` client certificates included),
 * generated once per test file, plus `e2e-dir.key`, a directory where a key file is expected
 * (unreadable as a file).
 */
export function fixtures(): TlsFixtures {
  if (shared) return shared;
  const fx = createTlsFixtures();
  // A "key file" that cannot be read as one (root reads any file, so: a directory).
  mkdirSync(fx.path('e2e-dir.key'));
  shared = fx;
  process.on('exit', () => fx.cleanup());
  return fx;
}

/** Text of a generated file. */
export const pem = (file: string): string => readFileSync(fixtures().path(file), 'utf8');

/** SHA-256 fingerprint (`AB:CD:..`) of the first certificate in a generated file. */
export const fingerprintOf = (file: string): string => new X509Certificate(pem(file)).fingerprint256;

// --- the proxy ---------------------------------------------------------------------------------

/** harness.ts's proxy handle, with both ports and the proxy's own certificate folder. */
export interface TlsProxy extends ProxyHandle {
  readonly httpPort: number;
  readonly httpsPort: number;
  /** Both `listening` lines, as logged. */
  readonly listening: { http: LogLine; https: LogLine };
  /** Absolute path of `certs/<file>` in this proxy's folder. */
  cert(file: string): string;
  /**
   * Replaces `certs/<target>` with `content` the way deploy tools do: written to a temporary
   * name in the same folder, then renamed over the target (one atomic step per file).
   */
  replaceFile(target: string, content: string): void;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) if (child.pid && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
});

/** A fresh folder with a copy of the generated certificates and `routes` written as routes.ts. */
export function proxyFolder(routes: string | object): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-e2e-tls-'));
  cpSync(join(fixtures().dir, 'certs'), join(dir, 'certs'), { recursive: true });
  const file = join(dir, 'routes.ts');
  writeFileSync(file, typeof routes === 'string' ? routes : `export default ${JSON.stringify(routes, null, 2)};\n`);
  return { dir, file };
}

/**
 * Starts switchyard with `routes` (which should carry a `tls` block on 127.0.0.1:0) and
 * `--listen 127.0.0.1:0` in a folder with its own copy of the certificates, and resolves once
 * both listeners announced their ports.
 */
export async function startTlsProxy(
  runtime: Runtime,
  routes: string | object,
  options: { args?: string[]; env?: Record<string, string> /** Wait for the `http` listener only (a config without `tls`). */; plainOnly?: boolean } = {},
): Promise<TlsProxy> {
  const folder = proxyFolder(routes);
  const handle = await startProxy(runtime, routes, { ...options, folder, listeners: options.plainOnly ? ['http'] : ['http', 'https'] });
  const cert = (f: string) => join(folder.dir, 'certs', f);
  const none = { time: '', level: '', msg: 'none', port: 0 } as LogLine;
  const listening = { http: handle.listening.http as LogLine, https: handle.listening.https ?? none };
  return Object.assign(handle, {
    httpPort: handle.port,
    httpsPort: listening.https.port as number,
    listening,
    cert,
    replaceFile(target: string, content: string) {
      const temp = cert(`.${target}.${process.pid}.${Date.now()}.tmp`);
      writeFileSync(temp, content);
      renameSync(temp, cert(target));
    },
  });
}

/**
 * Runs switchyard with `args` in a fresh proxy folder holding `routes` and the certificates
 * (`{routes}` in an argument stands for the routes file), to completion or `timeoutMs`.
 */
export async function runInFolder(runtime: Runtime, routes: string | object, args: string[], timeoutMs = 30_000): Promise<RunResult> {
  const { dir, file } = proxyFolder(routes);
  try {
    return await runCli(
      runtime,
      args.map((a) => (a === '{routes}' ? file : a)),
      { cwd: dir, timeoutMs },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// --- CLI clients -------------------------------------------------------------------------------

export interface ToolRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Killed at the deadline. */
  timedOut: boolean;
}

export interface RunningTool {
  readonly pid: number;
  /** Resolves when the tool exits (killed at its deadline). */
  readonly done: Promise<ToolRun>;
  /** Output so far. */
  output(): string;
  /** Ends it (SIGTERM, by PID) and waits for its exit. */
  stop(): Promise<ToolRun>;
}

/** Starts a CLI tool, killed (by PID) after `timeoutMs`; `input` goes to its stdin (closed after it unless `keepStdin`). */
export function startTool(cmd: string, args: string[], options: { input?: string | Buffer; timeoutMs?: number; keepStdin?: boolean } = {}): RunningTool {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(child);
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.on('error', () => {}); // a tool may exit before reading its input
  const kill = (signal: NodeJS.Signals) => {
    if (child.pid && child.exitCode === null && child.signalCode === null) process.kill(child.pid, signal);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill('SIGKILL');
  }, options.timeoutMs ?? 15_000);
  const done = new Promise<ToolRun>((resolvePromise, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      live.delete(child);
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr, timedOut });
    });
  });
  if (options.input !== undefined) child.stdin.write(options.input);
  if (!options.keepStdin) child.stdin.end();
  return {
    pid: child.pid as number,
    done,
    output: () => `${stdout}${stderr}`,
    stop() {
      kill('SIGTERM');
      return done;
    },
  };
}

/** Runs a CLI tool to completion, killed (by PID) after `timeoutMs`; `input` goes to its stdin. */
export function runTool(cmd: string, args: string[], options: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<ToolRun> {
  return startTool(cmd, args, { input: options.input ?? '', timeoutMs: options.timeoutMs }).done;
}

/** `curl -sS` with a 10 s ceiling and `extra` arguments. */
export const curl = (args: string[], timeoutMs = 15_000): Promise<ToolRun> => runTool('curl', ['-sS', '--max-time', '10', ...args], { timeoutMs });

/**
 * `openssl s_client -connect 127.0.0.1:PORT` with `args`. By default it sends one HTTP/1.1
 * request with `Connection: close` (so it reads what the server sends after the handshake,
 * session tickets included) and waits for the server to close (`-ign_eof`), at most `timeoutMs`.
 */
export function sClient(port: number, args: string[], options: { input?: string; timeoutMs?: number; host?: string } = {}): Promise<ToolRun & { out: string }> {
  const input = options.input ?? `GET / HTTP/1.1\r\nHost: ${options.host ?? 'a.test'}\r\nConnection: close\r\n\r\n`;
  return runTool('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-ign_eof', ...args], { input, timeoutMs: options.timeoutMs ?? 10_000 }).then(
    (r) => ({
      ...r,
      out: `${r.stdout}\n${r.stderr}`,
    }),
  );
}

/** The subject CNs of every certificate s_client -showcerts printed, in order (` 0 s:CN = a.test`). */
export function servedChain(sClientOut: string): string[] {
  return [...sClientOut.matchAll(/^\s*\d+ s:(.*)$/gm)].map((m) => (m[1] ?? '').trim());
}

// --- node:tls / node:https / node:http2 clients --------------------------------------------

export interface TlsClientOptions {
  /** SNI; omitted: none sent (the host is an IP address). */
  servername?: string;
  alpn?: string[];
  minVersion?: tls.SecureVersion;
  maxVersion?: tls.SecureVersion;
  ciphers?: string;
  /** PEM file names in the fixtures (`root.pem`). */
  ca?: string;
  cert?: string;
  key?: string;
  /** Verify the chain against `ca` (default: when `ca` is given). */
  verify?: boolean;
  timeoutMs?: number;
  session?: Buffer;
}

export interface Handshake {
  fingerprint256: string;
  subject: string;
  altNames: string;
  alpn: string | false;
  version: string | null;
  authorized: boolean;
  reused: boolean;
  socket: tls.TLSSocket;
}

function tlsOptions(port: number, o: TlsClientOptions): tls.ConnectionOptions {
  const opts: tls.ConnectionOptions = {
    host: '127.0.0.1',
    port,
    ALPNProtocols: o.alpn,
    minVersion: o.minVersion,
    maxVersion: o.maxVersion,
    ciphers: o.ciphers,
    rejectUnauthorized: o.verify ?? o.ca !== undefined,
    session: o.session,
  };
  if (o.servername !== undefined) opts.servername = o.servername;
  if (o.ca) opts.ca = pem(o.ca);
  if (o.cert) opts.cert = pem(o.cert);
  if (o.key) opts.key = pem(o.key);
  return opts;
}

/** One handshake with node:tls; resolves with what the server presented (the socket stays open: destroy it). */
export function handshake(port: number, o: TlsClientOptions = {}): Promise<Handshake> {
  return new Promise((resolvePromise, reject) => {
    const socket = tls.connect(tlsOptions(port, o));
    const timer = setTimeout(() => socket.destroy(new Error(`no TLS handshake within ${o.timeoutMs ?? 5000} ms`)), o.timeoutMs ?? 5000);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const peer = socket.getPeerCertificate();
      resolvePromise({
        fingerprint256: peer.fingerprint256,
        subject: peer.subject?.CN ?? '',
        altNames: peer.subjectaltname ?? '',
        alpn: socket.alpnProtocol,
        version: socket.getProtocol(),
        authorized: socket.authorized,
        reused: socket.isSessionReused(),
        socket,
      });
    });
    socket.once('error', (e: Error) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** The fingerprint a fresh handshake for `servername` gets (socket closed again). */
export async function servedFingerprint(port: number, servername?: string): Promise<string> {
  const h = await handshake(port, { servername });
  h.socket.destroy();
  return h.fingerprint256;
}

/** Polls fresh handshakes until one presents `fingerprint`; resolves with the time it took. */
export async function untilServed(port: number, servername: string | undefined, fingerprint: string, ms: number): Promise<number> {
  const t0 = Date.now();
  let last = '';
  while (Date.now() - t0 <= ms) {
    try {
      last = await servedFingerprint(port, servername);
      if (last === fingerprint) return Date.now() - t0;
    } catch (e) {
      last = `error ${(e as Error).message}`;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`handshakes for ${servername ?? '(no SNI)'} did not present ${fingerprint} within ${ms} ms; last: ${last}`);
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  /** The negotiated ALPN protocol of the connection. */
  alpn?: string | false | null;
  /** SHA-256 fingerprint of the certificate the connection was served. */
  fingerprint256?: string;
  /** The request went out on a kept-alive connection (node:http's `reusedSocket`). */
  reusedSocket?: boolean;
}

/** One HTTPS request through node:https (HTTP/1.1 over TLS), a fresh connection unless `agent` is given. */
export function httpsRequest(
  port: number,
  o: TlsClientOptions & {
    path?: string;
    method?: string;
    headers?: Record<string, string | string[]>;
    body?: Buffer | string;
    agent?: https.Agent;
  } = {},
): Promise<Reply> {
  return new Promise((resolvePromise, reject) => {
    const base = tlsOptions(port, { ca: 'root.pem', servername: 'a.test', alpn: ['http/1.1'], ...o });
    const req = https.request(
      {
        ...(base as https.RequestOptions),
        path: o.path ?? '/',
        method: o.method ?? 'GET',
        headers: { host: o.servername ?? 'a.test', ...o.headers },
        agent: o.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        const peer = (res.socket as tls.TLSSocket | null)?.getPeerCertificate?.()?.fingerprint256;
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolvePromise({
            status: res.statusCode ?? 0,
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            body: Buffer.concat(chunks),
            alpn: (res.socket as tls.TLSSocket | null)?.alpnProtocol ?? undefined,
            fingerprint256: peer,
            reusedSocket: req.reusedSocket,
          }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(o.timeoutMs ?? 15_000, () => req.destroy(new Error(`https request ${o.path ?? '/'} timed out`)));
    req.on('error', reject);
    req.end(o.body);
  });
}

/** An HTTP/2 session to the proxy's TLS port (SNI `servername`, default a.test, verified against root.pem). */
export function h2connect(port: number, o: TlsClientOptions & { settings?: http2.Settings } = {}): Promise<http2.ClientHttp2Session> {
  const servername = o.servername ?? 'a.test';
  return new Promise((resolvePromise, reject) => {
    const base = tlsOptions(port, { ca: 'root.pem', servername, ...o });
    const session = http2.connect(`https://${servername}:${port}`, {
      ...(base as http2.SecureClientSessionOptions),
      host: '127.0.0.1',
      settings: { initialWindowSize: 4 << 20, ...o.settings },
    });
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`no h2 session within ${o.timeoutMs ?? 5000} ms`));
    }, o.timeoutMs ?? 5000);
    session.once('connect', () => {
      clearTimeout(timer);
      session.setLocalWindowSize(16 << 20);
      resolvePromise(session);
    });
    session.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    session.on('error', () => {}); // later session errors fail the request that sees them
  });
}

export interface H2Reply {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/** One request on an h2 session; `path` and `authority` go out as given. */
export function h2request(
  session: http2.ClientHttp2Session,
  o: {
    method?: string;
    path?: string;
    authority?: string;
    headers?: Record<string, string | string[]>;
    body?: Buffer | string | Readable;
    timeoutMs?: number;
  } = {},
): Promise<H2Reply> {
  return new Promise((resolvePromise, reject) => {
    // Without a body the HEADERS frame ends the stream, as browsers and curl send it.
    const stream = session.request(
      {
        ':method': o.method ?? 'GET',
        ':path': o.path ?? '/',
        ':authority': o.authority ?? 'a.test',
        ...o.headers,
      },
      { endStream: o.body === undefined },
    );
    const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), o.timeoutMs ?? 15_000);
    let headers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      headers = h;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      clearTimeout(timer);
      resolvePromise({ status: Number(headers[':status'] ?? 0), headers, body: Buffer.concat(chunks) });
    });
    stream.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    stream.on('close', () => {
      clearTimeout(timer);
      if (stream.rstCode && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR)
        reject(new Error(`stream ${o.path ?? '/'} reset with code ${stream.rstCode} (headers ${JSON.stringify(headers)})`));
    });
    if (o.body instanceof Readable) o.body.pipe(stream);
    else if (o.body !== undefined) stream.end(o.body);
  });
}

// --- raw sockets -------------------------------------------------------------------------------

/** A real ClientHello as node:tls writes it for `servername` (captured from a socket-less client). */
export function captureClientHello(servername = 'a.test'): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    const chunks: Buffer[] = [];
    let client: tls.TLSSocket | undefined;
    const sink = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, done) {
        chunks.push(chunk);
        done();
        const all = Buffer.concat(chunks);
        // Record header: type 0x16, version, 2-byte length; resolve once the record is whole.
        if (all.length >= 5 && all.length >= 5 + all.readUInt16BE(3)) {
          resolvePromise(all.subarray(0, 5 + all.readUInt16BE(3)));
          setImmediate(() => client?.destroy());
        }
      },
    });
    const socket = tls.connect({ socket: sink as unknown as net.Socket, servername, ALPNProtocols: ['h2', 'http/1.1'], rejectUnauthorized: false });
    socket.on('error', () => {}); // destroyed once the hello is captured
    client = socket;
    setTimeout(() => reject(new Error('no ClientHello captured')), 3000).unref();
  });
}

export interface RawOutcome {
  /** Bytes the server sent. */
  data: Buffer;
  /** The server closed (end or reset) within the deadline. */
  closed: boolean;
  /** ms from connect to close (or to the deadline). */
  ms: number;
}

/** Connects with TCP, writes `bytes` (if any), and reports what the server did within `ms`. */
export function rawExchange(port: number, bytes: Buffer | string | undefined, ms: number): Promise<RawOutcome> {
  return new Promise((resolvePromise) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let t0 = Date.now();
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolvePromise({ data: Buffer.concat(chunks), closed, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => finish(false), ms);
    socket.on('connect', () => {
      t0 = Date.now();
      if (bytes !== undefined) socket.write(bytes);
    });
    socket.on('data', (c) => chunks.push(c));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
  });
}

// --- upstreams ---------------------------------------------------------------------------------

export interface TlsUpstream {
  readonly port: number;
  readonly origin: string;
  readonly requests: (SeenRequest & { servername: string | undefined; peerSubject: string | undefined; httpVersion: string })[];
  close(): Promise<void>;
}

/**
 * An HTTPS upstream (node:https) answering every request with a JSON echo that also says the
 * SNI it got and the client certificate's subject. `cert`/`key`/`ca` are fixture file names;
 * `requestCert` asks (and requires) a client certificate issued by `ca`.
 */
export async function startHttpsUpstream(o: { cert: string; key: string; ca?: string; requestCert?: boolean }): Promise<TlsUpstream> {
  const requests: TlsUpstream['requests'] = [];
  const sockets = new Set<net.Socket>();
  const server = https.createServer(
    {
      cert: pem(o.cert),
      key: pem(o.key),
      ca: o.ca ? pem(o.ca) : undefined,
      requestCert: o.requestCert ?? false,
      rejectUnauthorized: o.requestCert ?? false,
    },
    (req, res) => {
      const socket = req.socket as tls.TLSSocket;
      const peer = socket.getPeerCertificate?.();
      const seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        rawHeaders: req.rawHeaders,
        headers: req.headers,
        bodyBytes: 0,
        body: Buffer.alloc(0),
        servername: (socket as unknown as { servername?: string }).servername,
        peerSubject: peer && Object.keys(peer).length ? (peer.subject?.CN as string | undefined) : undefined,
        httpVersion: req.httpVersion,
      };
      requests.push(seen);
      req.on('data', (c: Buffer) => (seen.bodyBytes += c.length));
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ url: seen.url, servername: seen.servername ?? null, peer: seen.peerSubject ?? null }));
      });
    },
  );
  server.on('secureConnection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    origin: `https://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Waits for a log line matching `pred` among those logged from index `from` on. */
export function lineAfter(proxy: Pick<TlsProxy, 'lines' | 'waitForLine'>, from: number, pred: (line: LogLine) => boolean, ms = 5000): Promise<LogLine> {
  return proxy.waitForLine((l) => proxy.lines.indexOf(l) >= from && pred(l), ms);
}
