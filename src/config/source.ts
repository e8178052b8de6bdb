// The one reference to the compiled config the app reads, once per request (proxy/facts.ts).
// A reload (a later issue) compiles the next config and swaps it in; requests in flight keep
// the snapshot they started with. Per-route state is kept by `CompiledRoute.key`, not here.
import type { CompiledConfig } from './compile.ts';

export interface ConfigSource {
  /** The config new requests are served with. */
  readonly current: CompiledConfig;
  /** Makes `next` current for every request that starts from now on; returns the one it replaced. */
  swap(next: CompiledConfig): CompiledConfig;
}

export function createConfigSource(config: CompiledConfig): ConfigSource {
  let current = config;
  return {
    get current() {
      return current;
    },
    swap(next) {
      const previous = current;
      current = next;
      return previous;
    },
  };
}
