// What a connection becomes after 101 Switching Protocols: a byte stream both ways. The
// listener contract (server/types.ts) hands over the client's side, the transport contract
// (transport/types.ts) the upstream's; WebSocket tunnels (issue 8) pipe one into the other.
// Nothing here parses frames: after a 101 the proxy only moves bytes.

/** One side of an upgraded connection, as Web streams. */
export interface ByteStream {
  /**
   * Bytes from the peer, starting with any it sent right behind the message head. Ends when
   * the peer closes its side; errors when the connection breaks.
   */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the peer; `close()` ends our side once everything written has gone out. */
  readonly writable: WritableStream<Uint8Array>;
  /** Tears the connection down at once, both directions (idle timeout, shutdown). */
  destroy(reason?: Error): void;
}

/**
 * How a listener lets the app take over a client connection that asked to switch protocols
 * (`Connection: upgrade` + `Upgrade: ...`). Listeners set it only on such requests. `accept`
 * writes `101 Switching Protocols` with the given fields and hands over the socket (every
 * listener owns its sockets: our server on Bun and Deno, node:http's 'upgrade' on Node).
 * Whatever Response the app returns afterwards is ignored by the listener: the connection is
 * no longer HTTP.
 */
export interface ClientUpgrade {
  readonly kind: 'bytes';
  /** Writes the 101 head with `headers` (hop-by-hop fields as given: Upgrade, Connection) and hands over the connection. */
  accept(headers: Headers): ByteStream;
}

/** What an upgrade request sent through a transport came back with. */
export type UpgradeResult =
  /** The upstream switched protocols: its 101 fields (hop-by-hop included) and the connection. */
  | { readonly switched: true; readonly headers: Headers; readonly stream: ByteStream }
  /** The upstream answered something else (a 4xx, a redirect...): an ordinary response. */
  | { readonly switched: false; readonly response: Response };
