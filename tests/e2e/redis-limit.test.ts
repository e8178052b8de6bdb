// Rate limits shared through Redis (issue 11), on all three runtimes: two switchyard processes
// with one `store: 'redis'` limit of 100 per 10 s enforce it together, and while Redis is killed
// or hung each request is decided by `onStoreDown` within `commandTimeoutMs`. A real
// redis-server (tests/support/redis.ts), killed and restarted by its PID.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { type RedisServer, startRedis } from '../support/redis.ts';
import { sleep } from '../support/wait.ts';
import { type ProxyHandle, RUNTIMES, startProxy, startUpstream, type Upstream } from './harness.ts';

// Long enough that a loaded CI machine (two proxies, Redis, the client and the upstream on two
// cores) does not time a live Redis out: a request whose count times out is let through
// uncounted under onStoreDown 'allow' (Redis may still count it), which the 100 +/- 2 would
// then see. With 100 ms, Deno on CI accepted 108 of 1,000 that way.
const COMMAND_TIMEOUT_MS = 500;

/** One GET through a keep-alive agent; status and how long it took. */
function get(agent: http.Agent, port: number, host: string): Promise<{ status: number; ms: number; headers: http.IncomingHttpHeaders }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', headers: { host }, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started, headers: res.headers }));
    });
    req.setTimeout(5_000, () => req.destroy(new Error(`no answer from ${host} in 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** `count` requests over `proxies` in turn, `concurrency` at a time; the statuses and the slowest. */
async function spread(agent: http.Agent, proxies: ProxyHandle[], host: string, count: number, concurrency = 16) {
  const statuses: number[] = [];
  let slowest = 0;
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const { status, ms } = await get(agent, (proxies[i % proxies.length] as ProxyHandle).port, host);
      statuses.push(status);
      slowest = Math.max(slowest, ms);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const count200 = statuses.filter((s) => s === 200).length;
  return { statuses, ok: count200, slowest };
}

for (const runtime of RUNTIMES) {
  describe(`a Redis-backed rate limit shared by two processes on ${runtime}`, () => {
    let redis: RedisServer;
    let upstream: Upstream;
    let proxies: ProxyHandle[] = [];
    const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
    before(async () => {
      redis = await startRedis();
      upstream = await startUpstream();
      const limit = (host: string, onStoreDown: 'allow' | 'deny', requests = 100) => ({
        host,
        upstream: upstream.origin,
        rateLimit: { requests, windowSeconds: 10, key: 'route', store: 'redis', onStoreDown },
      });
      const routes = {
        redis: { url: redis.url, commandTimeoutMs: COMMAND_TIMEOUT_MS, keyPrefix: `e2e-${runtime}:` },
        routes: [limit('shared.test', 'allow'), limit('open.test', 'allow'), limit('closed.test', 'deny', 1_000_000), limit('after.test', 'allow')],
      };
      proxies = await Promise.all([startProxy(runtime, routes), startProxy(runtime, routes)]);
    });
    after(async () => {
      agent.destroy();
      await Promise.all(proxies.map((p) => p.stop()));
      await upstream?.close();
      await redis?.stop();
    });

    test('1,000 requests spread over both processes: 100 accepted, the rest 429, none of those forwarded', async (t) => {
      const from = upstream.requests.length;
      const started = performance.now();
      const { statuses, ok } = await spread(agent, proxies, 'shared.test', 1_000);
      const took = performance.now() - started;
      assert.ok(took < 9_000, `the run fits in the window (${took.toFixed(0)} ms)`);
      t.diagnostic(`${runtime}: ${ok} of 1000 accepted in ${took.toFixed(0)} ms`);
      assert.ok(Math.abs(ok - 100) <= 2, `${ok} accepted`);
      assert.equal(statuses.filter((s) => s === 429).length, 1_000 - ok);
      assert.equal(upstream.requests.length - from, ok, 'refused requests never reached the upstream');
      // Both processes took part in the accepted ones (neither has a count of its own).
      const perProxy = proxies.map((p) => p.lines.filter((l) => l.msg === 'access' && l.host === 'shared.test' && l.status === 200).length);
      assert.ok(
        perProxy.every((n) => n > 10),
        `accepted per process: ${perProxy.join(', ')}`,
      );
    });

    test('Redis killed: onStoreDown allow lets requests through, deny answers 503, each within the command timeout; logged once, not per request', async (t) => {
      await redis.kill();
      const open = await spread(agent, proxies, 'open.test', 200, 8);
      const closed = await spread(agent, proxies, 'closed.test', 200, 8);
      assert.equal(open.ok, 200, `fail open: ${[...new Set(open.statuses)].join(', ')}`);
      assert.deepEqual([...new Set(closed.statuses)], [503], 'fail closed');
      t.diagnostic(`${runtime}: Redis killed: slowest ${open.slowest.toFixed(1)} ms (allow), ${closed.slowest.toFixed(1)} ms (deny)`);
      const budget = COMMAND_TIMEOUT_MS + 400; // the timeout plus a loaded machine's HTTP round trip (it fails at once, in fact)
      assert.ok(open.slowest < budget && closed.slowest < budget, `slowest ${open.slowest.toFixed(0)} / ${closed.slowest.toFixed(0)} ms`);
      for (const proxy of proxies) {
        const downs = proxy.lines.filter((l) => l.msg === 'rate limit store down');
        assert.ok(downs.length >= 1 && downs.length <= 2, `${downs.length} 'store down' lines for 400 requests`);
        assert.equal(typeof downs[0]?.error, 'string');
      }
      const refused = await get(agent, (proxies[0] as ProxyHandle).port, 'closed.test');
      assert.equal(refused.headers['retry-after'], '1');
    });

    test('Redis restarted: both processes reconnect by themselves and the shared limit holds again', async () => {
      await redis.restart();
      for (const proxy of proxies) await proxy.waitForLine((l) => l.msg === 'rate limit store back', 10_000);
      const { ok } = await spread(agent, proxies, 'after.test', 300);
      assert.ok(Math.abs(ok - 100) <= 2, `${ok} accepted after the restart`);
      assert.equal((await get(agent, (proxies[1] as ProxyHandle).port, 'closed.test')).status, 200, 'fail-closed routes serve again');
    });

    test('Redis hung (SIGSTOP): requests wait the command timeout, no longer, then onStoreDown decides', async (t) => {
      redis.pause();
      try {
        const closed = await spread(agent, proxies, 'closed.test', 12, 4);
        assert.deepEqual([...new Set(closed.statuses)], [503]);
        t.diagnostic(`${runtime}: Redis hung: slowest ${closed.slowest.toFixed(1)} ms with commandTimeoutMs ${COMMAND_TIMEOUT_MS}`);
        assert.ok(closed.slowest >= COMMAND_TIMEOUT_MS * 0.8, `slowest ${closed.slowest.toFixed(0)} ms: it did wait for Redis`);
        assert.ok(closed.slowest < COMMAND_TIMEOUT_MS + 400, `slowest ${closed.slowest.toFixed(0)} ms`);
        const open = await spread(agent, proxies, 'open.test', 12, 4);
        assert.equal(open.ok, 12);
      } finally {
        redis.resume();
      }
      await sleep(200);
      assert.equal((await get(agent, (proxies[0] as ProxyHandle).port, 'closed.test')).status, 200, 'served again once Redis answers');
    });
  });
}
