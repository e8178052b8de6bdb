// Picks the route for a request from the compiled table of the request's config snapshot; a
// miss, and a target refused where a path decides the route, are answered here.
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { clientError } from '../proxy/errors.ts';
import { refuse } from '../proxy/respond.ts';
import { canonicalTarget, routingTarget } from './path.ts';

/**
 * A host with no route (and no `*` catch-all) gets 421 Misdirected Request (RFC 9110 §15.5.20):
 * this server is not authoritative for it, and nothing is forwarded. On a host where a path
 * decides the route, a target upstreams could decode differently gets 400, and the canonical
 * target is the one forwarded, so rules and upstream read the same path (docs/paths.md).
 */
export const routeByHost = (): MiddlewareHandler<AppEnv> =>
  async function routeByHost(c, next) {
    const host = c.get('host');
    const routes = c.get('config').table.forHost(host);
    if (routes === undefined) return refuse(c, clientError('no-route', `misdirected request: no route for host ${host}`));
    const target = c.get('target');
    let routeTarget: string;
    if (routes.pathsDecide) {
      const canonical = canonicalTarget(target);
      if (typeof canonical !== 'string') return refuse(c, clientError('bad-request', `bad request: ${canonical.reason}`));
      if (canonical !== target) c.set('target', canonical);
      routeTarget = canonical;
    } else {
      routeTarget = routingTarget(target);
    }
    const route = routes.match(routeTarget);
    if (route === undefined) return refuse(c, clientError('no-route', `misdirected request: no route for host ${host}`));
    c.set('route', route);
    c.set('routeTarget', routeTarget);
    await next();
  };
