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
}

/** A key's log: timestamps (ms) in a ring, oldest at `start`. */
class Log {
  times: Float64Array;
  start = 0;
  count = 0;
  constructor(capacity: number) {
    this.times = new Float64Array(capacity);
  }
}

/** Bytes of one key's entry besides its ring, for the LRU's size (the key string, the Log, the LRU's own slot). */
const ENTRY_OVERHEAD_BYTES = 200;
/** The memory store's bound on rings and entries together. */
export const MEMORY_STORE_BYTES = 64 * 1024 * 1024;

export class MemoryRateLimiter {
  private readonly logs: LRUCache<string, Log>;
  private readonly windowMs: number;
  constructor(
    readonly limit: number,
    windowSeconds: number,
    maxBytes = MEMORY_STORE_BYTES,
    private readonly now: () => number = Date.now,
  ) {
    this.windowMs = windowSeconds * 1000;
    this.logs = new LRUCache<string, Log>({ maxSize: maxBytes, sizeCalculation: (log, key) => log.times.byteLength + key.length * 2 + ENTRY_OVERHEAD_BYTES });
  }

  /** Counts a request for `key` if the window has room, and says so. */
  hit(key: string): RateDecision {
    const now = this.now();
    const limit = this.limit;
    let log = this.logs.get(key);
    if (log === undefined) {
      log = new Log(Math.min(limit, 8));
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
