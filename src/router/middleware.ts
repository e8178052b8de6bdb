// Picks the route for a request from the compiled table; a miss is answered here.
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import type { CompiledRoute } from '../config/compile.ts';
import { plain } from '../proxy/respond.ts';
import { routingTarget } from './path.ts';
import type { RouteTable } from './table.ts';

/**
 * A host with no route (and no `*` catch-all) gets 421 Misdirected Request (RFC 9110 §15.5.20):
 * this server is not authoritative for it, and nothing is forwarded.
 */
export const routeByHost = (table: RouteTable<CompiledRoute>): MiddlewareHandler<AppEnv> =>
  async function routeByHost(c, next) {
    const routeTarget = routingTarget(c.get('target'));
    const route = table.match(c.get('host'), routeTarget);
    if (route === undefined) return plain(421, `misdirected request: no route for host ${c.get('host')}`);
    c.set('route', route);
    c.set('routeTarget', routeTarget);
    await next();
  };
