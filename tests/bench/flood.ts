// The memory store under a flood of distinct keys (issue 11; `make flood`): each runtime's built
// artifact serves one route with `rateLimit: { requests: 100, windowSeconds: 60, key: { header:
// 'x-api-key' } }`, and gets FLOOD_KEYS (default 1,000,000) requests, each with a key never seen
// before, pipelined over 8 keep-alive connections on loopback. First a control: FLOOD_CONTROL
// (default 300,000) requests through a route without a limit, so the runtime's own growth under
// that many requests is the baseline. The proxy's RSS (VmRSS, from /proc/PID/status) is printed
// idle, at the control's peak, every 100,000 flood requests, and at the end, beside the store's
// bound (64 MiB per route). Not part of `make test`: 2-6 minutes per runtime.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commandFor, type Runtime } from '../e2e/harness.ts';

const KEYS = Number(process.env.FLOOD_KEYS ?? 1_000_000);
const RUNTIMES = (process.env.FLOOD_RUNTIMES ?? 'bun,deno,node').split(',') as Runtime[];
const CONTROL = Number(process.env.FLOOD_CONTROL ?? 300_000);
const CONNECTIONS = 8;
const BATCH = 50;

const rssMiB = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
};

/** Sends `count` requests over one connection, BATCH pipelined at a time; the statuses seen. */
function pipeline(port: number, host: string, from: number, count: number, keyOf: (i: number) => string, statuses: Map<string, number>): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let sent = 0;
    let answered = 0;
    let pending = '';
    const sendBatch = () => {
      let out = '';
      const n = Math.min(BATCH, count - sent);
      for (let i = 0; i < n; i++) out += `GET / HTTP/1.1\r\nHost: ${host}\r\nx-api-key: ${keyOf(from + sent + i)}\r\n\r\n`;
      sent += n;
      socket.write(out);
    };
    socket.setEncoding('latin1');
    socket.on('connect', sendBatch);
    socket.on('data', (chunk: string) => {
      pending += chunk;
      let at = pending.indexOf('HTTP/1.1 ');
      let inBatch = 0;
      while (at >= 0) {
        const status = pending.slice(at + 9, at + 12);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        answered++;
        inBatch++;
        at = pending.indexOf('HTTP/1.1 ', at + 12);
      }
      // Keep only the tail that could hold a split status line.
      pending = pending.slice(-16);
      if (answered === count) {
        socket.end();
        resolve();
      } else if (answered === sent && sent < count) sendBatch();
      void inBatch;
    });
    socket.on('error', reject);
  });
}

async function flood(port: number, host: string, from: number, count: number, keyOf: (i: number) => string): Promise<Map<string, number>> {
  const statuses = new Map<string, number>();
  const per = Math.ceil(count / CONNECTIONS);
  await Promise.all(Array.from({ length: CONNECTIONS }, (_, c) => pipeline(port, host, from + c * per, Math.min(per, count - c * per), keyOf, statuses)));
  return statuses;
}

async function run(runtime: Runtime, upstreamPort: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-flood-'));
  const file = join(dir, 'routes.ts');
  writeFileSync(
    file,
    `export default ${JSON.stringify({
      listen: '127.0.0.1:0',
      routes: [
        { host: 'flood.test', upstream: `http://127.0.0.1:${upstreamPort}`, rateLimit: { requests: 100, windowSeconds: 60, key: { header: 'x-api-key' } } },
      ],
    })};\n`,
  );
  const [cmd, ...args] = commandFor(runtime);
  const child = spawn(cmd as string, [...args, 'serve', '--routes', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let head = '';
    const onData = (d: Buffer) => {
      head += d;
      const m = /"msg":"listening".*?"port":(\d+)/.exec(head);
      if (m) {
        child.stdout?.off('data', onData);
        child.stdout?.resume(); // access lines from now on: read and dropped
        resolve(Number(m[1]));
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${runtime} exited with ${code}`)));
  });
  const pid = child.pid as number;
  const started = performance.now();
  const idle = rssMiB(pid);
  // The control: CONTROL requests through a route without a limit, so what the runtime itself
  // keeps after that many requests (its heap's growth, the allocator) is in the baseline.
  let controlPeak = idle;
  for (let done = 0; done < CONTROL; done += 100_000) {
    await flood(port, 'control.test', done, Math.min(100_000, CONTROL - done), (i) => `key-${i}`);
    controlPeak = Math.max(controlPeak, rssMiB(pid));
  }
  const warm = rssMiB(pid);
  const samples: string[] = [];
  let peak = warm;
  const step = 100_000;
  const totals = new Map<string, number>();
  for (let done = 0; done < KEYS; done += step) {
    const part = await flood(port, 'flood.test', done, Math.min(step, KEYS - done), (i) => `key-${i}`);
    for (const [s, n] of part) totals.set(s, (totals.get(s) ?? 0) + n);
    const rss = rssMiB(pid);
    peak = Math.max(peak, rss);
    samples.push(rss.toFixed(0));
  }
  const seconds = (performance.now() - started) / 1000;
  // A key from the start of the flood was forgotten (evicted); the newest is still counted.
  const end = rssMiB(pid);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  const statuses = [...totals].map(([s, n]) => `${s}: ${n}`).join(', ');
  return `| ${runtime} | ${KEYS.toLocaleString('en')} | ${idle.toFixed(0)} | ${controlPeak.toFixed(0)} | ${warm.toFixed(0)} | ${peak.toFixed(0)} | ${end.toFixed(0)} | ${(peak - controlPeak).toFixed(0)} | ${samples.join(' ')} | ${statuses} | ${seconds.toFixed(0)} |`;
}

const upstream = http.createServer((_req, res) => res.end('ok'));
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
const upstreamPort = (upstream.address() as net.AddressInfo).port;
console.log(
  `memory store flood: ${KEYS.toLocaleString('en')} distinct x-api-key values, ${CONNECTIONS} connections x ${BATCH} pipelined; RSS in MiB; store bound 64 MiB per route`,
);
console.log(`control: ${CONTROL.toLocaleString('en')} requests through a route without a limit first`);
console.log(
  '| runtime | keys | RSS idle | control peak | RSS after control | flood peak | RSS end | flood peak - control peak | RSS per 100k keys | statuses | s |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|');
for (const runtime of RUNTIMES) console.log(await run(runtime, upstreamPort));
upstream.close();
