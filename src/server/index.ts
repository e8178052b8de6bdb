// Starts the listener for the runtime we are on. Bun runs node:http through @hono/node-server,
// not Bun.serve: Bun.serve drops a Content-Length set on a streamed body (oven-sh/bun#10507)
// and rewrites the request target (dot segments, absolute-form) before the app sees it.
// Runtime modules load lazily so each runtime only evaluates its own adapter.
import type { Runtime } from './runtime.ts';
import type { AppFetch, Listener, ListenOptions } from './types.ts';

export type { AppFetch, Listener, ListenOptions } from './types.ts';

export async function listen(runtime: Runtime, fetch: AppFetch, options: ListenOptions): Promise<Listener> {
  if (runtime === 'deno') return (await import('./deno.ts')).listenDeno(fetch, options);
  return (await import('./node.ts')).listenNode(fetch, options);
}
