// The Hono environment shared by every middleware: what the listener provides (Bindings) and
// what the chain passes along (Variables).

import type { Context } from 'hono';
import type { CompiledRoute } from './config/compile.ts';
import type { AccessRecord } from './log/access-log.ts';

/** Connection facts each server adapter supplies; the only runtime-specific input to the app. */
export interface ConnInfo {
  /** Peer address, IPv4-mapped prefix removed. */
  readonly remoteAddr: string;
  /** The request target exactly as received, when the runtime exposes it (Node, Bun). */
  readonly rawTarget?: string;
  /** Scheme of the listener. */
  readonly proto: 'http' | 'https';
  /** HTTP version of the request (`"1.1"`), when the runtime exposes it (Node, Bun). */
  readonly httpVersion?: string;
  /**
   * The request method exactly as received (methods are case-sensitive, RFC 9110 §9.1), when the
   * runtime's Request may change it: Bun's turns unknown methods into GET, Node's uppercases
   * `post`. Forwarding and logging use this when set.
   */
  readonly method?: string;
}

export interface AppEnv {
  Bindings: ConnInfo;
  Variables: {
    access: AccessRecord;
    logDone: (bytes: number) => void;
    /** Normalised host: lowercase, no port, no trailing dot. */
    host: string;
    /** Raw request target (path and query) as it will be forwarded. */
    target: string;
    /** The target routing compared with path prefixes (see router/path.ts). */
    routeTarget: string;
    route: CompiledRoute;
  };
}

/**
 * The request method exactly as the client sent it: ConnInfo.method where the listener knows
 * better than its runtime's Request (see there), else the Request's. Middlewares read the method
 * through this, never `c.req.method`.
 */
export function methodOf(c: Context<AppEnv>): string {
  return c.env.method ?? c.req.raw.method;
}
