// The switchyard Hono app. The middleware order lives here and only here:
//   1. requestFacts  the request's config snapshot; exact method, raw target, version, connection
//   2. accessLog     request id, timing, one AccessEntry per request to its subscribers (the log
//                    line is one); outermost of the answering middlewares, so it sees every answer
//   3. guardRequest  HTTP/1.x, Host present and sane, target authority agrees with Host -> else
//                    400; target length -> 414
//   4. routeByHost   the snapshot's host table + path prefixes -> else 421; where a path decides
//                    the route, the canonical target (forwarded so) -> else 400 (docs/paths.md)
//   5. httpsPolicy   plain HTTP -> 308 to https:// where the route says so; HSTS on HTTPS answers
//   6. routeHeaders  the route's CORS: a preflight answered here (204, never forwarded), other
//                    answers get its Access-Control-* and Vary: Origin; then its security headers
//                    (X-Content-Type-Options, X-Frame-Options, Referrer-Policy, CSP) on every answer
//   7. ipRules      the route's allow / deny on the client (RequestFacts.client) -> else 403
//   8. rateLimiting the route's rateLimit per client / field / route -> else 429 (before auth:
//                    refused guesses cost no password check); a Redis store that cannot answer
//                    in time -> onStoreDown: through uncounted, or 503
//   9. authenticate the route's auth (basic, bearer, jwt, forward, combined) -> else 401 with its
//                    challenges (forward auth: the service's own answer, or 502/504)
//  10. rateLimiting again, for limits keyed by a JWT claim (known only after 9) -> else 429
//  11. forward       headers, limits, timeouts, the upstream (a group's pick: balancer/), tries
//                    under the retry policy, streaming, and WebSocket tunnels (proxy/websocket.ts)
//                    -> 400/408/413/426/431/499/501/502/503/504
// Later capabilities (the cache) slot in between 10 and 11. Every error the proxy answers itself is a ProxyError
// (proxy/errors.ts) through `refuse`; its other own answers are the 308 (5) and the preflight (6).
import { Hono } from 'hono';
import { authenticate } from './access/authenticate.ts';
import { ipRules } from './access/ip-rules.ts';
import { RateLimiters } from './access/limiters.ts';
import { rateLimiting } from './access/rate-limiting.ts';
import type { AppEnv } from './app-env.ts';
import { Balancers } from './balancer/state.ts';
import type { ConfigSource } from './config/source.ts';
import { type AccessEntry, accessLog } from './log/access-log.ts';
import type { Logger } from './log/logger.ts';
import { ProxyError } from './proxy/errors.ts';
import { requestFacts } from './proxy/facts.ts';
import { forward } from './proxy/forward.ts';
import { guardRequest } from './proxy/guard.ts';
import { httpsPolicy } from './proxy/https.ts';
import { refuse } from './proxy/respond.ts';
import { routeHeaders } from './proxy/route-headers.ts';
import { routeByHost } from './router/middleware.ts';
import type { Transport } from './transport/types.ts';
import { TunnelRegistry } from './tunnel/registry.ts';

export interface AppDeps {
  /** Read once per request; swapping it changes the config of the requests that start after. */
  readonly config: ConfigSource;
  readonly transport: Transport;
  readonly logger: Logger;
  /** Receives every request's access entry (metrics, the dashboard). */
  readonly onAccess?: (entry: AccessEntry) => void;
  /** The TLS listener's bound port, for redirects to it; null (the default) without one. */
  readonly httpsPort?: () => number | null;
  /** Open WebSocket tunnels; shutdown says goodbye through it. @default a registry of its own */
  readonly tunnels?: TunnelRegistry;
  /**
   * Upstream health and load of routes with several upstreams, synced with the config (the
   * caller stops it). @default one of its own, synced with the config at creation
   */
  readonly balancers?: Balancers;
  /**
   * Rate-limit counts (and the Redis client), synced with the config (the caller stops it).
   * @default one of its own, synced with the config at creation
   */
  readonly limiters?: RateLimiters;
}

const NO_HTTPS = () => null;

export function createApp({
  config,
  transport,
  logger,
  onAccess,
  httpsPort = NO_HTTPS,
  tunnels = new TunnelRegistry(),
  balancers,
  limiters,
}: AppDeps): Hono<AppEnv> {
  if (balancers === undefined) {
    balancers = new Balancers({ logger, transport });
    balancers.sync(config.current);
  }
  if (limiters === undefined) {
    limiters = new RateLimiters({ logger });
    limiters.sync(config.current);
  }
  const app = new Hono<AppEnv>();
  app.use(requestFacts(config));
  app.use(accessLog({ logger, onAccess }));
  app.use(guardRequest());
  app.use(routeByHost());
  app.use(httpsPolicy({ httpsPort }));
  app.use(routeHeaders());
  app.use(ipRules());
  app.use(rateLimiting({ limiters, phase: 'before-auth' }));
  app.use(authenticate({ logger, transport }));
  app.use(rateLimiting({ limiters, phase: 'claims' }));
  app.all('*', forward({ transport, tunnels, balancers, graceMs: () => config.current.shutdownGraceMs }));
  app.onError(function internalError(error, c) {
    // A bug, never a client's fault: answer 500, log it, keep serving.
    logger.error('internal error', { error: error instanceof Error ? (error.stack ?? error.message) : String(error), request_id: c.get('access')?.id });
    return refuse(c, new ProxyError('internal', 'internal', false, 'internal error', { cause: error }));
  });
  return app;
}
