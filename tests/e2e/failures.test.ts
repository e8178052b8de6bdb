// Failures: dead, resetting, silent upstreams; client disconnects; localhost on v4 and v6;
// header and body limits; malformed input that must never take the process down.
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { connect } from '../support/raw-http.ts';
import { type LogLine, type ProxyHandle, RUNTIMES, rawRequest, send, startProxy, startUpstream, type Upstream } from './harness.ts';

/** A port nobody listens on: bind one, note it, close it. */
async function deadPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * Node's parser (llhttp) holds a bare `GET /\r\n` until the head timeout (408,
 * limits.headerTimeoutMs): it waits for a header section, and node:http gives us no hook
 * before it. Bun and Deno (our parser) answer 400 at once. A guard in front of node:http would
 * have to parse request lines itself (docs/hardening.md, Limitations): kept as a todo.
 */
const HTTP09_NODE =
  "documented limitation (README, Input): Node's parser waits for a header section after an HTTP/0.9 request line (408 after limits.headerTimeoutMs); nothing is forwarded";

/** The proxy is still up and answers an ordinary request. */
async function assertStillServing(proxy: ProxyHandle): Promise<void> {
  assert.equal(proxy.process.exitCode, null, 'proxy exited');
  const ok = await send(`${proxy.origin}/after`, { headers: { host: 'ok.test' } });
  assert.equal(ok.status, 200);
  assert.equal(proxy.process.exitCode, null, 'proxy exited');
}

const accessFor =
  (host: string, extra: (l: LogLine) => boolean = () => true) =>
  (l: LogLine) =>
    l.msg === 'access' && l.host === host && extra(l);

