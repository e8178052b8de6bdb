import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep } from '../../tests/support/wait.ts';
import { watchedBody } from './body-watch.ts';
import type { ProxyError } from './errors.ts';

/** A body that yields `chunks`, waiting `gapMs` before each; `stallAfter` stops it there for good. */
function paced(chunks: Uint8Array[], gapMs: number, stallAfter = Number.POSITIVE_INFINITY): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (i >= stallAfter) return new Promise(() => {}); // never another byte
      await sleep(gapMs);
      if (i >= chunks.length) controller.close();
      else controller.enqueue(chunks[i++] as Uint8Array);
    },
  });
}

/** Reads `body` as the upstream would, `readGapMs` between reads; resolves with bytes read and the failure. */
async function drain(body: ReadableStream<Uint8Array>, readGapMs = 0): Promise<{ bytes: number; error: unknown }> {
  const reader = body.getReader();
  let bytes = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { bytes, error: null };
      bytes += value.byteLength;
      if (readGapMs > 0) await sleep(readGapMs);
    }
  } catch (error) {
    return { bytes, error };
  }
}

const watch = (overrides: Partial<Parameters<typeof watchedBody>[1]> & { failures: ProxyError[]; ended: string[] }) => ({
  limit: null,
  stallMs: 300,
  minBytesPerSecond: 0,
  fail: (e: ProxyError) => overrides.failures.push(e),
  onEnd: () => overrides.ended.push('end'),
  ...overrides,
});

const bytes = (n: number) => new Uint8Array(n).fill(1);

test('a body that keeps coming passes whole and calls onEnd once', async () => {
  const failures: ProxyError[] = [];
  const ended: string[] = [];
  const out = await drain(watchedBody(paced([bytes(10), bytes(20), bytes(30)], 20), watch({ failures, ended })));
  assert.deepEqual(out, { bytes: 60, error: null });
  assert.deepEqual(failures, []);
  assert.deepEqual(ended, ['end']);
});

test('a body that stalls longer than stallMs is cut with body-timeout (408)', async () => {
  const failures: ProxyError[] = [];
  const out = await drain(watchedBody(paced([bytes(10), bytes(10)], 10, 1), watch({ failures, ended: [] })));
  assert.equal(out.bytes, 10);
  assert.equal(failures[0]?.kind, 'body-timeout');
  assert.match(failures[0]?.message ?? '', /stalled for 300 ms/);
});

test('a trickle that beats the stall timer is cut by the minimum rate once the grace (stallMs) was waited', async () => {
  const failures: ProxyError[] = [];
  const trickle = Array.from({ length: 40 }, () => bytes(1));
  const out = await drain(watchedBody(paced(trickle, 50), watch({ failures, ended: [], minBytesPerSecond: 500 })));
  assert.equal(failures[0]?.kind, 'body-timeout');
  assert.match(failures[0]?.message ?? '', /too slow/);
  assert.ok(out.bytes < 40, `cut after ${out.bytes} bytes`);
});

test('time the upstream takes to read does not count against the client', async () => {
  const failures: ProxyError[] = [];
  // The client is quick (5 ms per chunk), the reader slow (100 ms between reads): far over
  // stallMs in total, yet no failure.
  const out = await drain(
    watchedBody(paced([bytes(1000), bytes(1000), bytes(1000), bytes(1000), bytes(1000)], 5), watch({ failures, ended: [], minBytesPerSecond: 500 })),
    100,
  );
  assert.equal(out.bytes, 5000);
  assert.deepEqual(failures, []);
});

test('a chunked body crossing the limit is cut with body-too-large (413)', async () => {
  const failures: ProxyError[] = [];
  const out = await drain(watchedBody(paced([bytes(60), bytes(60)], 5), watch({ failures, ended: [], limit: 100 })));
  assert.equal(out.bytes, 60);
  assert.equal(failures[0]?.kind, 'body-too-large');
});
