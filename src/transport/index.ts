// The transport per runtime. Bun: our own HTTP/1.1 client on Bun.connect for http: upstreams
// (./bun-socket.ts), undici for https: (with each route's TLS settings, over Bun's node:tls).
// Node and Deno: undici's dispatcher.
// docs/runtimes.md has the measurements against Bun's fetch, node:http and Readable-based
// undici that led here.
import type { Runtime } from '../server/runtime.ts';
import type { Transport } from './types.ts';

export type { Transport, UpgradeResult, UpstreamInit } from './types.ts';
export { UpstreamError } from './types.ts';

// 'http:' has its colon at index 4; 'https:' goes to undici.
const isPlainHttp = (url: string) => url.charCodeAt(4) === 58;

export async function createTransport(runtime: Runtime): Promise<Transport> {
  const undici = (await import('./undici.ts')).createUndiciTransport();
  if (runtime !== 'bun') return undici;
  const socket = (await import('./bun-socket.ts')).createBunSocketTransport();
  return {
    name: 'bun-socket+undici',
    fetch: (url, init) => (isPlainHttp(url) ? socket.fetch(url, init) : undici.fetch(url, init)),
    upgrade: (url, init) => (isPlainHttp(url) ? socket.upgrade(url, init) : undici.upgrade(url, init)),
    close: async () => {
      await Promise.all([socket.close(), undici.close()]);
    },
  };
}
