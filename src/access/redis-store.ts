// The Redis side of `store: 'redis'` rate limits (issue 11): one ioredis client per process,
// one Lua script per request, so every switchyard instance sharing the server counts against one
// log per key, atomically. The script reads Redis's own clock (TIME), so instances whose clocks
// differ still agree on the window.
//
// No request waits on a Redis that is away: the offline queue is off (a command fails at once
// while disconnected) and every command has `commandTimeoutMs`. ioredis reconnects by itself; the
// store logs the outage once per interval and its end once.
import type { Redis } from 'ioredis';
import type { Logger } from '../log/logger.ts';
import type { RateDecision, RateLimiter, RateRule } from './rate-limit.ts';

/** The top-level `redis`, defaults applied. */
export interface RedisSettings {
  readonly url: string;
  readonly commandTimeoutMs: number;
  readonly keyPrefix: string;
}

// KEYS[1]: the key's log (a sorted set of request times), KEYS[2]: its bucket (a hash).
// ARGV: window ms, requests, burst (0: none), a member unique to this request.
// Returns {allowed (0/1), requests in the window after this one, ms until the oldest leaves}.
const SLIDING_LOG = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local oldest = now
if count > 0 then oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]) end
if count >= limit then return {0, count, oldest + window - now} end
if burst > 0 then
  local b = redis.call('HMGET', KEYS[2], 'tokens', 'at')
  local tokens = tonumber(b[1]) or burst
  local at = tonumber(b[2]) or now
  tokens = math.min(burst, tokens + (now - at) * limit / window)
  if tokens < 1 then
    redis.call('HSET', KEYS[2], 'tokens', tostring(tokens), 'at', now)
    redis.call('PEXPIRE', KEYS[2], window)
    return {0, count, math.ceil((1 - tokens) * window / limit)}
  end
  redis.call('HSET', KEYS[2], 'tokens', tostring(tokens - 1), 'at', now)
  redis.call('PEXPIRE', KEYS[2], window)
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return {1, count + 1, oldest + window - now}
`;

/** How often an outage is logged while it lasts. */
const DOWN_LOG_INTERVAL_MS = 10_000;

type SlidingLogCommand = (log: string, bucket: string, windowMs: number, limit: number, burst: number, member: string) => Promise<[number, number, number]>;

export class RedisStore {
  // Loaded on first use: only a config with a Redis store pays for ioredis. Importing it at
  // start-up made Deno's 1 GiB upload peak at +210 MiB RSS instead of +115 MiB (the streaming
  // e2e's 200 MiB bound), on routes that never touch Redis.
  private client: Redis | null = null;
  private slide: SlidingLogCommand | null = null;
  private readonly loaded: Promise<void>;
  private stopped = false;
  /** Makes each request's member unique across instances (the log is a set). */
  private readonly instance = Math.random().toString(36).slice(2, 10);
  private seq = 0;
  private downSince = 0;
  private lastDownLog = 0;
  private failedSinceLog = 0;

  constructor(
    readonly settings: RedisSettings,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.loaded = this.connect().catch((error: Error) => this.failed(error));
  }

  private async connect(): Promise<void> {
    const { Redis } = await import('ioredis');
    if (this.stopped) return;
    const settings = this.settings;
    const client = new Redis(settings.url, {
      keyPrefix: settings.keyPrefix,
      commandTimeout: settings.commandTimeoutMs,
      connectTimeout: 1_000,
      enableOfflineQueue: false,
      // A command in flight when the connection drops fails instead of waiting for a reconnect.
      maxRetriesPerRequest: 0,
      // Back off to one attempt per second while Redis is away; never give up.
      retryStrategy: (attempt) => Math.min(attempt * 100, 1_000),
      lazyConnect: false,
    });
    // Without a listener ioredis prints every connection error itself.
    client.on('error', (error: Error) => this.failed(error));
    client.on('ready', () => {
      if (this.downSince !== 0) this.recovered();
    });
    client.defineCommand('switchyardSlidingLog', { numberOfKeys: 2, lua: SLIDING_LOG });
    const withCommand = client as unknown as { switchyardSlidingLog: SlidingLogCommand };
    this.slide = withCommand.switchyardSlidingLog.bind(client);
    this.client = client;
  }

  /** A limiter for one route's rule, counting under `prefix` (the route's key). */
  limiter(prefix: string, rule: RateRule, onStoreDown: 'allow' | 'deny'): RateLimiter {
    const windowMs = rule.windowSeconds * 1000;
    const limit = rule.requests;
    const burst = rule.burst ?? 0;
    const allowed = onStoreDown === 'allow';
    const down: RateDecision = { allowed, limit, remaining: allowed ? limit : 0, resetSeconds: 1, storeDown: true };
    const notLoaded = () => {
      this.failed(new Error('the Redis client is still loading'));
      return Promise.resolve(down);
    };
    return {
      hit: (key) =>
        this.slide === null
          ? notLoaded()
          : this.slide(`rl:${prefix}|${key}`, `rb:${prefix}|${key}`, windowMs, limit, burst, `${this.instance}:${this.seq++}`).then(
              ([ok, count, resetMs]): RateDecision => {
                if (this.downSince !== 0) this.recovered();
                return { allowed: ok === 1, limit, remaining: Math.max(0, limit - count), resetSeconds: Math.max(ok === 1 ? 0 : 1, Math.ceil(resetMs / 1000)) };
              },
              (error: Error) => {
                this.failed(error);
                return down;
              },
            ),
    };
  }

  /**
   * Resolves once connected, or after `ms` either way: the process waits this long for Redis
   * before it listens, so its first requests are counted rather than decided by `onStoreDown`
   * (Deno connected after the first 8 of 1,000 requests had passed uncounted).
   */
  async ready(ms: number): Promise<void> {
    const until = Date.now() + ms;
    await Promise.race([this.loaded, new Promise((resolve) => setTimeout(resolve, ms))]);
    const client = this.client;
    if (client === null || client.status === 'ready') return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        client.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, until - Date.now()));
      client.once('ready', done);
    });
  }

  /** Ready to count (for tests and the coming metrics). */
  get up(): boolean {
    return this.client?.status === 'ready';
  }

  stop(): void {
    this.stopped = true;
    this.client?.disconnect();
  }

  /** Notes a failure; logs the outage at its start and then once per interval. */
  private failed(error: Error): void {
    const now = this.now();
    if (this.downSince === 0) this.downSince = now;
    this.failedSinceLog++;
    if (now - this.lastDownLog < DOWN_LOG_INTERVAL_MS) return;
    this.lastDownLog = now;
    this.logger.warn('rate limit store down', {
      redis: redactedUrl(this.settings.url),
      error: error.message,
      since_ms: now - this.downSince,
      failures: this.failedSinceLog,
    });
    this.failedSinceLog = 0;
  }

  private recovered(): void {
    this.logger.info('rate limit store back', { redis: redactedUrl(this.settings.url), down_ms: this.now() - this.downSince });
    this.downSince = 0;
    this.lastDownLog = 0;
    this.failedSinceLog = 0;
  }
}

/** The URL without its password, for logs. */
export function redactedUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password !== '') parsed.password = '***';
  return parsed.toString();
}
