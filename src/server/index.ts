// Starts the listener for the runtime we are on: @hono/node-server on Node, Deno.serve on Deno,
// our own HTTP/1.1 server on Bun.listen on Bun (./bun-native.ts says why not Bun.serve).
// Runtime modules load lazily so each runtime only evaluates its own adapter.
import type { Runtime } from './runtime.ts';
import type { AppFetch, Listener, ListenOptions } from './types.ts';

export type { AppFetch, Listener, ListenOptions } from './types.ts';

export async function listen(runtime: Runtime, fetch: AppFetch, options: ListenOptions): Promise<Listener> {
  if (runtime === 'deno') return (await import('./deno.ts')).listenDeno(fetch, options);
  if (runtime === 'bun') return (await import('./bun-native.ts')).listenBunNative(fetch, options);
  return (await import('./node.ts')).listenNode(fetch, options);
}
