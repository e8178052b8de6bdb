// Bun's global fetch, the fast half of the Bun transport (./bun.ts decides when it is exact).
// Alone it is not a correct proxy client: it adds User-Agent and Accept and normalises paths.
import type { ClosableTransport, UpstreamInit } from './types.ts';

export function createFetchTransport(): ClosableTransport {
  return {
    name: 'fetch',
    fetch: function fetchTransport(url: string, init: UpstreamInit) {
      return fetch(url, {
        method: init.method,
        headers: init.headers,
        body: init.body,
        signal: init.signal,
        redirect: 'manual',
        decompress: false,
        duplex: 'half',
      } as RequestInit);
    },
    close: async () => {},
  };
}
