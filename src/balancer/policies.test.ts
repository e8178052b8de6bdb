// The conformance suite every policy passes: it skips unavailable upstreams, never yields one
// twice for a request, keeps weighted distribution within a stated tolerance over 10,000 picks,
// and (hashing) keeps keys where they are when the set changes by one. A seeded random makes
// every run the same.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CompiledPolicy, CompiledTarget } from '../config/compile.ts';
import { cookieValue } from '../http/cookies.ts';
import { createPicker, type Load, type Picker, type PickFacts } from './policies.ts';

/** mulberry32: a small seeded PRNG. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function targets(weights: number[]): CompiledTarget[] {
  return weights.map((weight, index) => ({
    origin: `http://127.0.0.1:${9001 + index}`,
    hostPort: `127.0.0.1:${9001 + index}`,
    index,
    weight,
    maxInFlight: Number.POSITIVE_INFINITY,
  }));
}

const facts = (key = 'k', extra: Record<string, string> = {}): PickFacts => ({
  clientIp: key,
  target: `/${key}`,
  headers: new Headers({ 'x-key': key, cookie: `a=1; sid=${key}`, ...extra }),
});

const POLICIES: Record<string, CompiledPolicy> = {
  round_robin: { kind: 'round_robin' },
  least_conn: { kind: 'least_conn' },
  random: { kind: 'random' },
  p2c: { kind: 'p2c' },
  first: { kind: 'first' },
  'hash ip': { kind: 'hash', by: 'ip', name: '' },
  'hash path': { kind: 'hash', by: 'path', name: '' },
  'hash header': { kind: 'hash', by: 'header', name: 'x-key' },
  'hash cookie': { kind: 'hash', by: 'cookie', name: 'sid' },
  sticky: { kind: 'sticky', cookie: 'sy', path: '/', secret: 'a secret of sixteen+', maxAgeSeconds: null, fallback: 'round_robin' },
};

function picker(policy: CompiledPolicy, weights: number[], loads?: Load[]): { pick: Picker; loads: { inFlight: number }[] } {
  const live = loads ?? weights.map(() => ({ inFlight: 0 }));
  return { pick: createPicker(policy, targets(weights), live, { random: seeded(42) }), loads: live as { inFlight: number }[] };
}

/** Every candidate of one request in order: pick, exclude, pick again, until none is left. */
function candidates(p: Picker, f: PickFacts, available: (i: number) => boolean): number[] {
  const tried: number[] = [];
  for (let guard = 0; guard < 100; guard++) {
    const i = p.pick(f, (j) => available(j) && !tried.includes(j));
    if (i < 0) return tried;
    tried.push(i);
  }
  throw new Error('a policy kept yielding');
}

describe('every policy', () => {
  for (const [name, policy] of Object.entries(POLICIES)) {
    test(`${name}: skips unavailable upstreams and yields each available one once, then none`, () => {
      const { pick } = picker(policy, [5, 1, 1, 3]);
      for (let r = 0; r < 200; r++) {
        const down = new Set([r % 4, (r * 7) % 5 === 0 ? 2 : -1]);
        const order = candidates(pick, facts(`key-${r}`), (i) => !down.has(i));
        assert.deepEqual(
          [...order].sort(),
          [0, 1, 2, 3].filter((i) => !down.has(i)),
          `request ${r}: ${order}`,
        );
      }
      assert.equal(
        pick.pick(facts(), () => false),
        -1,
        'nothing available: -1',
      );
    });
  }
});

/** Shares of 10,000 first picks, each a new request (a new key for the hashes). */
function shares(pick: Picker, n: number, release = true, loads?: { inFlight: number }[]): number[] {
  const counts = new Array(n).fill(0);
  for (let r = 0; r < 10_000; r++) {
    const i = pick.pick(facts(`client-${r}`), () => true);
    counts[i]++;
    if (!release && loads) (loads[i] as { inFlight: number }).inFlight++;
  }
  return counts.map((c) => c / 10_000);
}

