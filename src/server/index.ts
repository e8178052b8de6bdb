// Starts listeners for the runtime we are on. The HTTP/1.1 server is our own (./bun-native.ts's
// engine) on Bun (on Bun.listen; ./bun-native.ts says why not Bun.serve) and on Deno (on
// node:net; docs/runtimes.md says why not Deno.serve), and node:http through @hono/node-server
// on Node, where our engine's Requests cost more than node:http's whole path. TLS is node:tls
// on all three, h2 to node:http2 and http/1.1 to that same HTTP/1.1 server (./tls.ts). One at a
// time or as a group started and stopped together. Runtime modules load lazily.
import type { Runtime } from './runtime.ts';
import type { AppFetch, Listener, ListenerGroup, ListenerSpec, ListenFn } from './types.ts';

export type { AppFetch, Listener, ListenerGroup, ListenerSpec, ListenFn } from './types.ts';

/** The runtime's listener factory; only that runtime's adapter is evaluated. */
export async function listenFnFor(runtime: Runtime): Promise<ListenFn> {
  if (runtime === 'deno') return (await import('./net-engine.ts')).listenNetEngine;
  if (runtime === 'bun') return (await import('./bun-native.ts')).listenBunNative;
  return (await import('./node.ts')).listenNode;
}

/** The runtime's TLS listener (./tls.ts), its http/1.1 connections served by the runtime's HTTP/1.1 server. */
export async function tlsListenFnFor(runtime: Runtime): Promise<ListenFn> {
  const { listenTls } = await import('./tls.ts');
  const http1 = runtime === 'node' ? (await import('./node.ts')).nodeHttp1 : (await import('./net-engine.ts')).engineHttp1;
  return (fetch, spec) => listenTls(fetch, spec, http1);
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
