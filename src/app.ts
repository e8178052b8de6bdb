// The switchyard Hono app. The middleware order lives here and only here:
//   1. accessLog     request id, timing, one JSON line per request (outermost: sees every answer)
//   2. guardRequest  HTTP/1.x, Host present and sane, target authority agrees with Host -> else
//                    400; target length -> 414
//   3. routeByHost   compiled host table + path prefixes -> else 421
//   4. forward       headers, limits, timeout, transport, streaming -> 413/431/499/502/504
// Later capabilities (auth, rate limits, cache) slot in between 3 and 4.
import { Hono } from 'hono';
import type { AppEnv } from './app-env.ts';
import type { CompiledConfig } from './config/compile.ts';
import { accessLog } from './log/access-log.ts';
import type { Logger } from './log/logger.ts';
import { forward } from './proxy/forward.ts';
import { guardRequest } from './proxy/guard.ts';
import { plain } from './proxy/respond.ts';
import { routeByHost } from './router/middleware.ts';
import type { Transport } from './transport/types.ts';

export interface AppDeps {
  readonly config: CompiledConfig;
  readonly transport: Transport;
  readonly logger: Logger;
}

export function createApp({ config, transport, logger }: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(accessLog(logger));
  app.use(guardRequest({ maxUrlBytes: config.maxUrlBytes }));
  app.use(routeByHost(config.table));
  app.all('*', forward({ transport, config }));
  app.onError((error, c) => {
    // A bug, never a client's fault: answer 500, log it, keep serving.
    const access = c.get('access');
    logger.error('internal error', { error: error instanceof Error ? (error.stack ?? error.message) : String(error), request_id: access?.id });
    if (access) access.error = 'internal error';
    return plain(500, 'internal error');
  });
  return app;
}
