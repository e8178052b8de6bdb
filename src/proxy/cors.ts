// CORS per route (`route.cors`, compiled once at load): a preflight is answered here by Hono's
// `cors` middleware and never forwarded; every other request is forwarded and its answer gets
// the route's CORS headers, which replace the upstream's own. It does not check WebSocket
// handshakes' Origin (browsers apply no CORS to them).
import type { MiddlewareHandler } from 'hono';
import { cors as honoCors } from 'hono/cors';
import type { AppEnv } from '../app-env.ts';
import type { Cors } from '../config/types.ts';
import { editHeaders } from './security-headers.ts';

/** `cors.allowMethods` when not given (the methods a page can send; GET, HEAD and POST need no listing). */
export const CORS_DEFAULT_METHODS: readonly string[] = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH'];

/** The CORS headers a browser reads on an actual (non-preflight) answer: the route's, never the upstream's. */
const ANSWER_FIELDS = ['access-control-allow-origin', 'access-control-allow-credentials', 'access-control-expose-headers'] as const;

export interface CompiledCors {
  /** `"*"`, or the origins allowed, exactly as browsers send them. */
  readonly origins: '*' | ReadonlySet<string>;
  /** The route's middleware (run by routeHeaders, ./route-headers.ts). */
  readonly handle: MiddlewareHandler<AppEnv>;
}

/** `Vary: Origin` appended unless the field already names it (or `*`). */
function varyOrigin(headers: Headers): void {
  const vary = headers.get('vary');
  if (vary === null) headers.set('vary', 'Origin');
  else if (!/(?:^|,)\s*(?:origin|\*)\s*(?:,|$)/i.test(vary)) headers.set('vary', `${vary}, Origin`);
}

/** The route's `cors` as one handler, with Hono's middleware for preflights built here, once. */
export function compileCors(options: Cors): CompiledCors {
  const star = options.origin === '*';
  const origins: '*' | ReadonlySet<string> = star ? '*' : new Set(typeof options.origin === 'string' ? [options.origin] : options.origin);
  const allow = (origin: string): string | null => (star ? '*' : (origins as ReadonlySet<string>).has(origin) ? origin : null);
  const credentials = options.credentials ?? false;
  const expose = options.exposeHeaders?.length ? options.exposeHeaders.join(',') : null;
  const preflight = honoCors({
    // The string `*` keeps Hono from adding `Vary: Origin` where the answer does not vary.
    origin: star ? '*' : allow,
    allowMethods: [...(options.allowMethods ?? CORS_DEFAULT_METHODS)],
    // Hono reflects the preflight's Access-Control-Request-Headers when this is undefined.
    allowHeaders: options.allowHeaders,
    exposeHeaders: options.exposeHeaders,
    maxAge: options.maxAgeSeconds,
    credentials,
  });

  // Hono's cors also sends Access-Control-Allow-Credentials and -Expose-Headers whatever the
  // origin; so do actual answers, so both kinds of answer read the same.
  function setAnswerFields(headers: Headers, allowed: string | null): void {
    for (const name of ANSWER_FIELDS) headers.delete(name);
    if (allowed !== null) headers.set('access-control-allow-origin', allowed);
    if (credentials) headers.set('access-control-allow-credentials', 'true');
    if (expose !== null) headers.set('access-control-expose-headers', expose);
    if (!star) varyOrigin(headers);
  }

  return {
    origins,
    handle(c, next) {
      const headers = c.req.raw.headers;
      const origin = headers.get('origin');
      // Fetch §4.8: a preflight is an OPTIONS with Origin and Access-Control-Request-Method. Any
      // other OPTIONS (the actual request after a preflight, `OPTIONS *`) is forwarded, and the
      // exact method decides: Bun and Node read a lowercase `options` as OPTIONS, Deno does not.
      if (c.get('facts').method === 'OPTIONS' && origin !== null && headers.has('access-control-request-method')) return preflight(c, next);
      const allowed = origin === null ? (star ? '*' : null) : allow(origin);
      return next().then(() => editHeaders(c, setAnswerFields, allowed));
    },
  };
}
