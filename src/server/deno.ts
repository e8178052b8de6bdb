// Deno.serve listener. Deno has no header-size or body-size setting; the proxy enforces both.
import { normalizePeer } from '../proxy/headers.ts';
import type { AppFetch, Listener, ListenOptions } from './types.ts';

declare const Deno: {
  serve(
    options: { hostname: string; port: number; onListen?: (addr: unknown) => void; onError?: (error: unknown) => Response },
    handler: (request: Request, info: { remoteAddr: { hostname: string } }) => Response | Promise<Response>,
  ): { addr: { hostname: string; port: number }; shutdown(): Promise<void>; finished: Promise<void> };
};

export function listenDeno(fetch: AppFetch, options: ListenOptions): Listener {
  const server = Deno.serve(
    {
      hostname: options.hostname,
      port: options.port,
      // Deno prints "Listening on ..." to stdout by default, which would break our JSON lines.
      onListen: () => {},
      onError: () => new Response('internal error\n', { status: 500 }),
    },
    (request, info) => fetch(request, { remoteAddr: normalizePeer(info.remoteAddr.hostname), proto: 'http' }),
  );
  return {
    hostname: server.addr.hostname,
    port: server.addr.port,
    async stop(graceMs) {
      // shutdown() stops accepting and resolves once in-flight requests are done; past the
      // grace period we stop waiting and let the process exit close the rest.
      await Promise.race([server.shutdown(), new Promise((resolve) => setTimeout(resolve, graceMs))]);
    },
  };
}
