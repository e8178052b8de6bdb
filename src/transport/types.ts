// The seam between the proxy and the network: one fetch-shaped function per runtime.

/** What the proxy hands a transport: like RequestInit, but every field is already decided. */
export interface UpstreamInit {
  readonly method: string;
  /** Final headers, including `host`; the transport must send them as given and add nothing. */
  readonly headers: Headers;
  /** Streamed request body, or null. Never buffered by a transport. */
  readonly body: ReadableStream<Uint8Array> | null;
  /** Aborts the upstream exchange: client gone, or the route's timeout. */
  readonly signal: AbortSignal;
}

/**
 * Fetch-shaped: `(url, init) => Promise<Response>`. A transport never follows redirects, never
 * decompresses, honours a custom Host, pools connections per origin, and rejects (never
 * resolves with a 5xx of its own) when the upstream cannot be reached. It takes a URL string
 * rather than a `Request` because constructing a Request drops `host` on Node and Deno.
 */
export type Transport = (url: string, init: UpstreamInit) => Promise<Response>;

/** A transport with pooled sockets to release at shutdown. */
export interface ClosableTransport {
  readonly fetch: Transport;
  /** Closes pooled connections, aborting exchanges still in flight (called after the grace period). */
  close(): Promise<void>;
  /** Implementation name for logs and benchmarks. */
  readonly name: string;
}