describe('weighted distribution over 10,000 picks (weights 5:1:1:3 -> 0.5, 0.1, 0.1, 0.3)', () => {
  const expected = [0.5, 0.1, 0.1, 0.3];
  test('round_robin: exact (smooth weighted round robin) and interleaved', () => {
    const { pick } = picker(POLICIES.round_robin as CompiledPolicy, [5, 1, 1, 3]);
    assert.deepEqual(shares(pick, 4), expected);
    // Smooth: the heaviest never gets more than two in a row with these weights (nginx's a a b a c a ...).
    const { pick: again } = picker(POLICIES.round_robin as CompiledPolicy, [5, 1, 1, 3]);
    const seq = Array.from({ length: 10 }, () => again.pick(facts(), () => true));
    assert.ok(!/0,0,0/.test(seq.join(',')), `sequence ${seq}`);
  });
  test('least_conn: in proportion to weight as load builds up (exact within 1 pick each)', () => {
    const { pick, loads } = picker(POLICIES.least_conn as CompiledPolicy, [5, 1, 1, 3]);
    const got = shares(pick, 4, false, loads);
    for (const [i, share] of got.entries()) assert.ok(Math.abs(share - (expected[i] as number)) <= 0.0002, `target ${i}: ${share}`);
  });
  for (const name of ['random', 'p2c', 'hash ip', 'hash path', 'hash header', 'hash cookie']) {
    test(`${name}: each share within 0.02 of its weight's`, () => {
      const { pick } = picker(POLICIES[name] as CompiledPolicy, [5, 1, 1, 3]);
      const got = shares(pick, 4);
      for (const [i, share] of got.entries()) assert.ok(Math.abs(share - (expected[i] as number)) <= 0.02, `target ${i}: ${share} (all ${got})`);
    });
  }
  test('first: all to the first available, then the next in order', () => {
    const { pick } = picker(POLICIES.first as CompiledPolicy, [5, 1, 1, 3]);
    assert.deepEqual(shares(pick, 4), [1, 0, 0, 0]);
    assert.equal(
      pick.pick(facts(), (i) => i !== 0),
      1,
    );
    assert.equal(
      pick.pick(facts(), (i) => i > 1),
      2,
    );
  });
});

describe('least_conn and p2c follow load', () => {
  test('least_conn picks the upstream with fewest in flight per weight; ties take turns', () => {
    const loads = [{ inFlight: 3 }, { inFlight: 1 }, { inFlight: 2 }];
    const { pick } = picker(POLICIES.least_conn as CompiledPolicy, [1, 1, 1], loads);
    assert.equal(
      pick.pick(facts(), () => true),
      1,
    );
    loads[1] = { inFlight: 2 };
    const { pick: tie } = picker(POLICIES.least_conn as CompiledPolicy, [1, 1, 1], [{ inFlight: 0 }, { inFlight: 0 }, { inFlight: 0 }]);
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map(() => tie.pick(facts(), () => true)),
      [0, 1, 2, 0, 1, 2],
    );
  });
  test('p2c never picks the busiest of three when the other two are idle', () => {
    const { pick } = picker(POLICIES.p2c as CompiledPolicy, [1, 1, 1], [{ inFlight: 50 }, { inFlight: 0 }, { inFlight: 0 }]);
    for (let r = 0; r < 1000; r++)
      assert.notEqual(
        pick.pick(facts(), () => true),
        0,
      );
  });
});

