// node:http listener through @hono/node-server. Also hands the raw request target to the app,
// which Node is the only runtime to expose.
import type { Server } from 'node:http';
import { createAdaptorServer, type Http2Bindings, type HttpBindings } from '@hono/node-server';
import { normalizePeer } from '../proxy/headers.ts';
import { nodeServerOptions, startNodeServer } from './node-listen.ts';
import type { AppFetch, Listener, ListenOptions } from './types.ts';

/**
 * @hono/node-server writes `content-type: text/plain` on any body without one; a proxy must not
 * invent headers, so for those (rare) responses this writeHead drops the injected field.
 */
function keepContentTypeAbsent(outgoing: { writeHead: (...args: never[]) => unknown }): void {
  const original = outgoing.writeHead as (this: unknown, status: number, headers?: Record<string, unknown>) => unknown;
  outgoing.writeHead = function writeHeadWithoutDefaultType(this: unknown, status: number, headers?: Record<string, unknown>) {
    if (headers && typeof headers === 'object' && !Array.isArray(headers)) delete headers['content-type'];
    return original.call(this, status, headers);
  } as never;
}

export async function listenNode(fetch: AppFetch, options: ListenOptions): Promise<Listener> {
  const server = createAdaptorServer({
    fetch: async (request: Request, env: HttpBindings | Http2Bindings) => {
      const response = await fetch(request, {
        remoteAddr: normalizePeer(env.incoming.socket.remoteAddress ?? ''),
        rawTarget: env.incoming.url,
        proto: 'http',
        httpVersion: env.incoming.httpVersion,
        method: env.incoming.method,
      });
      if (response.body !== null && !response.headers.has('content-type')) keepContentTypeAbsent(env.outgoing);
      return response;
    },
    serverOptions: nodeServerOptions(options),
  }) as Server;
  return startNodeServer(server, options);
}
