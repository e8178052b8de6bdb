// Process lifecycle: graceful stop on SIGTERM/SIGINT, the grace period, JSON-only stdout.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { type ProxyHandle, RUNTIMES, send, startProxy, startUpstream, type Upstream } from './harness.ts';

/** Resolves with 'refused' or 'connected' for a fresh TCP connection to `port`. */
function probe(port: number): Promise<'refused' | 'connected' | string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.setTimeout(2000, () => {
      s.destroy();
      resolve('timeout');
    });
    s.on('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED' ? 'refused' : (e.code ?? e.message)));
  });
}

function exitOf(proxy: ProxyHandle): Promise<{ code: number | null; at: number }> {
  return new Promise((resolve) => {
    if (proxy.process.exitCode !== null) return resolve({ code: proxy.process.exitCode, at: Date.now() });
    proxy.process.once('exit', (code, signal) => resolve({ code: code ?? (signal ? -1 : null), at: Date.now() }));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, ms: number, what: string) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

for (const runtime of RUNTIMES) {
  describe(`process on ${runtime}`, () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      test(`${signal}: in-flight request completes, new connections refused, exit 0`, async () => {
        const slow: Upstream = await startUpstream((_req, res) => setTimeout(() => res.end('late but fine'), 1000));
        const proxy = await startProxy(runtime, { timeouts: { shutdownGraceMs: 5000 }, routes: [{ host: '*', upstream: slow.origin }] });
        try {
          const exited = exitOf(proxy);
          const inflight = send(`${proxy.origin}/slow`, { headers: { host: 'x.test' } });
          await waitFor(() => slow.requests.length === 1, 5000, 'the request to reach the upstream');
          const signalledAt = Date.now();
          process.kill(proxy.pid, signal);
          await proxy.waitForLine((l) => l.msg === 'stopping', 3000);
          await sleep(100);
          assert.equal(await probe(proxy.port), 'refused', 'new connection after the signal');
          const reply = await inflight;
          assert.equal(reply.status, 200);
          assert.equal(reply.body.toString(), 'late but fine');
          const { code, at } = await Promise.race([exited, sleep(8000).then(() => ({ code: 'hung' as unknown as number, at: 0 }))]);
          assert.equal(code, 0);
          assert.ok(at - signalledAt < 5000, `exited ${at - signalledAt} ms after ${signal}, grace was 5000`);
          const stopping = proxy.lines.find((l) => l.msg === 'stopping');
          assert.equal(stopping?.signal, signal);
        } finally {
          await proxy.stop('SIGKILL');
          await slow.close();
        }
      });
    }

    test('shutdownGraceMs 500 with an upstream that never answers: exits 0 within ~3 s', async () => {
      const never = await startUpstream(() => {}, { raw: true });
      const proxy = await startProxy(runtime, { timeouts: { shutdownGraceMs: 500 }, routes: [{ host: '*', upstream: never.origin }] });
      try {
        const exited = exitOf(proxy);
        const inflight = send(`${proxy.origin}/forever`, { headers: { host: 'x.test' } }).catch((e: Error) => e);
        await waitFor(() => never.requests.length === 1, 5000, 'the request to reach the upstream');
        const t0 = Date.now();
        process.kill(proxy.pid, 'SIGTERM');
        const { code, at } = await Promise.race([exited, sleep(6000).then(() => ({ code: 'hung' as unknown as number, at: 0 }))]);
        assert.equal(code, 0);
        assert.ok(at - t0 < 3000, `exited ${at - t0} ms after SIGTERM`);
        assert.ok(at - t0 >= 400, `exited after ${at - t0} ms, before the grace period`);
        await inflight; // settled one way or the other: nothing left hanging
      } finally {
        await proxy.stop('SIGKILL');
        await never.close();
      }
    });

    test('stdout: first line announces address and port; every line is JSON', async () => {
      const up = await startUpstream();
      const proxy = await startProxy(runtime, { routes: [{ host: '*', upstream: up.origin }] });
      let code: number | null;
      try {
        const first = proxy.lines[0];
        assert.equal(first?.msg, 'listening');
        assert.equal(first?.address, '127.0.0.1');
        assert.equal(first?.port, proxy.port);
        for (let i = 0; i < 3; i++) assert.equal((await send(`${proxy.origin}/${i}`, { headers: { host: 'x.test' } })).status, 200);
        await send(`${proxy.origin}/`, { headers: { host: 'x.test', 'x-pad': 'a'.repeat(20_000) } }); // an error path too
        await proxy.waitForLine((l) => l.msg === 'access' && l.status === 431);
      } finally {
        code = await proxy.stop('SIGTERM');
        await up.close();
      }
      assert.equal(code, 0);
      const raw = proxy.lines.filter((l) => l.level === 'raw');
      assert.deepEqual(raw, [], 'non-JSON lines on stdout');
      assert.ok(proxy.lines.filter((l) => l.msg === 'access').length >= 4);
      await proxy.waitForLine((l) => l.msg === 'stopped', 2000);
      for (const l of proxy.lines) assert.equal(typeof l.time, 'string');
    });
  });
}
