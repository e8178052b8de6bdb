// The contract every listener keeps, whatever runtime server it wraps (listener.cases.ts checks
// it on each runtime): connections in, `Request`s to the app with the connection's facts, the
// app's `Response` out, several listeners started and stopped together.

import type { Socket } from 'node:net';
import type { Bindings, TlsFacts } from '../app-env.ts';
import type { ClientLimits, ConnectionGate } from './limits.ts';
import type { TlsListenerOptions } from './tls.ts';

/** `app.fetch` bound to a listener's facts. */
export type AppFetch = (request: Request, env: Bindings) => Response | Promise<Response>;

/** One listener to start: where, which scheme, with what limits. */
export interface ListenerSpec {
  /** `"http"` today (`"https"`, `"admin"` next); names the listener in logs and errors. */
  readonly name: string;
  readonly hostname: string;
  /** 0 picks a free port; `Listener.port` says which. */
  readonly port: number;
  /** The scheme clients use on this listener, passed to the app as `conn.proto`. */
  readonly proto: 'http' | 'https';
  /** Largest request head, in bytes, where the runtime lets us set it. */
  readonly maxHeaderBytes: number;
  /**
   * Offer the hand-over after a 101 (`Bindings.upgrade`) on requests asking to switch
   * protocols. Off, such requests are ordinary requests (Upgrade is hop-by-hop) and keep their
   * connection alive on every runtime; on Node, taking upgrades at all changes how node:http
   * treats them (their connection closes unless switched), so a listener takes them only when
   * the app has something to switch to (WebSocket tunnels, issue 8).
   * @default false
   */
  readonly upgrades?: boolean;
  /**
   * Told about input refused before it became a request (unparsable head, slow head), where the
   * listener answers by itself. Listeners whose runtime answers such input unseen do not call it.
   */
  readonly onBadRequest?: (info: { listener: string; client: string; status: number; reason: string }) => void;
  /** Timeouts for slow and idle clients (./limits.ts). @default DEFAULT_CLIENT_LIMITS */
  readonly limits?: ClientLimits;
  /** Caps on open connections, shared by the listeners of a group. Absent: no caps. */
  readonly gate?: ConnectionGate;
  /** Required with proto `"https"`: the certificates and client-certificate settings (./tls.ts). */
  readonly tls?: TlsListenerOptions;
}

export interface Listener {
  readonly name: string;
  readonly proto: 'http' | 'https';
  readonly hostname: string;
  readonly port: number;
  /** Protocols offered by ALPN (TLS listeners), in order of preference; empty for plain HTTP. */
  readonly alpn?: readonly string[];
  /**
   * Stops accepting at once, lets requests in flight finish for up to `graceMs`, then closes
   * whatever is left. Resolves when the listener is closed.
   */
  stop(graceMs: number): Promise<void>;
}

/** Several listeners sharing one app, started together and stopped together. */
export interface ListenerGroup {
  /** In the order of the specs. */
  readonly listeners: readonly Listener[];
  /** Stops every listener in parallel, each with the same grace period. */
  stop(graceMs: number): Promise<void>;
}

/** A runtime's listener factory: one spec, one bound listener (or a rejection naming why). */
export type ListenFn = (fetch: AppFetch, spec: ListenerSpec) => Promise<Listener>;

/**
 * A runtime's HTTP/1.1 server without a listening socket of its own: the plain listener feeds
 * it accepted sockets, the TLS listener those that negotiated http/1.1 (./tls.ts).
 */
export interface Http1Server {
  /** Serves one connection; `tls` is set for a TLS socket after its handshake. */
  connection(socket: Socket, tls?: TlsFacts): void;
  /** Closes idle connections now and busy ones after their response, the rest after `graceMs`. */
  stop(graceMs: number): Promise<void>;
}

/** Makes a runtime's HTTP/1.1 server for a spec. */
export type Http1Factory = (fetch: AppFetch, spec: ListenerSpec) => Http1Server;
