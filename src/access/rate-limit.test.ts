// The sliding-log limiter (issue 11) on a fake clock: at most N in any window, exactly.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MEMORY_STORE_BYTES, MemoryRateLimiter } from './rate-limit.ts';

test('at most N in any window of W: the N+1th waits until the oldest leaves', () => {
  let now = 1_000_000;
  const limiter = new MemoryRateLimiter({ requests: 3, windowSeconds: 10, burst: null }, undefined, () => now);
  assert.deepEqual(limiter.hit('a'), { allowed: true, limit: 3, remaining: 2, resetSeconds: 10 });
  now += 4_000;
  assert.equal(limiter.hit('a').remaining, 1);
  now += 4_000;
  assert.equal(limiter.hit('a').remaining, 0);
  now += 1_000; // 9 s after the first
  const refused = limiter.hit('a');
  assert.equal(refused.allowed, false);
  assert.equal(refused.resetSeconds, 1, 'the first request leaves the window in 1 s');
  now += 1_000; // the first is 10 s old: out
  assert.equal(limiter.hit('a').allowed, true);
  assert.equal(limiter.hit('a').allowed, false, 'the second and third are still in');
  // Other keys are independent.
  assert.equal(limiter.hit('b').allowed, true);
});

test('no window edge lets more through (a fixed window would allow 2N around its edge)', () => {
  let now = 0;
  const limiter = new MemoryRateLimiter({ requests: 100, windowSeconds: 10, burst: null }, undefined, () => now);
  const accepted: number[] = [];
  // 1,000 requests spread over 30 s, bursty: many at the end of a "window", many at its start.
  for (let i = 0; i < 1000; i++) {
    now = Math.floor(i / 50) * 1500 + (i % 50);
    if (limiter.hit('k').allowed) accepted.push(now);
  }
  for (let i = 0; i < accepted.length; i++) {
    const inWindow = accepted.filter((t) => t > (accepted[i] as number) - 10_000 && t <= (accepted[i] as number)).length;
    assert.ok(inWindow <= 100, `${inWindow} accepted within the 10 s before ${accepted[i]}`);
  }
  assert.ok(accepted.length >= 300, `accepted ${accepted.length}`);
});

test('rings grow on demand up to the limit, and the store is bounded by bytes, evicting the least recently seen', () => {
  let now = 0;
  const limiter = new MemoryRateLimiter({ requests: 1000, windowSeconds: 60, burst: null }, 1024 * 1024, () => now);
  for (let i = 0; i < 600; i++) limiter.hit('big');
  assert.equal(limiter.hit('big').remaining, 1000 - 601);
  for (let i = 0; i < 100_000; i++) {
    now++;
    limiter.hit(`flood-${i}`);
  }
  // 1 MiB over ~480-byte entries (8 timestamps, the key, overhead): about two thousand keys, never 100,000.
  assert.ok(limiter.size < 5_000, `${limiter.size} keys held`);
  assert.ok(limiter.size > 1_000, `${limiter.size} keys held`);
});

test('burst: at most `burst` at once, then tokens come back at requests / window', () => {
  let now = 0;
  // 60 per 60 s: one token a second; burst 5.
  const limiter = new MemoryRateLimiter({ requests: 60, windowSeconds: 60, burst: 5 }, undefined, () => now);
  const first = Array.from({ length: 8 }, () => limiter.hit('k'));
  assert.deepEqual(
    first.map((d) => d.allowed),
    [true, true, true, true, true, false, false, false],
  );
  assert.equal(first[5]?.resetSeconds, 1, 'the next token is 1 s away');
  now += 2_500;
  assert.equal(Array.from({ length: 4 }, () => limiter.hit('k')).filter((d) => d.allowed).length, 2);
  // The window still caps it: 60 s of one per second, then the window is full.
  let accepted = 7;
  for (let s = 0; s < 57; s++) {
    now += 1_000;
    if (limiter.hit('k').allowed) accepted++;
  }
  assert.ok(accepted <= 60, `${accepted} in 60 s`);
  assert.equal(limiter.hit('b').allowed, true, 'keys have their own buckets');
});

test('a flood of 1,000,000 distinct keys stays within the byte bound', () => {
  const limiter = new MemoryRateLimiter({ requests: 100, windowSeconds: 60, burst: null });
  for (let i = 0; i < 1_000_000; i++) limiter.hit(`h:key-${i}`);
  assert.ok(limiter.bytes <= MEMORY_STORE_BYTES, `${limiter.bytes} bytes`);
  assert.ok(limiter.size < 1_000_000 && limiter.size > 100_000, `${limiter.size} keys kept`);
  // The most recent keys are still counted.
  assert.equal(limiter.hit('h:key-999999').remaining, 98);
});