for (const runtime of RUNTIMES) {
  describe(`failures on ${runtime}`, () => {
    let echo: Upstream;
    let reset: Upstream;
    let never: Upstream;
    let hold: Upstream;
    let v4: Upstream;
    let v6: Upstream;
    let dead: number;
    let proxy: ProxyHandle;
    let limited: ProxyHandle;
    const holdEvents: { closedAt: number }[] = [];

    before(async () => {
      dead = await deadPort();
      [echo, reset, never, hold, v4, v6] = await Promise.all([
        startUpstream(),
        startUpstream((req) => req.socket.destroy(), { raw: true }),
        startUpstream(() => {}, { raw: true }),
        startUpstream(
          (_req, res) => {
            const ev = { closedAt: 0 };
            holdEvents.push(ev);
            res.on('close', () => (ev.closedAt = Date.now()));
          },
          { raw: true },
        ),
        startUpstream(undefined, { host: '127.0.0.1' }),
        startUpstream(undefined, { host: '::1' }),
      ]);
      const deadOrigin = `http://127.0.0.1:${dead}`;
      proxy = await startProxy(runtime, {
        timeouts: { upstreamMs: 1500 },
        routes: [
          { host: 'refused.test', upstream: deadOrigin },
          { host: 'reset.test', upstream: reset.origin },
          { host: 'slow.test', upstream: never.origin, timeoutMs: 500 },
          { host: 'slowg.test', upstream: never.origin },
          { host: 'hold.test', upstream: hold.origin },
          { host: 'v4.test', upstream: `http://localhost:${v4.port}` },
          { host: 'v6.test', upstream: `http://localhost:${v6.port}` },
          { host: '*', upstream: echo.origin },
        ],
      });
      limited = await startProxy(runtime, {
        limits: { maxHeaderBytes: 4096, maxBodyBytes: 1000 },
        routes: [
          { host: 'big.test', upstream: echo.origin, maxBodyBytes: 10_000 },
          { host: 'tiny.test', upstream: echo.origin, maxBodyBytes: 100 },
          { host: 'free.test', upstream: echo.origin, maxBodyBytes: null },
          { host: '*', upstream: echo.origin },
        ],
      });
    });
    after(async () => {
      await Promise.all([proxy?.stop(), limited?.stop()]);
      await Promise.all([echo, reset, never, hold, v4, v6].map((u) => u?.close()));
    });

    test('refused upstream -> 502, short body, access line names the upstream', async () => {
      const r = await send(`${proxy.origin}/x`, { headers: { host: 'refused.test' } });
      assert.equal(r.status, 502);
      assert.ok(r.body.length > 0 && r.body.length < 200, `body: ${r.body}`);
      const line = await proxy.waitForLine(accessFor('refused.test'));
      assert.equal(line.status, 502);
      assert.match(String(line.error), new RegExp(`127\\.0\\.0\\.1:${dead}`));
    });

    test('upstream resets the connection without answering -> 502', async () => {
      const r = await send(`${proxy.origin}/x`, { headers: { host: 'reset.test' } });
      assert.equal(r.status, 502);
      assert.ok(reset.requests.length >= 1);
      const line = await proxy.waitForLine(accessFor('reset.test'));
      assert.equal(line.status, 502);
      assert.match(String(line.error), new RegExp(`:${reset.port}`));
    });

    test('route timeoutMs: no response head within 500 ms -> 504, log names the upstream', async () => {
      const t0 = Date.now();
      const r = await send(`${proxy.origin}/x`, { headers: { host: 'slow.test' } });
      const took = Date.now() - t0;
      assert.equal(r.status, 504);
      assert.ok(r.body.length > 0 && r.body.length < 200, `body: ${r.body}`);
      assert.ok(took >= 450 && took < 1400, `504 after ${took} ms`);
      const line = await proxy.waitForLine(accessFor('slow.test'));
      assert.equal(line.status, 504);
      assert.match(String(line.error), new RegExp(`:${never.port}`));
    });

    test('global timeouts.upstreamMs applies to routes without timeoutMs -> 504', async () => {
      const t0 = Date.now();
      const r = await send(`${proxy.origin}/x`, { headers: { host: 'slowg.test' } });
      const took = Date.now() - t0;
      assert.equal(r.status, 504);
      assert.ok(took >= 1400 && took < 4000, `504 after ${took} ms`);
    });

    test('a client that disconnects cancels the upstream request at once; access log says 499', async () => {
      const before = holdEvents.length;
      const req = http.request(`${proxy.origin}/held`, { headers: { host: 'hold.test' }, agent: false });
      req.on('error', () => {});
      req.end();
      const deadline = Date.now() + 5000;
      while (holdEvents.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(holdEvents.length, before + 1, 'request never reached the upstream');
      await new Promise((r) => setTimeout(r, 200));
      const abortedAt = Date.now();
      req.destroy();
      const ev = holdEvents[before] as { closedAt: number };
      while (!ev.closedAt && Date.now() < abortedAt + 3000) await new Promise((r) => setTimeout(r, 20));
      assert.ok(ev.closedAt > 0, 'upstream request was not cancelled within 3 s');
      assert.ok(ev.closedAt - abortedAt < 2000, `upstream saw close ${ev.closedAt - abortedAt} ms after the client left`);
      const line = await proxy.waitForLine(accessFor('hold.test'), 5000);
      assert.equal(line.status, 499);
    });

    test('localhost upstreams work on 127.0.0.1 and on ::1', async () => {
      const a = await send(`${proxy.origin}/four`, { headers: { host: 'v4.test' } });
      const b = await send(`${proxy.origin}/six`, { headers: { host: 'v6.test' } });
      assert.equal(a.status, 200);
      assert.equal(b.status, 200, `::1 upstream: ${b.body}`);
      assert.equal(v4.requests.at(-1)?.url, '/four');
      assert.equal(v6.requests.at(-1)?.url, '/six');
    });

    test('20 KiB of headers -> 431 with the default limit', async () => {
      const r = await send(`${proxy.origin}/`, { headers: { host: 'h.test', 'x-pad': 'a'.repeat(20 * 1024) } });
      assert.equal(r.status, 431);
      assert.ok(!echo.requests.some((q) => q.headers['x-pad']), 'oversized headers reached the upstream');
    });

    test('maxHeaderBytes 4096: 6 KiB -> 431, 2 KiB passes', async () => {
      const big = await send(`${limited.origin}/`, { headers: { host: 'h.test', 'x-pad': 'a'.repeat(6 * 1024) } });
      assert.equal(big.status, 431);
      const small = await send(`${limited.origin}/`, { headers: { host: 'h.test', 'x-pad': 'b'.repeat(2 * 1024) } });
      assert.equal(small.status, 200);
    });

    test('maxBodyBytes 1000: declared 5000 -> 413 and nothing reaches the upstream', async () => {
      const n = echo.requests.length;
      const r = await send(`${limited.origin}/cl`, { method: 'POST', headers: { host: 'h.test', 'content-length': '5000' }, body: Buffer.alloc(5000, 1) });
      assert.equal(r.status, 413);
      assert.equal(echo.requests.length, n, 'the request reached the upstream');
    });

    test('maxBodyBytes 1000: chunked 5000 bytes -> 413; 500 bytes pass', async () => {
      const r = await send(`${limited.origin}/chunked`, {
        method: 'POST',
        headers: { host: 'h.test', 'transfer-encoding': 'chunked' },
        body: Buffer.alloc(5000, 2),
      });
      assert.equal(r.status, 413);
      const ok = await send(`${limited.origin}/ok`, { method: 'POST', headers: { host: 'h.test' }, body: Buffer.alloc(500, 3) });
      assert.equal(ok.status, 200);
      assert.equal(JSON.parse(ok.body.toString()).bodyBytes, 500);
      const okc = await send(`${limited.origin}/okc`, {
        method: 'POST',
        headers: { host: 'h.test', 'transfer-encoding': 'chunked' },
        body: Buffer.alloc(500, 3),
      });
      assert.equal(okc.status, 200);
      assert.equal(JSON.parse(okc.body.toString()).bodyBytes, 500);
    });

    test('per-route maxBodyBytes overrides the global one', async () => {
      const big = await send(`${limited.origin}/`, { method: 'POST', headers: { host: 'big.test' }, body: Buffer.alloc(5000, 4) });
      assert.equal(big.status, 200);
      assert.equal(JSON.parse(big.body.toString()).bodyBytes, 5000);
      const free = await send(`${limited.origin}/`, { method: 'POST', headers: { host: 'free.test' }, body: Buffer.alloc(50_000, 4) });
      assert.equal(free.status, 200);
      assert.equal(JSON.parse(free.body.toString()).bodyBytes, 50_000);
      const tiny = await send(`${limited.origin}/`, { method: 'POST', headers: { host: 'tiny.test' }, body: Buffer.alloc(500, 4) });
      assert.equal(tiny.status, 413);
    });

    // One answer per case, the same on every runtime. RFC 9112 §3: an invalid request line gets
    // 400; RFC 9112 §3.2: so does an invalid Host; RFC 9110 §15.5.15: a target too long, 414;
    // RFC 9112 §5: a field line without a colon is malformed (400).
    const garbage: [name: string, bytes: string, status: number][] = [
      ['garbage bytes', '\x00\x01 garbage\r\n\r\n', 400],
      ['request line without version, then fields', 'GET /\r\nHost: ok.test\r\n\r\n', 400],
      ['invalid Host', 'GET / HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n', 400],
      ['20 KiB URL', `GET /${'u'.repeat(20 * 1024)} HTTP/1.1\r\nHost: ok.test\r\nConnection: close\r\n\r\n`, 414],
      ['header without colon', 'GET / HTTP/1.1\r\nHost: ok.test\r\nnocolonhere\r\nConnection: close\r\n\r\n', 400],
    ];
    for (const [name, bytes, status] of garbage) {
      test(`bad input (${name}) gets ${status}, is not forwarded, and the proxy keeps serving`, async () => {
        const n = echo.requests.length;
        const r = await rawRequest(proxy.port, bytes, { idleMs: 1000 });
        assert.equal(r.status, status, r.raw.subarray(0, 200).toString('latin1'));
        assert.equal(echo.requests.length, n, 'bad input was forwarded upstream');
        await assertStillServing(proxy);
      });
    }

    // HTTP/0.9 (RFC 1945 §4.1: a request line without a version, no fields) is complete at its
    // first CRLF; HTTP/1.1 has no such request line (RFC 9112 §3), so the answer is a 400 at
    // once, not a wait for a header section that never comes.
    test('an HTTP/0.9 request (`GET /` alone) gets 400 at once, is not forwarded, and the proxy keeps serving', {
      todo: runtime === 'node' ? HTTP09_NODE : false,
    }, async () => {
      const n = echo.requests.length;
      const client = await connect(proxy.port);
      try {
        client.write('GET /\r\n');
        const [res] = await client.responses(1, [], 2000);
        assert.equal(res?.status, 400, res?.head);
        await client.closed();
      } finally {
        client.socket.destroy();
      }
      assert.equal(echo.requests.length, n, 'an HTTP/0.9 request was forwarded upstream');
      await assertStillServing(proxy);
    });
  });
}
