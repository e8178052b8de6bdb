// Selection: each policy turns a request into its preferred upstream among those the caller
// calls eligible. Eligibility (healthy, not cooling down, under its cap, not tried yet for this
// request) is the caller's filter, never the policy's business, so every policy passes the same
// conformance cases (policies.test.ts) and a retry simply asks again with the tried one excluded:
// repeated picks yield the policy's candidates in order of preference, each once (Pingora's
// model: selection yields candidates, health filters them).
import { createHmac, randomBytes } from 'node:crypto';
import type { CompiledPolicy, CompiledTarget } from '../config/compile.ts';
import { cookieValue } from '../http/cookies.ts';

/** What a policy may read of a request. */
export interface PickFacts {
  /** The client's address (the socket peer). */
  readonly clientIp: string;
  /** The request target (path and query) as the client sent it. */
  readonly target: string;
  readonly headers: Headers;
}

/** What a policy may read of an upstream besides its weight. */
export interface Load {
  /** Requests (and tunnels) in flight to it. */
  readonly inFlight: number;
}

export interface Picker {
  /** The preferred target's index among those `eligible` accepts, or -1 when it accepts none. */
  pick(facts: PickFacts, eligible: (index: number) => boolean): number;
  /**
   * Sticky sessions only: the `Set-Cookie` value that pins the client to `index`, or null when
   * the request already carries it.
   */
  readonly cookieFor?: (facts: PickFacts, index: number) => string | null;
}

/** A uniform random number in [0, 1); injectable so conformance tests are reproducible. */
export type Random = () => number;

/** Builds a group's picker. `loads[i]` is target i's live load (the balancer's state). */
export function createPicker(policy: CompiledPolicy, targets: readonly CompiledTarget[], loads: readonly Load[], options: PickerOptions = {}): Picker {
  const random = options.random ?? Math.random;
  switch (policy.kind) {
    case 'round_robin':
      return smoothWeighted(targets);
    case 'least_conn':
      return leastConn(targets, loads);
    case 'random':
      return weightedRandom(targets, random);
    case 'p2c':
      return powerOfTwo(targets, loads, random);
    case 'first':
      return first(targets);
    case 'hash':
      return rendezvous(targets, keyOf(policy.by, policy.name), smoothWeighted(targets));
    case 'sticky':
      return sticky(policy, targets, createPicker({ kind: policy.fallback }, targets, loads, options), options.secret);
  }
}

export interface PickerOptions {
  readonly random?: Random;
  /** The HMAC key of sticky cookies without a configured secret (one per process). */
  readonly secret?: string;
}

// ---- the policies ------------------------------------------------------------------------------

/**
 * nginx's smooth weighted round robin: every eligible target's credit grows by its weight, the
 * richest wins and pays the total. Weights 5:1:1 give a b a c a a a, not a a a a a b c; equal
 * weights give plain turns.
 */
function smoothWeighted(targets: readonly CompiledTarget[]): Picker {
  const credit = new Float64Array(targets.length);
  const weights = targets.map((t) => t.weight);
  return {
    pick(_facts, eligible) {
      let best = -1;
      let total = 0;
      for (let i = 0; i < weights.length; i++) {
        if (!eligible(i)) continue;
        const w = weights[i] as number;
        credit[i] = (credit[i] as number) + w;
        total += w;
        if (best < 0 || (credit[i] as number) > (credit[best] as number)) best = i;
      }
      if (best >= 0) credit[best] = (credit[best] as number) - total;
      return best;
    },
  };
}

/** Fewest in flight per unit of weight; among equals, the turn moves on so ties spread. */
function leastConn(targets: readonly CompiledTarget[], loads: readonly Load[]): Picker {
  const weights = targets.map((t) => t.weight);
  const n = targets.length;
  let turn = 0;
  return {
    pick(_facts, eligible) {
      let best = -1;
      const start = turn;
      turn = (turn + 1) % n;
      for (let k = 0; k < n; k++) {
        const i = (start + k) % n;
        if (!eligible(i)) continue;
        // a/wa < b/wb without division: a*wb < b*wa.
        if (best < 0 || (loads[i] as Load).inFlight * (weights[best] as number) < (loads[best] as Load).inFlight * (weights[i] as number)) best = i;
      }
      return best;
    },
  };
}

/** At random, in proportion to weight, among the eligible. */
function weightedRandom(targets: readonly CompiledTarget[], random: Random): Picker {
  const weights = targets.map((t) => t.weight);
  return { pick: (_facts, eligible) => drawWeighted(weights, eligible, random, -1) };
}

