// The transport per runtime. Bun: our own HTTP/1.1 client on Bun.connect for http: upstreams
// (./bun-socket.ts), undici for https: until the TLS work. Node and Deno: undici's dispatcher.
// docs/runtimes.md has the measurements against Bun's fetch, node:http and Readable-based
// undici that led here.
import type { Runtime } from '../server/runtime.ts';
import type { ClosableTransport } from './types.ts';

export type { ClosableTransport, Transport, UpstreamInit } from './types.ts';

export async function createTransport(runtime: Runtime): Promise<ClosableTransport> {
  const undici = (await import('./undici.ts')).createUndiciTransport();
  if (runtime !== 'bun') return undici;
  const socket = (await import('./bun-socket.ts')).createBunSocketTransport();
  return {
    name: 'bun-socket+undici',
    // 'http:' has its colon at index 4; 'https:' goes to undici.
    fetch: (url, init) => (url.charCodeAt(4) === 58 ? socket.fetch(url, init) : undici.fetch(url, init)),
    close: async () => {
      await Promise.all([socket.close(), undici.close()]);
    },
  };
}
