// Binding a node:net-based server (node:http, node:http2, node:tls) for a listener spec, the same
// way for each: the bind error rejects (listenAll names the listener and address), and errors
// after it (EMFILE on accept) do not end the process.
import type { AddressInfo, Server } from 'node:net';
import type { ListenerSpec } from './types.ts';

/** Listens on the spec's address; resolves with the bound port. */
export async function bindServer(server: Server, spec: ListenerSpec): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(spec.port, spec.hostname, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', () => {});
  return (server.address() as AddressInfo).port;
}
