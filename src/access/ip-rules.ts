// A route's `allow` / `deny` (issue 11): the request's client (RequestFacts.client, one
// decision per request, proxy/client.ts) against the route's compiled networks; refused with
// 403 before anything else of the route runs (after CORS: a preflight carries no client rule).
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { clientError } from '../proxy/errors.ts';
import { refuse } from '../proxy/respond.ts';

export const ipRules = (): MiddlewareHandler<AppEnv> =>
  // Not async for routes without rules: it hands Hono next()'s promise as it is.
  function ipRules(c, next) {
    const refuses = c.get('route').refusesClient;
    if (refuses === null || !refuses(c.get('facts').client)) return next();
    return Promise.resolve(refuse(c, clientError('forbidden', 'forbidden')));
  };
