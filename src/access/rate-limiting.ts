// A route's `rateLimit` as a middleware (the counts live in access/limiters.ts): the key is the
// client identity, a request field's value, a verified JWT claim's value, or the route. A refused
// request gets 429 with Retry-After and the RateLimit-* fields (draft-ietf-httpapi-ratelimit-
// headers) and is not forwarded. It runs twice in the chain: before auth for every key but a
// claim (a password guesser is refused before any bcrypt), and after auth for claim keys.
import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import type { CompiledRateLimit } from '../config/compile.ts';
import { clientError, ProxyError } from '../proxy/errors.ts';
import { refuse } from '../proxy/respond.ts';
import type { RateLimiters } from './limiters.ts';
import type { RateDecision } from './rate-limit.ts';

export interface RateLimitingDeps {
  readonly limiters: RateLimiters;
  /** 'claims': the instance after `authenticate`, for `{ claim }` keys only. */
  readonly phase: 'before-auth' | 'claims';
}

export const rateLimiting = ({ limiters, phase }: RateLimitingDeps): MiddlewareHandler<AppEnv> => {
  const claims = phase === 'claims';
  // Not async: a route without a limit (or a memory limit with room) hands Hono next()'s promise as it is.
  return function rateLimiting(c, next) {
    const route = c.get('route');
    const limit = route.rateLimit;
    if (limit === null || (limit.claim !== null) !== claims) return next();
    const decision = limiters.for(route, c.get('config')).hit(keyOf(c, limit));
    if (!(decision instanceof Promise)) return decision.allowed ? next() : Promise.resolve(refused(c, decision));
    return decision.then(async (d) => {
      if (!d.allowed) return refused(c, d);
      await next();
      return undefined;
    });
  };
};

/** The request's key under `limit`; requests without the field or claim count as their client. */
function keyOf(c: Context<AppEnv>, limit: CompiledRateLimit): string {
  if (limit.perRoute) return '';
  // Prefixed apart: no field or claim value can pose as a client address.
  if (limit.header !== null) {
    const value = c.req.raw.headers.get(limit.header);
    if (value !== null) return `h:${value}`;
  } else if (limit.claim !== null) {
    const value = c.get('claims')?.[limit.claim];
    if (value !== undefined && value !== null) return `c:${typeof value === 'string' ? value : JSON.stringify(value)}`;
  }
  return `ip:${c.get('facts').client}`;
}

/** The answer to a request the limit (or a store down with `onStoreDown: 'deny'`) refuses. */
function refused(c: Context<AppEnv>, decision: RateDecision): Response {
  if (decision.storeDown === true) {
    // Fail closed: the proxy's trouble, not the client's rate, so 503 rather than 429.
    return refuse(c, new ProxyError('limit-store-down', 'internal', false, 'rate limit store unavailable', { retryAfterSeconds: 1 }));
  }
  const answer = refuse(c, clientError('rate-limited', 'too many requests'));
  answer.headers.set('retry-after', String(decision.resetSeconds));
  answer.headers.set('ratelimit-limit', String(decision.limit));
  answer.headers.set('ratelimit-remaining', '0');
  answer.headers.set('ratelimit-reset', String(decision.resetSeconds));
  return answer;
}
