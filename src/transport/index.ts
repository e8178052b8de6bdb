// Picks the transport for the runtime we are on (measured choices in docs/runtimes.md).
// Modules load lazily: Bun's `undici` is a shim that decompresses, so Bun must never use it.
// SWITCHYARD_TRANSPORT overrides the choice, for benchmarks only.
import type { Runtime } from '../server/runtime.ts';
import type { ClosableTransport } from './types.ts';

export type { ClosableTransport, Transport, UpstreamInit } from './types.ts';

export type TransportName = 'bun' | 'node-http' | 'undici' | 'fetch';

export function defaultTransport(runtime: Runtime): TransportName {
  if (runtime === 'bun') return 'bun';
  return 'undici';
}

export async function createTransport(name: TransportName): Promise<ClosableTransport> {
  switch (name) {
    case 'bun':
      return (await import('./bun.ts')).createBunTransport();
    case 'undici':
      return (await import('./undici.ts')).createUndiciTransport();
    case 'fetch':
      return (await import('./fetch.ts')).createFetchTransport();
    default:
      return (await import('./node-http.ts')).createNodeHttpTransport();
  }
}
