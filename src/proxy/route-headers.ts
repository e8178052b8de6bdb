// The route's own answer headers: CORS (./cors.ts, a preflight answered here) inside, security
// headers (./security-headers.ts) around it, so they go on the preflight's 204 too. One
// middleware for both, so a route with neither pays one Hono dispatch and two null checks.
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { addSecurityHeaders } from './security-headers.ts';

export const routeHeaders = (): MiddlewareHandler<AppEnv> =>
  // Not async for routes without either setting: it hands Hono next()'s promise as it is.
  function routeHeaders(c, next) {
    const { cors, securityHeaders } = c.get('route');
    const answered = cors === null ? next() : cors.handle(c, next);
    return securityHeaders === null ? answered : addSecurityHeaders(c, answered, securityHeaders);
  };
