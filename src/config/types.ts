// The configuration a user writes in routes.ts: plain types with the manual on every field.
// This file must stay self-contained (no imports): `switchyard init` copies it next to a
// routes.ts on a server so an editor can type-check it without node_modules.

/**
 * The whole switchyard configuration: the default export of `routes.ts`.
 *
 * @example
 * import type { Config } from './switchyard.d.ts';
 * export default {
 *   routes: [
 *     { host: 'sub1.xyz.com', upstream: 'http://localhost:8080' },
 *     { host: '*.xyz.com', upstream: 'http://localhost:8181' },
 *     { host: '*', upstream: 'http://localhost:8888' },
 *   ],
 * } satisfies Config;
 */
export interface Config {
  /**
   * Where to accept plain HTTP/1.1 connections: `"HOST:PORT"`, `":PORT"` (all IPv4
   * interfaces) or `"[::1]:PORT"`. Port 0 picks a free port; the first log line says which.
   * The `--listen` flag overrides this.
   * @default "0.0.0.0:80"
   */
  listen?: string;

  /**
   * The routing table. Order does not matter: for each request the most specific host wins
   * (exact, then the longest `*.suffix`, then `*`), then within that host the longest `path`
   * prefix. Two routes with the same host and path are an error.
   */
  routes: Route[];

  /**
   * Peers whose `X-Forwarded-*` and `Forwarded` headers are believed, as CIDRs or single
   * addresses (`"10.0.0.0/8"`, `"::1"`). From a trusted peer the proxy appends to
   * `X-Forwarded-For` and keeps its `X-Forwarded-Proto` / `X-Forwarded-Host`; from any other
   * peer those headers are replaced with what the proxy saw itself.
   * @default [] (trust nobody)
   */
  trustedProxies?: string[];

  /**
   * Also send the RFC 7239 `Forwarded` header (`for=...;host=...;proto=...`) upstream. From an
   * untrusted peer a client-sent `Forwarded` header is always removed, whether or not this is on.
   * @default false
   * @see https://www.rfc-editor.org/rfc/rfc7239
   */
  forwarded?: boolean;

  /** Size limits applied to every request before it is forwarded. */
  limits?: Limits;

  /** Timeouts for every route; a route's own `timeoutMs` wins over `timeouts.upstreamMs`. */
  timeouts?: Timeouts;
}

/** One route: which requests it takes (`host`, `path`) and where it sends them (`upstream`). */
export interface Route {
  /**
   * Host name(s) this route answers, matched case-insensitively with the port and a trailing
   * dot ignored:
   * - `"sub1.xyz.com"`: exactly that name;
   * - `"*.xyz.com"`: any name ending in `.xyz.com`, one label or more (`a.xyz.com`,
   *   `a.b.xyz.com`), but not `xyz.com` itself; the longest matching suffix wins;
   * - `"*"`: any host no other route takes (the catch-all).
   * Without a matching route and without `*`, the proxy answers 421 Misdirected Request.
   */
  host: string | string[];

  /**
   * Only take requests whose path starts with this prefix at a segment boundary: `"/api"`
   * takes `/api`, `/api/` and `/api/x`, not `/apix`. The longest prefix within a host wins.
   * A trailing slash is ignored. Matching uses the path with dot segments resolved and
   * percent-encoded unreserved characters decoded (`/api/../admin` is `/admin`, `/%61pi` is
   * `/api`); the request is still forwarded as sent, unless `stripPrefix` rewrites it.
   * @default "/" (every path)
   */
  path?: string;

  /**
   * Remove `path` from the request path before forwarding: with `path: "/api"`, `/api/x?q`
   * goes upstream as `/x?q` and `/api` as `/`. Has no effect without `path`.
   * @default false
   */
  stripPrefix?: boolean;

  /**
   * The upstream origin, `http://host:port` or `https://host:port`, with no path, query or
   * credentials. The request's own path and query are appended byte for byte, so a request
   * can never reach another origin. `localhost` works whether the service listens on
   * 127.0.0.1 or ::1.
   */
  upstream: string;

  /**
   * Which `Host` header the upstream sees: `"client"` passes the client's Host unchanged (what
   * a virtual-hosting backend wants); `"upstream"` sends the upstream's own `host:port`.
   * @default "client"
   */
  hostHeader?: 'client' | 'upstream';

  /**
   * How long to wait for the upstream's response headers before answering 504, in
   * milliseconds, counted from the moment the request body has been passed on (a slow upload
   * does not eat into it). Once headers arrive the body may take as long as it takes, except
   * that a body of at most 64 KiB with a Content-Length is awaited whole within this time.
   * At most 2147483647.
   * @default timeouts.upstreamMs (30000)
   */
  timeoutMs?: number;

  /**
   * Largest request body this route accepts, in bytes; larger gets 413 and nothing, or only
   * the part read so far, reaches the upstream. `null` lifts the limit for this route.
   * @default limits.maxBodyBytes
   */
  maxBodyBytes?: number | null;
}

/** Request size limits. */
export interface Limits {
  /**
   * Largest request body in bytes, for routes without their own `maxBodyBytes`; `null` means
   * no limit (bodies are streamed, never held in memory, so a large limit costs nothing).
   * A declared `Content-Length` above it is refused at once with 413; a chunked body is cut
   * with 413 when it crosses the limit.
   * @default null
   */
  maxBodyBytes?: number | null;

  /**
   * Largest total size of the request headers (names, values and line overhead), in bytes;
   * larger gets 431. At most 16384, the ceiling of Bun's and Node's HTTP parsers.
   * @default 16384
   */
  maxHeaderBytes?: number;

  /**
   * Longest request target (path and query) in bytes; longer gets 414 URI Too Long. nginx's
   * default request-line buffer is 8 KiB too.
   * @default 8192
   */
  maxUrlBytes?: number;
}

/** Timeouts. */
export interface Timeouts {
  /**
   * Default wait for an upstream's response headers, in milliseconds, before 504 (see
   * `Route.timeoutMs`). At most 2147483647.
   * @default 30000
   */
  upstreamMs?: number;

  /**
   * On SIGTERM or SIGINT the proxy stops accepting connections at once and gives requests in
   * flight this long to finish, in milliseconds, before closing what is left and exiting 0.
   * @default 10000
   */
  shutdownGraceMs?: number;
}
