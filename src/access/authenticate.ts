// A route's `auth` (access/auth.ts) as a middleware: a request without valid credentials gets
// 401 with the route's challenges and is not forwarded; a failure with credentials is logged
// (user name and reason, never the password or token). Routes without `auth` pass through.
import type { Context, MiddlewareHandler, Next } from 'hono';
import type { AppEnv } from '../app-env.ts';
import type { Logger } from '../log/logger.ts';
import { clientError } from '../proxy/errors.ts';
import { refuse } from '../proxy/respond.ts';
import type { CompiledAuth } from './auth.ts';

export const authenticate = ({ logger }: { logger: Logger }): MiddlewareHandler<AppEnv> =>
  // Not async for routes without auth: it hands Hono next()'s promise as it is.
  function authenticate(c, next) {
    const auth = c.get('route').auth;
    return auth === null ? next() : checked(c, next, auth, logger);
  };

async function checked(c: Context<AppEnv>, next: Next, auth: CompiledAuth, logger: Logger): Promise<Response | undefined> {
  const outcome = await auth.check(c.req.raw.headers);
  if (outcome.ok) {
    await next();
    return undefined;
  }
  // A request that brought no credentials at all is the usual first leg of a challenge: not logged.
  if (outcome.user !== undefined || !outcome.reason.startsWith('no ')) {
    logger.warn('auth failed', {
      route: c.get('route').key,
      client: c.get('facts').client,
      user: outcome.user ?? null,
      reason: outcome.reason,
      request_id: c.get('access')?.id,
    });
  }
  const answer = refuse(c, clientError('unauthorized', 'unauthorized'));
  for (const challenge of auth.challenges) answer.headers.append('www-authenticate', challenge);
  return answer;
}
