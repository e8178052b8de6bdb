import type { TlsFacts } from '../app-env.ts';

// The parts of Bun's socket API our HTTP/1.1 server and client use, typed here once so Deno and
// Node type-check those files without Bun's declarations, and the one accessor of the `Bun` global.

/** A Bun.listen / Bun.connect socket; `data` is the per-connection state we attach. */
export interface BunSocket<Data> {
  data: Data;
  readonly remoteAddress: string;
  /** What the TLS handshake settled, on sockets that come from a TLS listener (server/tls.ts). */
  readonly tls?: TlsFacts;
  /** Writes what the kernel takes now and returns that count (-1: closed); buffers nothing. */
  write(data: Uint8Array, byteOffset?: number, byteLength?: number): number;
  /** Sends FIN after what was written (on Bun 1.4.5 this closes the socket whole). */
  end(): void;
  /** Sends FIN after what was written and keeps reading: a half-close. */
  shutdown(): void;
  /** Closes at once (RST when bytes are unsent). */
  terminate(): void;
  /** Present at run time, missing from Bun's declarations (docs/runtimes.md). */
  pause(): void;
  resume(): void;
}

/** Socket callbacks. Buffers passed to `data` are fresh: safe to keep. */
export interface SocketHandlers<Data> {
  open?(socket: BunSocket<Data>): void;
  data(socket: BunSocket<Data>, chunk: Buffer): void;
  drain(socket: BunSocket<Data>): void;
  close(socket: BunSocket<Data>, error?: Error): void;
  /** The peer sent FIN (with `allowHalfOpen: true` our side stays open until we end it). */
  end(socket: BunSocket<Data>): void;
  error(socket: BunSocket<Data>, error: Error): void;
}

export interface BunTcpListener {
  readonly port: number;
  stop(closeActiveConnections?: boolean): void;
}

/** `Bun.listen` and `Bun.connect`, as far as we call them. */
export interface BunSockets {
  listen<Data>(options: { hostname: string; port: number; allowHalfOpen: boolean; socket: SocketHandlers<Data> }): BunTcpListener;
  connect<Data>(options: { hostname: string; port: number; allowHalfOpen: boolean; data: Data; socket: SocketHandlers<Data> }): Promise<BunSocket<Data>>;
}

/** The `Bun` global, typed as above (only call this on Bun). */
export const bunSockets = (): BunSockets => (globalThis as unknown as { Bun: BunSockets }).Bun;
