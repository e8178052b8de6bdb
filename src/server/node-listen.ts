// Binding and graceful stop for a node:http server, shared by the Node and Bun listeners.
import type { Server, ServerOptions } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Listener, ListenOptions } from './types.ts';

/** node:http options both listeners need: limits left to the proxy, no request deadline. */
export function nodeServerOptions(options: ListenOptions): ServerOptions {
  return {
    // Let our own limits answer (431 for fields, 414 for the target, each <= 16 KiB).
    maxHeaderSize: options.maxHeaderBytes + 16384 + 1024,
    // Node's 300 s default would cut a slow 1 GiB upload; the proxy bounds waits per route.
    requestTimeout: 0,
  };
}

export async function startNodeServer(server: Server, options: ListenOptions): Promise<Listener> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.hostname, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    hostname: options.hostname,
    port: (server.address() as AddressInfo).port,
    async stop(graceMs) {
      // close() stops accepting and resolves once every connection is gone; idle keep-alive
      // connections go now, busy ones when their response ends or the grace period runs out.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // A connection whose request finishes goes back to keep-alive; close those as they idle.
      server.closeIdleConnections();
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearInterval(sweep);
      clearTimeout(timer);
    },
  };
}
