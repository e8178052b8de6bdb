// The live side of rate limits: each route's counts, and the Redis client, kept outside the
// compiled config (like balancer/state.ts) so the coming live reload keeps a route's counts
// while its key and rule are unchanged, and so metrics can read them.
import type { CompiledConfig, CompiledRateLimit, CompiledRoute } from '../config/compile.ts';
import type { Logger } from '../log/logger.ts';
import { MemoryRateLimiter, type RateLimiter } from './rate-limit.ts';
import { type RedisSettings, RedisStore } from './redis-store.ts';

export interface RateLimitersOptions {
  readonly logger: Logger;
  readonly now?: () => number;
}

interface Entry {
  readonly signature: string;
  readonly limiter: RateLimiter;
}

export class RateLimiters {
  private readonly byRoute = new WeakMap<CompiledRoute, RateLimiter>();
  private byKey = new Map<string, Entry>();
  private redis: RedisStore | null = null;

  constructor(private readonly options: RateLimitersOptions) {}

  /** The limiter of `route` (which has a `rateLimit`); one of a config not synced yet is made now. */
  for(route: CompiledRoute, config: CompiledConfig): RateLimiter {
    const known = this.byRoute.get(route);
    if (known !== undefined) return known;
    const entry = this.entry(route, route.rateLimit as CompiledRateLimit, config.redis);
    this.byKey.set(route.key, entry);
    this.byRoute.set(route, entry.limiter);
    return entry.limiter;
  }

  /** Builds the limiters of `config`, keeping the counts of routes whose key and rule are unchanged. */
  sync(config: CompiledConfig): void {
    const next = new Map<string, Entry>();
    // Any change to the Redis settings (URL, timeout, prefix) makes a new client; its limits are
    // rebuilt too, since their signatures include the settings.
    if (this.redis !== null && JSON.stringify(config.redis) !== JSON.stringify(this.redis.settings)) {
      this.redis.stop();
      this.redis = null;
    }
    for (const route of config.routes) {
      if (route.rateLimit === null) continue;
      const entry = this.entry(route, route.rateLimit, config.redis);
      next.set(route.key, entry);
      this.byRoute.set(route, entry.limiter);
    }
    this.byKey = next;
  }

  /** Resolves once the Redis store (if any limit uses one) is connected, or after `ms`. */
  ready(ms: number): Promise<void> {
    return this.redis === null ? Promise.resolve() : this.redis.ready(ms);
  }

  /** Closes the Redis connection. */
  stop(): void {
    this.redis?.stop();
    this.redis = null;
  }

  private entry(route: CompiledRoute, limit: CompiledRateLimit, redis: RedisSettings | null): Entry {
    const old = this.byKey.get(route.key);
    if (old !== undefined && old.signature === limit.signature) return old;
    let limiter: RateLimiter;
    if (limit.store === 'redis') {
      // The schema refuses store: 'redis' without redis.
      this.redis ??= new RedisStore(redis as RedisSettings, this.options.logger, this.options.now);
      limiter = this.redis.limiter(route.key, limit, limit.onStoreDown);
    } else {
      limiter = new MemoryRateLimiter(limit, undefined, this.options.now);
    }
    return { signature: limit.signature, limiter };
  }
}
