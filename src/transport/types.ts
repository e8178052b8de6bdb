// The seam between the proxy and the network: one fetch-shaped client per runtime, and the
// promises every implementation keeps (transport.cases.ts checks them on each runtime).
import type { UpgradeResult } from '../tunnel/types.ts';

export type { UpgradeResult } from '../tunnel/types.ts';

/** What the proxy hands a transport: like RequestInit, but every field is already decided. */
export interface UpstreamInit {
  /** Sent exactly as given (methods are case-sensitive, RFC 9110 §9.1). */
  readonly method: string;
  /**
   * Final headers, `host` included; sent as given, in order, nothing added but the body
   * framing (`content-length` as given, or `transfer-encoding: chunked` for a body without)
   * and, from undici, `connection: keep-alive`, which it writes on every request.
   */
  readonly headers: Headers;
  /** Streamed request body, or null. Never buffered whole by a transport. */
  readonly body: ReadableStream<Uint8Array> | null;
  /** Aborts the upstream exchange: client gone, or the route's timeout. */
  readonly signal: AbortSignal;
  /**
   * Open a new connection rather than reuse a pooled one (the retry after a pooled connection
   * turned out stale, health checks). undici's does not keep it afterwards (an agent without
   * keep-alive); ours pools it unless the exchange says `connection: close`.
   * @default false
   */
  readonly fresh?: boolean;
  /**
   * How to verify and authenticate to an https: upstream (the route's `upstreamTls`), compiled
   * once per route: the same object on every request of a route, so a transport may key its
   * connection pool by it. Absent: the system roots, SNI and verification by the URL's host.
   * Ignored for http: upstreams.
   */
  readonly tls?: UpstreamTlsOptions;
  /**
   * A new connection that is not open within this long fails as a connect failure
   * (`connectFailed`, code `ETIMEDOUT` or undici's `UND_ERR_CONNECT_TIMEOUT`).
   * @default no limit of the proxy's own (the system's)
   */
  readonly connectTimeoutMs?: number;
  /**
   * Once the response head arrived, a body that sends nothing for this long fails (its stream
   * errors, or the promise rejects for a body awaited whole), code `UPSTREAM_BODY_TIMEOUT` or
   * undici's `UND_ERR_BODY_TIMEOUT`. Time the consumer spends not reading does not count.
   * @default no limit
   */
  readonly bodyIdleTimeoutMs?: number | null;
}

/** The TLS client settings of one route's https: upstream, PEM text already read from disk. */
export interface UpstreamTlsOptions {
  /** PEM bundle of the CAs trusted instead of the system roots. */
  readonly ca?: string;
  /** SNI and the name the certificate must carry, instead of the URL's host. */
  readonly serverName?: string;
  /** Client certificate chain (PEM) shown to the upstream, with `key`. */
  readonly cert?: string;
  /** The client certificate's private key (PEM). */
  readonly key?: string;
  /** No verification at all (logged as a warning at every start). */
  readonly insecure: boolean;
}

/**
 * A transport's promises, on every runtime:
 * - Requests: the method, the target (the URL's path and query, byte for byte) and the headers
 *   as given; no redirects followed, nothing decompressed, keep-alive pooled per origin.
 * - Responses resolve once their head arrives, with status 200-599 (1xx answers are skipped;
 *   a 101 only comes back through `upgrade`), `statusText` only when it is visible ASCII.
 * - Response headers hold no hop-by-hop field and no field the upstream's Connection named
 *   (http/hop-by-hop.ts), never Transfer-Encoding; a Content-Length is the upstream's one value
 *   (a list of equal values is folded to one; differing values are a failure).
 * - The body is null for HEAD and for null-body statuses (http/body-rules.ts); a 204 carries
 *   no Content-Length and a 205 at most `0`. Otherwise the body streams with backpressure (or
 *   comes as bytes when it was small and complete), and its length matches a Content-Length;
 *   a body that breaks errors the stream, it never just ends short.
 * - Failures reject (never a 5xx of the transport's own) with an `UpstreamError`, or an error
 *   carrying a `code`; an abort rejects with the signal's reason.
 */
export interface Transport {
  /** Implementation name for logs and benchmarks. */
  readonly name: string;
  /** One exchange with the upstream at `url` (an origin plus the raw request target). */
  fetch(url: string, init: UpstreamInit): Promise<Response>;
  /**
   * Sends a request that asks to switch protocols (`init.headers` carry Connection: upgrade and
   * Upgrade) and resolves with the 101 and the upstream connection, or the upstream's ordinary
   * answer. The connection handed over is no longer pooled.
   */
  upgrade(url: string, init: UpstreamInit): Promise<UpgradeResult>;
  /** Closes pooled connections and aborts exchanges still in flight (after the grace period). */
  close(): Promise<void>;
}

/** Idle pooled upstream connections close after this long (undici's default too), both transports. */
export const IDLE_KEEP_ALIVE_MS = 4_000;

/**
 * A transport failure with the facts the retry policy needs (proxy/retry.ts). `code` is a
 * system or protocol code (`ECONNREFUSED`, `ECONNRESET`, `UPSTREAM_INVALID_RESPONSE`...). The
 * facts, not the code, say whether the upstream can have seen the request: an EHOSTUNREACH on
 * an established connection is no connect failure.
 */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  constructor(
    message: string,
    /** Undefined when the runtime gave none (the cause may carry one: see proxy/errors.ts `errorCode`). */
    readonly code: string | undefined,
    /** What had happened on the connection when it failed. */
    readonly facts: {
      /** No connection was made: the upstream cannot have seen the request. */
      readonly connectFailed: boolean;
      /** The request went out on a pooled connection that had served an earlier one. */
      readonly reusedConnection: boolean;
      /** Some byte of the response had arrived. */
      readonly responseStarted: boolean;
    },
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
