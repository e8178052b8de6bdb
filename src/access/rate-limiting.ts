// A route's `rateLimit` as a middleware (access/rate-limit.ts counts): the key is the client
// identity, a request field's value, or the route; a refused request gets 429 with Retry-After
// and the RateLimit-* fields (draft-ietf-httpapi-ratelimit-headers) and is not forwarded.
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { clientError } from '../proxy/errors.ts';
import { refuse } from '../proxy/respond.ts';

export const rateLimiting = (): MiddlewareHandler<AppEnv> =>
  // Not async: a route without a limit hands Hono next()'s promise as it is.
  function rateLimiting(c, next) {
    const limit = c.get('route').rateLimit;
    if (limit === null) return next();
    let key = '';
    if (!limit.perRoute) {
      // A request without the field counts as its client (prefixed apart: no field value can pose as one).
      const value = limit.header === null ? null : c.req.raw.headers.get(limit.header);
      key = value === null ? `ip:${c.get('facts').client}` : `h:${value}`;
    }
    const decision = limit.limiter.hit(key);
    if (decision.allowed) return next();
    const answer = refuse(c, clientError('rate-limited', 'too many requests'));
    answer.headers.set('retry-after', String(decision.resetSeconds));
    answer.headers.set('ratelimit-limit', String(decision.limit));
    answer.headers.set('ratelimit-remaining', '0');
    answer.headers.set('ratelimit-reset', String(decision.resetSeconds));
    return Promise.resolve(answer);
  };