describe('hashing keeps keys stable', () => {
  const keys = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);
  const owners = (weights: number[], origins?: CompiledTarget[]) => {
    const list = origins ?? targets(weights);
    const pick = createPicker(
      { kind: 'hash', by: 'header', name: 'x-key' },
      list,
      list.map(() => ({ inFlight: 0 })),
    );
    return keys.map((k) => (list[pick.pick(facts(k), () => true)] as CompiledTarget).origin);
  };
  test('the same key always goes to the same upstream', () => {
    const a = owners([1, 1, 1, 1]);
    assert.deepEqual(owners([1, 1, 1, 1]), a);
  });
  test('removing one of four moves only its own keys (about 1/4)', () => {
    const before = owners([1, 1, 1, 1]);
    const after = owners([1, 1, 1, 1], targets([1, 1, 1, 1]).slice(0, 3));
    const removed = 'http://127.0.0.1:9004';
    let moved = 0;
    before.forEach((owner, i) => {
      if (owner !== after[i]) {
        moved++;
        assert.equal(owner, removed, `key ${keys[i]} moved from ${owner}, which is still there`);
      }
    });
    assert.ok(Math.abs(moved / keys.length - 0.25) <= 0.02, `moved ${moved}`);
  });
  test('adding a fifth moves about 1/5 of the keys, all to the new one; order of the list does not matter', () => {
    const before = owners([1, 1, 1, 1]);
    const after = owners([1, 1, 1, 1, 1]);
    let moved = 0;
    before.forEach((owner, i) => {
      if (owner !== after[i]) {
        moved++;
        assert.equal(after[i], 'http://127.0.0.1:9005');
      }
    });
    assert.ok(Math.abs(moved / keys.length - 0.2) <= 0.02, `moved ${moved}`);
    const reversed = targets([1, 1, 1, 1]).reverse();
    assert.deepEqual(owners([], reversed), before);
  });
  test('a request without the header falls back to round robin', () => {
    const pick = createPicker({ kind: 'hash', by: 'header', name: 'x-none' }, targets([1, 1]), [{ inFlight: 0 }, { inFlight: 0 }]);
    assert.deepEqual(
      [0, 1, 2, 3].map(() => pick.pick(facts(), () => true)),
      [0, 1, 0, 1],
    );
  });
});

describe('sticky cookies', () => {
  const policy = POLICIES.sticky as CompiledPolicy;
  test('the cookie set for an upstream brings the client back to it; a pinned request sets none', () => {
    const { pick } = picker(policy, [1, 1, 1]);
    const first = pick.pick(facts(), () => true);
    const setCookie = pick.cookieFor?.(facts(), first) as string;
    assert.match(setCookie, /^sy=[A-Za-z0-9_-]{22}; Path=\/; HttpOnly; SameSite=Lax$/);
    const value = setCookie.slice(3, setCookie.indexOf(';'));
    const pinned = facts('k', { cookie: `other=1; sy=${value}` });
    for (let r = 0; r < 20; r++)
      assert.equal(
        pick.pick(pinned, () => true),
        first,
      );
    assert.equal(pick.cookieFor?.(pinned, first), null);
    // Its upstream unavailable: the fallback picks, and the answer re-pins.
    const moved = pick.pick(pinned, (i) => i !== first);
    assert.notEqual(moved, first);
    assert.ok(pick.cookieFor?.(pinned, moved));
  });
  test('a tampered or made-up value pins nothing, and values differ by secret', () => {
    const { pick } = picker(policy, [1, 1, 1]);
    const set = pick.cookieFor?.(facts(), 2) as string;
    const value = set.slice(3, set.indexOf(';'));
    const tampered = `${value.slice(0, -1)}${value.endsWith('A') ? 'B' : 'A'}`;
    const seen = new Set<number>();
    for (let r = 0; r < 30; r++) seen.add(pick.pick(facts('k', { cookie: `sy=${tampered}` }), () => true));
    assert.equal(seen.size, 3, 'a tampered cookie goes round robin like no cookie');
    for (const guess of ['0', '2', '127.0.0.1:9003', 'http://127.0.0.1:9003', ''])
      assert.equal(pick.cookieFor?.(facts('k', { cookie: `sy=${guess}` }), 2), set);
    const other = createPicker({ ...policy, secret: 'another secret, sixteen+' } as CompiledPolicy, targets([1, 1, 1]), []);
    assert.notEqual(other.cookieFor?.(facts(), 2), set);
  });
  test('Max-Age when configured', () => {
    const pick = createPicker({ ...policy, maxAgeSeconds: 3600 } as CompiledPolicy, targets([1]), [{ inFlight: 0 }]);
    assert.match(pick.cookieFor?.(facts(), 0) as string, /; Max-Age=3600$/);
  });
});

test('cookieValue reads one cookie of a Cookie header', () => {
  assert.equal(cookieValue('a=1; sid=xyz; b=2', 'sid'), 'xyz');
  assert.equal(cookieValue('sid=xyz', 'sid'), 'xyz');
  assert.equal(cookieValue('xsid=1; sid= v ', 'sid'), 'v');
  assert.equal(cookieValue('a=1', 'sid'), null);
  assert.equal(cookieValue(null, 'sid'), null);
  assert.equal(cookieValue('sid', 'sid'), null);
});
