// Deno.serve listener. Deno has no header-size or body-size setting (the proxy enforces both),
// gives no per-connection handle and no raw request line (no `line`: requestFacts rebuilds the
// target from the URL), and exposes no socket: the hand-over after a 101 is WebSocket only.
// Deno.serve answers 400 itself to a request with Connection: upgrade that carries a body.
import type { Bindings, ConnInfo } from '../app-env.ts';
import { normalizePeer } from '../proxy/headers.ts';
import type { ClientUpgrade } from '../tunnel/types.ts';
import type { AppFetch, Listener, ListenerSpec } from './types.ts';

/** Capabilities the conformance cases read (listener.cases.ts). */
export const denoListenerFeatures = { line: false, connPerSocket: false, upgradeBody: false, upgrade: 'websocket' } as const;

declare const Deno: {
  serve(
    options: { hostname: string; port: number; onListen?: (addr: unknown) => void; onError?: (error: unknown) => Response },
    handler: (request: Request, info: { remoteAddr: { hostname: string } }) => Response | Promise<Response>,
  ): { addr: { hostname: string; port: number }; shutdown(): Promise<void>; finished: Promise<void> };
  upgradeWebSocket(request: Request, options?: { protocol?: string; idleTimeout?: number }): { socket: WebSocket; response: Response };
};

/** RFC 6455 §4.1: a WebSocket opening handshake says `Upgrade: websocket` (any case). */
function asksForWebSocket(request: Request): boolean {
  const upgrade = request.headers.get('upgrade');
  return upgrade !== null && upgrade.toLowerCase() === 'websocket';
}

export async function listenDeno(fetch: AppFetch, spec: ListenerSpec): Promise<Listener> {
  const { proto, name: listener } = spec;
  const upgrades = spec.upgrades === true;
  const server = Deno.serve(
    {
      hostname: spec.hostname,
      port: spec.port,
      // Deno prints "Listening on ..." to stdout by default, which would break our JSON lines.
      onListen: () => {},
      onError: () => new Response('internal error\n', { status: 500 }),
    },
    function denoRequest(request, info) {
      // Deno passes the peer per request and no connection object to key it by; a cache keyed
      // by "address:port" could outlive the connection and meet a new one, so build it: it is small.
      const conn: ConnInfo = { remoteAddr: normalizePeer(info.remoteAddr.hostname), proto, listener };
      if (!upgrades || !asksForWebSocket(request)) return fetch(request, { conn });
      const upgrade: ClientUpgrade = {
        kind: 'websocket',
        // Deno.upgradeWebSocket throws on a request that is no valid handshake; the app decides.
        accept: (options) => Deno.upgradeWebSocket(request, options),
      };
      const env: Bindings = { conn, upgrade };
      return fetch(request, env);
    },
  );
  return {
    name: spec.name,
    proto,
    hostname: server.addr.hostname,
    port: server.addr.port,
    async stop(graceMs) {
      // shutdown() stops accepting and resolves once in-flight requests are done; past the
      // grace period we stop waiting and let the process exit close the rest.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise((resolve) => {
        timer = setTimeout(resolve, graceMs);
      });
      await Promise.race([server.shutdown(), grace]);
      clearTimeout(timer);
    },
  };
}
