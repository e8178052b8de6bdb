// Picks the route for a request from the compiled table of the request's config snapshot; a
// miss is answered here.
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { clientError } from '../proxy/errors.ts';
import { refuse } from '../proxy/respond.ts';
import { routingTarget } from './path.ts';

/**
 * A host with no route (and no `*` catch-all) gets 421 Misdirected Request (RFC 9110 §15.5.20):
 * this server is not authoritative for it, and nothing is forwarded.
 */
export const routeByHost = (): MiddlewareHandler<AppEnv> =>
  async function routeByHost(c, next) {
    const host = c.get('host');
    const routeTarget = routingTarget(c.get('target'));
    const route = c.get('config').table.match(host, routeTarget);
    if (route === undefined) return refuse(c, clientError('no-route', `misdirected request: no route for host ${host}`));
    c.set('route', route);
    c.set('routeTarget', routeTarget);
    await next();
  };
