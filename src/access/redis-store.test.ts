// The Redis store (issue 11) against a real redis-server: the sliding log and the bucket in Lua,
// and what a request sees while Redis is killed, hung or back.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type RedisServer, startRedis } from '../../tests/support/redis.ts';
import { sleep, until } from '../../tests/support/wait.ts';
import { createLogger } from '../log/logger.ts';
import { RedisStore } from './redis-store.ts';

let redis: RedisServer;
let store: RedisStore;
const lines: { msg: string; [field: string]: unknown }[] = [];
// The lines as the process would print them, parsed back.
const logger = createLogger({
  write: (text) => {
    for (const line of text.trim().split('\n')) lines.push(JSON.parse(line));
  },
});

before(async () => {
  redis = await startRedis();
  store = new RedisStore({ url: redis.url, commandTimeoutMs: 50, keyPrefix: 'test:' }, logger);
  await until(() => store.up, 5_000, 'the client connects');
});
after(async () => {
  store.stop();
  await redis.stop();
});

test('at most N per window, shared by every limiter on the same key', async () => {
  const a = store.limiter('r1', { requests: 5, windowSeconds: 10, burst: null }, 'allow');
  const b = store.limiter('r1', { requests: 5, windowSeconds: 10, burst: null }, 'allow');
  const decisions = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).hit('k')));
  assert.equal(decisions.filter((d) => d.allowed).length, 5);
  const refused = decisions.find((d) => !d.allowed);
  assert.ok(refused !== undefined && refused.resetSeconds >= 9 && refused.resetSeconds <= 10, `reset ${refused?.resetSeconds}`);
  assert.equal(refused.remaining, 0);
  // Another key, another route: their own logs.
  assert.equal((await a.hit('other')).allowed, true);
  const c = store.limiter('r2', { requests: 5, windowSeconds: 10, burst: null }, 'allow');
  assert.equal((await c.hit('k')).remaining, 4);
});

test('a window of 1 s lets the next request in once the oldest has left', async () => {
  const limiter = store.limiter('r3', { requests: 2, windowSeconds: 1, burst: null }, 'allow');
  assert.equal((await limiter.hit('k')).allowed, true);
  assert.equal((await limiter.hit('k')).allowed, true);
  assert.equal((await limiter.hit('k')).allowed, false);
  await sleep(1_050);
  assert.equal((await limiter.hit('k')).allowed, true);
});

test('burst: a bucket on top of the window lets `burst` through at once, then the average rate', async () => {
  // 100 per 10 s is 10 per second on average; burst 3.
  const limiter = store.limiter('r4', { requests: 100, windowSeconds: 10, burst: 3 }, 'allow');
  const first = await Promise.all(Array.from({ length: 6 }, () => limiter.hit('k')));
  assert.deepEqual(
    first.map((d) => d.allowed),
    [true, true, true, false, false, false],
  );
  assert.equal(first[3]?.resetSeconds, 1);
  await sleep(250); // 2.5 tokens back
  const later = await Promise.all(Array.from({ length: 4 }, () => limiter.hit('k')));
  assert.equal(later.filter((d) => d.allowed).length, 2);
});

test('Redis killed: every request is decided within the command timeout by onStoreDown; restarted: counted again', async () => {
  const open = store.limiter('r5', { requests: 1, windowSeconds: 60, burst: null }, 'allow');
  const closed = store.limiter('r6', { requests: 1000, windowSeconds: 60, burst: null }, 'deny');
  assert.equal((await open.hit('k')).allowed, true);
  assert.equal((await open.hit('k')).allowed, false, 'counted while Redis is up');
  lines.length = 0;
  await redis.kill();
  let slowest = 0;
  for (let i = 0; i < 40; i++) {
    const started = performance.now();
    const [o, c] = await Promise.all([open.hit('k'), closed.hit('k')]);
    slowest = Math.max(slowest, performance.now() - started);
    assert.equal(o.allowed, true, 'fail open');
    assert.equal(o.storeDown, true);
    assert.equal(c.allowed, false, 'fail closed');
    assert.equal(c.storeDown, true);
    await sleep(10);
  }
  assert.ok(slowest < 50 + 100, `slowest decision ${slowest.toFixed(1)} ms`);
  const downs = lines.filter((l) => l.msg === 'rate limit store down');
  assert.equal(downs.length, 1, 'logged once in the interval, not per request');
  await redis.restart();
  await until(() => store.up, 5_000, 'the client reconnects by itself');
  // The new server is empty: counting starts over, and holds.
  assert.equal((await open.hit('k')).allowed, true);
  const again = await open.hit('k');
  assert.equal(again.allowed, false);
  assert.equal(again.storeDown, undefined);
  assert.ok(
    lines.some((l) => l.msg === 'rate limit store back'),
    'the recovery is logged',
  );
});

test('Redis hung (SIGSTOP): a request waits the command timeout, no longer', async () => {
  const closed = store.limiter('r7', { requests: 1000, windowSeconds: 60, burst: null }, 'deny');
  assert.equal((await closed.hit('k')).allowed, true);
  redis.pause();
  try {
    const started = performance.now();
    const decision = await closed.hit('k');
    const took = performance.now() - started;
    assert.equal(decision.allowed, false);
    assert.equal(decision.storeDown, true);
    assert.ok(took >= 40 && took < 50 + 100, `took ${took.toFixed(1)} ms`);
  } finally {
    redis.resume();
  }
  await until(() => store.up, 5_000, 'still connected after the pause');
});
