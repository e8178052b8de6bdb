// What a TLS listener changes for routes: plain-HTTP requests redirected to https:// (308, the
// path and query byte for byte, ACME's HTTP-01 challenges excepted), and HSTS on HTTPS answers.
// Both are per-route values compiled at load (`route.redirectHttp`, `route.hsts`).
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';

/** RFC 8555 §8.3: HTTP-01 challenges are fetched over plain HTTP on port 80, never redirected. */
const ACME_CHALLENGE = '/.well-known/acme-challenge/';

export interface HttpsPolicyOptions {
  /** The TLS listener's bound port (known once it listens), or null without one. */
  readonly httpsPort: () => number | null;
}

/** `https://host[:port]/path?query` for the same request. */
export function httpsLocation(host: string, port: number, target: string): string {
  return `https://${host}${port === 443 ? '' : `:${port}`}${target}`;
}

export const httpsPolicy = ({ httpsPort }: HttpsPolicyOptions): MiddlewareHandler<AppEnv> =>
  // Not async for routes without either setting: it hands Hono next()'s promise as it is.
  function httpsPolicy(c, next) {
    const route = c.get('route');
    const proto = c.get('facts').conn.proto;
    if (proto === 'http') {
      if (!route.redirectHttp) return next();
      const target = c.get('target');
      const port = httpsPort();
      if (port === null || target.startsWith(ACME_CHALLENGE)) return next();
      const location = httpsLocation(c.get('host'), port, target);
      return Promise.resolve(new Response(`redirecting to ${location}\n`, { status: 308, headers: { location, 'content-type': 'text/plain; charset=utf-8' } }));
    }
    const hsts = route.hsts;
    if (hsts === null) return next();
    return next().then(() => {
      // RFC 6797 §7.2: sent on secure transport only; ours replaces an upstream's.
      try {
        c.res.headers.set('strict-transport-security', hsts);
      } catch {
        // A Response with immutable headers (from a fetch): copy it once.
        const res = new Response(c.res.body, c.res);
        res.headers.set('strict-transport-security', hsts);
        c.res = res;
      }
    });
  };
