// A route's `rateLimit` (issue 11): at most `requests` in any window of `windowSeconds` per key,
// a sliding log. Fixed windows (and rate-limiter-flexible's limiters, which are fixed-window)
// let up to twice the limit through around a window's edge; a token bucket lets the bucket plus
// its refill through in one window. The log keeps each key's last `requests` timestamps in a
// ring, grown on demand, in an LRU bounded by bytes (lru-cache), so a flood of distinct keys
// evicts the least recently seen rather than growing without limit.
import { LRUCache } from 'lru-cache';

/** What the limiter decided for one request. */
export interface RateDecision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  /** Seconds until the oldest request in the window leaves it (RateLimit-Reset), at least 1 when refused. */
  readonly resetSeconds: number;
  /** Set when the store could not answer and `onStoreDown` decided (no count was made). */
  readonly storeDown?: true;
}

/** What one route's limiter counts against, whatever holds the counts. */
export interface RateRule {
  /** Requests in any window. */
  readonly requests: number;
  readonly windowSeconds: number;
  /** The token bucket's size on top of the window, or null for the window alone. */
  readonly burst: number | null;
}

/** A limiter: the memory one answers at once, the Redis one after a round trip. */
export interface RateLimiter {
  hit(key: string): RateDecision | Promise<RateDecision>;
}

/** A key's log: timestamps (ms) in a ring, oldest at `start`; and its bucket, when the rule has one. */
class Log {
  times: Float64Array;
  start = 0;
  count = 0;
  tokens: number;
  tokensAt: number;
  constructor(capacity: number, burst: number, now: number) {
    this.times = new Float64Array(capacity);
    this.tokens = burst;
    this.tokensAt = now;
  }
}

/**
 * Bytes of one key's entry besides its ring and key text, for the LRU's size: the Log object, the
 * Float64Array's own header, the LRU's slots. Measured (heap used per entry, 200,000 keys of a
 * 100-request rule): 476 bytes on Node, 347 on Bun, of which ring and key are ~90; 200 here
 * before undercounted Node by 1.7x.
 */
const ENTRY_OVERHEAD_BYTES = 400;
/** The memory store's bound on rings and entries together. */
export const MEMORY_STORE_BYTES = 64 * 1024 * 1024;

export class MemoryRateLimiter implements RateLimiter {
  readonly limit: number;
  private readonly logs: LRUCache<string, Log>;
  private readonly windowMs: number;
  private readonly burst: number;
  /** Tokens per ms: `requests` per window. */
  private readonly refill: number;
  constructor(
    rule: RateRule,
    maxBytes = MEMORY_STORE_BYTES,
    private readonly now: () => number = Date.now,
  ) {
    this.limit = rule.requests;
    this.windowMs = rule.windowSeconds * 1000;
    this.burst = rule.burst ?? 0;
    this.refill = rule.requests / this.windowMs;
    this.logs = new LRUCache<string, Log>({ maxSize: maxBytes, sizeCalculation: (log, key) => log.times.byteLength + key.length * 2 + ENTRY_OVERHEAD_BYTES });
  }

  /** Counts a request for `key` if the window (and the bucket) has room, and says so. */
  hit(key: string): RateDecision {
    const now = this.now();
    const limit = this.limit;
    let log = this.logs.get(key);
    if (log === undefined) {
      log = new Log(Math.min(limit, 8), this.burst, now);
      this.logs.set(key, log);
    }
    // Requests older than the window leave it.
    const times = log.times;
    const since = now - this.windowMs;
    while (log.count > 0 && (times[log.start] as number) <= since) {
      log.start = (log.start + 1) % times.length;
      log.count--;
    }
    if (log.count >= limit) {
      const oldest = times[log.start] as number;
      return { allowed: false, limit, remaining: 0, resetSeconds: Math.max(1, Math.ceil((oldest + this.windowMs - now) / 1000)) };
    }
    if (this.burst > 0) {
      const tokens = Math.min(this.burst, log.tokens + (now - log.tokensAt) * this.refill);
      log.tokensAt = now;
      if (tokens < 1) {
        log.tokens = tokens;
        // The window has room; the bucket refills its next token in this long.
        return { allowed: false, limit, remaining: 0, resetSeconds: Math.max(1, Math.ceil((1 - tokens) / this.refill / 1000)) };
      }
      log.tokens = tokens - 1;
    }
    if (log.count === times.length) this.grow(key, log);
    const ring = log.times;
    ring[(log.start + log.count) % ring.length] = now;
    log.count++;
    const oldest = ring[log.start] as number;
    return { allowed: true, limit, remaining: limit - log.count, resetSeconds: Math.max(0, Math.ceil((oldest + this.windowMs - now) / 1000)) };
  }

  /** Keys held now (for tests and the coming metrics). */
  get size(): number {
    return this.logs.size;
  }

  /** Bytes the LRU counts for its entries (for tests and the coming metrics). */
  get bytes(): number {
    return this.logs.calculatedSize;
  }

  /** Doubles a full ring (up to `limit`), oldest first, and tells the LRU its new size. */
  private grow(key: string, log: Log): void {
    const old = log.times;
    const next = new Float64Array(Math.min(this.limit, old.length * 2));
    for (let i = 0; i < log.count; i++) next[i] = old[(log.start + i) % old.length] as number;
    log.times = next;
    log.start = 0;
    this.logs.set(key, log); // re-measured
  }
}
