// Starts listeners for the runtime we are on: for plain HTTP, @hono/node-server on Node,
// Deno.serve on Deno, our own HTTP/1.1 server on Bun.listen on Bun (./bun-native.ts says why not
// Bun.serve); for TLS, node:http2's secure server on all three (./tls.ts says why). One at a time
// or as a group started and stopped together. Runtime modules load lazily.
import type { Runtime } from './runtime.ts';
import type { AppFetch, Listener, ListenerGroup, ListenerSpec, ListenFn } from './types.ts';

export type { AppFetch, Listener, ListenerGroup, ListenerSpec, ListenFn } from './types.ts';

/** The runtime's listener factory; only that runtime's adapter is evaluated. */
export async function listenFnFor(runtime: Runtime): Promise<ListenFn> {
  if (runtime === 'deno') return (await import('./deno.ts')).listenDeno;
  if (runtime === 'bun') return (await import('./bun-native.ts')).listenBunNative;
  return (await import('./node.ts')).listenNode;
}

/** The runtime's TLS listener: on Bun node:tls with our HTTP/1.1 server for http/1.1 (./bun-tls.ts), elsewhere node:http2's (./tls.ts). */
export async function tlsListenFnFor(runtime: Runtime): Promise<ListenFn> {
  if (runtime === 'bun') return (await import('./bun-tls.ts')).listenBunTls;
  return (await import('./tls.ts')).listenTls;
}

export async function listen(runtime: Runtime, fetch: AppFetch, spec: ListenerSpec): Promise<Listener> {
  return (await listenFnFor(runtime))(fetch, spec);
}

/** `EADDRINUSE: address already in use`, from whatever shape the runtime's error has. */
function describeListenError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || message.includes(code)) return message;
  return `${code}: ${message}`;
}

/**
 * Binds every spec with `listenFn` (all at once), or none: if one fails, those already bound are
 * stopped and the rejection names the listener and its address.
 */
export async function startListenerGroup(listenFn: ListenFn, fetch: AppFetch, specs: readonly ListenerSpec[]): Promise<ListenerGroup> {
  const results = await Promise.allSettled(specs.map((spec) => listenFn(fetch, spec)));
  const listeners: Listener[] = [];
  let failure: Error | null = null;
  results.forEach((result, i) => {
    if (result.status === 'fulfilled') listeners.push(result.value);
    else if (failure === null) {
      const spec = specs[i] as ListenerSpec;
      failure = new Error(`cannot listen on ${spec.hostname}:${spec.port} (${spec.name}): ${describeListenError(result.reason)}`, { cause: result.reason });
    }
  });
  if (failure !== null) {
    await Promise.all(listeners.map((l) => l.stop(0)));
    throw failure;
  }
  return {
    listeners,
    async stop(graceMs) {
      await Promise.all(listeners.map((l) => l.stop(graceMs)));
    },
  };
}

/** Every listener of the config on this runtime, started together and stopped together. */
export async function listenAll(runtime: Runtime, fetch: AppFetch, specs: readonly ListenerSpec[]): Promise<ListenerGroup> {
  const plain = await listenFnFor(runtime);
  const secure = specs.some((spec) => spec.proto === 'https') ? await tlsListenFnFor(runtime) : plain;
  return startListenerGroup((app, spec) => (spec.proto === 'https' ? secure(app, spec) : plain(app, spec)), fetch, specs);
}
