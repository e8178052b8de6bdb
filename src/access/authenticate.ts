// A route's `auth` (access/auth.ts) as a middleware: a request without valid credentials gets
// 401 with the route's challenges and is not forwarded; a failure with credentials is logged
// (user name and reason, never the password or token). Routes without `auth` pass through.
import type { Context, MiddlewareHandler, Next } from 'hono';
import type { AppEnv } from '../app-env.ts';
import type { Logger } from '../log/logger.ts';
import { clientError, ProxyError } from '../proxy/errors.ts';
import { refuse } from '../proxy/respond.ts';
import type { Transport } from '../transport/types.ts';
import type { AuthContext, CompiledAuth } from './auth.ts';

export const authenticate = ({ logger, transport }: { logger: Logger; transport: Transport }): MiddlewareHandler<AppEnv> =>
  // Not async for routes without auth: it hands Hono next()'s promise as it is.
  function authenticate(c, next) {
    const auth = c.get('route').auth;
    return auth === null ? next() : checked(c, next, auth, logger, transport);
  };

async function checked(c: Context<AppEnv>, next: Next, auth: CompiledAuth, logger: Logger, transport: Transport): Promise<Response | undefined> {
  const facts = c.get('facts');
  const raw = c.req.raw;
  const context: AuthContext = {
    method: facts.method,
    target: c.get('target'),
    host: raw.headers.get('host') ?? '',
    proto: facts.conn.proto,
    client: facts.client,
    signal: raw.signal,
    transport,
  };
  const outcome = await auth.check(raw.headers, context);
  if (outcome.ok) {
    if (outcome.fields !== undefined && outcome.fields.length > 0) c.set('authFields', outcome.fields);
    if (outcome.claims !== undefined) c.set('claims', outcome.claims);
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
  if (outcome.unavailable !== undefined) {
    const kind = outcome.unavailable === 504 ? 'timeout' : 'connect';
    return refuse(c, new ProxyError(kind, 'upstream', false, outcome.reason));
  }
  if (outcome.response !== undefined) {
    // The auth service's own answer (a 401 with its challenge, a 302 to a login page, a 403).
    const access = c.get('access');
    if (access !== undefined) access.error = outcome.reason;
    return outcome.response;
  }
  const answer = refuse(c, clientError('unauthorized', 'unauthorized'));
  for (const challenge of auth.challenges) answer.headers.append('www-authenticate', challenge);
  return answer;
}
