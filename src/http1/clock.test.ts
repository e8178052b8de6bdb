// The shared sweep clock on its own, driven by explicit ticks (no waiting). Pure code, so it
// runs on every runtime.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SweepClock } from './clock.ts';

describe('sweep clock', () => {
  test('every registered sweep runs on a tick with the new time; removal stops it', () => {
    const clock = new SweepClock(60_000);
    const seen: string[] = [];
    const removeA = clock.add((now) => seen.push(`a${now}`));
    const removeB = clock.add((now) => seen.push(`b${now}`));
    clock.tick(1_000_000);
    assert.deepEqual(seen, ['a1000000', 'b1000000']);
    assert.equal(clock.now, 1_000_000);
    removeA();
    clock.tick(1_001_000);
    assert.deepEqual(seen.slice(2), ['b1001000']);
    removeB();
    assert.equal(clock.size, 0);
  });

  test('the Date line follows the clock (RFC 9110 §5.6.7 IMF-fixdate)', () => {
    const clock = new SweepClock(60_000);
    const remove = clock.add(() => {});
    clock.tick(Date.UTC(2026, 0, 2, 3, 4, 5));
    assert.equal(clock.dateLine, 'date: Fri, 02 Jan 2026 03:04:05 GMT\r\n');
    clock.tick(Date.UTC(2026, 0, 2, 3, 4, 5) + 999);
    assert.equal(clock.dateLine, 'date: Fri, 02 Jan 2026 03:04:05 GMT\r\n');
    clock.tick(Date.UTC(2026, 0, 2, 3, 4, 6));
    assert.equal(clock.dateLine, 'date: Fri, 02 Jan 2026 03:04:06 GMT\r\n');
    remove();
  });

  test('the timer ticks by itself while something is registered', async () => {
    const clock = new SweepClock(10);
    let ticks = 0;
    const remove = clock.add(() => ticks++);
    const end = Date.now() + 2000;
    while (ticks < 2 && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 5));
    remove();
    assert.ok(ticks >= 2, `ticked ${ticks} times`);
  });
});