/** One weighted draw among eligible targets other than `except`; -1 if none. */
function drawWeighted(weights: readonly number[], eligible: (index: number) => boolean, random: Random, except: number): number {
  let total = 0;
  for (let i = 0; i < weights.length; i++) if (i !== except && eligible(i)) total += weights[i] as number;
  if (total === 0) return -1;
  let r = random() * total;
  let last = -1;
  for (let i = 0; i < weights.length; i++) {
    if (i === except || !eligible(i)) continue;
    last = i;
    r -= weights[i] as number;
    if (r < 0) return i;
  }
  return last; // rounding at the top end
}

/** Two weighted random draws; the less loaded per unit of weight wins (the first on a tie). */
function powerOfTwo(targets: readonly CompiledTarget[], loads: readonly Load[], random: Random): Picker {
  const weights = targets.map((t) => t.weight);
  return {
    pick(_facts, eligible) {
      const a = drawWeighted(weights, eligible, random, -1);
      if (a < 0) return -1;
      const b = drawWeighted(weights, eligible, random, a);
      if (b < 0) return a;
      return (loads[b] as Load).inFlight * (weights[a] as number) < (loads[a] as Load).inFlight * (weights[b] as number) ? b : a;
    },
  };
}

/** The first eligible in the order written: ordered failover. */
function first(targets: readonly CompiledTarget[]): Picker {
  const n = targets.length;
  return {
    pick(_facts, eligible) {
      for (let i = 0; i < n; i++) if (eligible(i)) return i;
      return -1;
    },
  };
}

/** The request's hash key, or null when it has none (the fallback picks then). */
type KeyOf = (facts: PickFacts) => string | null;

function keyOf(by: 'ip' | 'path' | 'header' | 'cookie', name: string): KeyOf {
  switch (by) {
    case 'ip':
      return (facts) => facts.clientIp;
    case 'path':
      return (facts) => facts.target;
    case 'header':
      return (facts) => facts.headers.get(name);
    case 'cookie':
      return (facts) => cookieValue(facts.headers.get('cookie'), name);
  }
}

/**
 * Weighted rendezvous (highest random weight) hashing: each target scores every key, the best
 * score wins, the next best is the retry. Adding or removing one of N targets moves only the
 * keys it wins or won, about 1/N. A target's seed is its origin, not its position, so
 * reordering the list moves nothing. O(N) per pick, no table: right for a handful of upstreams.
 */
function rendezvous(targets: readonly CompiledTarget[], key: KeyOf, fallback: Picker): Picker {
  const seeds = targets.map((t) => fnv1a(t.origin));
  const weights = targets.map((t) => t.weight);
  return {
    pick(facts, eligible) {
      const k = key(facts);
      if (k === null) return fallback.pick(facts, eligible);
      const h = fnv1a(k);
      let best = -1;
      let bestScore = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < seeds.length; i++) {
        if (!eligible(i)) continue;
        // A uniform u in (0, 1) per (key, target); -w / ln(u) makes the win odds w / sum(w).
        const u = (mix(h ^ (seeds[i] as number)) + 0.5) / 4294967296;
        const score = -(weights[i] as number) / Math.log(u);
        if (score > bestScore) {
          bestScore = score;
          best = i;
        }
      }
      return best;
    },
  };
}

/**
 * Sticky sessions: the cookie names a target by an HMAC of the route's secret and the target's
 * origin, so a client can only return to an upstream it was sent to, never name one. Values are
 * computed once per target; a request's cookie is a map lookup.
 */
function sticky(policy: Extract<CompiledPolicy, { kind: 'sticky' }>, targets: readonly CompiledTarget[], fallback: Picker, processSecret?: string): Picker {
  const secret = policy.secret ?? processSecret ?? PROCESS_SECRET;
  const values = targets.map((t) => createHmac('sha256', secret).update(t.origin).digest('base64url').slice(0, 22));
  const byValue = new Map(values.map((value, i) => [value, i]));
  const attributes = `; Path=${policy.path}; HttpOnly; SameSite=Lax${policy.maxAgeSeconds === null ? '' : `; Max-Age=${policy.maxAgeSeconds}`}`;
  const cookie = policy.cookie;
  const pinned = (facts: PickFacts): number => {
    const value = cookieValue(facts.headers.get('cookie'), cookie);
    return value === null ? -1 : (byValue.get(value) ?? -1);
  };
  return {
    pick(facts, eligible) {
      const i = pinned(facts);
      return i >= 0 && eligible(i) ? i : fallback.pick(facts, eligible);
    },
    cookieFor: (facts, index) => (pinned(facts) === index ? null : `${cookie}=${values[index]}${attributes}`),
  };
}

/** One random key per process for sticky cookies without a secret of their own. */
const PROCESS_SECRET = randomBytes(32).toString('base64');

// ---- helpers -----------------------------------------------------------------------------------

/** FNV-1a over UTF-16 code units: fast, and stable across runtimes and restarts. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** murmur3's finaliser: every input bit reaches every output bit. */
function mix(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
