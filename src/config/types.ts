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
   * Terminate TLS (HTTPS, with HTTP/2 and HTTP/1.1 offered by ALPN) on a second listener. The
   * same routes serve both listeners; certificates live on the proxy only, upstreams may stay
   * plain HTTP.
   *
   * @example
   * tls: {
   *   listen: '0.0.0.0:443',
   *   certificates: [{ cert: 'certs/xyz.pem', key: 'certs/xyz.key' }],
   *   redirectHttp: true,
   * }
   */
  tls?: TlsConfig;

  /**
   * The routing table. Order does not matter: for each request the most specific host wins
   * (exact, then the longest `*.suffix`, then `*`), then within that host the longest `path`
   * prefix. Two routes with the same host and path are an error.
   */
  routes: Route[];

  /**
   * The Redis server that rate limits with `store: 'redis'` share across switchyard
   * instances. Only those limits use it; without such a limit no connection is made.
   * @default none
   *
   * @example
   * redis: { url: 'redis://127.0.0.1:6379' }
   */
  redis?: RedisOptions;

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

  /**
   * What to do with request header fields whose name has an underscore (`X_Forwarded_For`).
   * CGI-style upstreams (PHP-FPM, WSGI, Rack) turn `-` and `_` alike into `_`, so such a field
   * aliases one the proxy sets or strips (`X-Forwarded-For`, an auth header):
   * - `"drop"`: removed before forwarding, the request goes on (nginx's default,
   *   `underscores_in_headers off`);
   * - `"reject"`: the request gets 400;
   * - `"pass"`: forwarded like any other field.
   * @default "drop"
   */
  underscoreHeaders?: 'drop' | 'reject' | 'pass';

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
   * takes `/api`, `/api/`, `/api/x` and `/API/x`, not `/apix`. The longest prefix within a host
   * wins. A trailing slash is ignored; the prefix must be in canonical form (visible ASCII,
   * escapes in uppercase hex, no unreserved character escaped, no dot or empty segments).
   * Once any route of a host has a path, every route of that host (its catch-all too) takes
   * targets in canonical form only: dot segments resolved and unreserved escapes decoded
   * (`/api/../admin` is `/admin`, `/%61pi` is `/api`), forwarded in that form; targets with
   * `%2F`, `%5C`, `\`, `;`, `#`, `//`, encoded dot segments, encoded control characters,
   * double encoding or malformed escapes get 400 (docs/paths.md). Without path routes on a
   * host, targets are forwarded as sent.
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
   * Where the route's requests go: one origin, a list of origins (round robin, a dead one
   * skipped and its requests retried on the next), or a group with a policy, health checks and
   * retries ({@link UpstreamGroup}). Each origin is `http://host:port` or `https://host:port`,
   * with no path, query or credentials (`ws://` and `wss://` are the same as `http://` and
   * `https://`: every route carries WebSockets and plain requests alike). The request's own
   * path and query are appended byte for byte, so a request can never reach an origin not
   * written here. `localhost` works whether the service listens on 127.0.0.1 or ::1.
   *
   * @example
   * upstream: 'http://localhost:8080'
   * upstream: ['http://127.0.0.1:9001', 'http://127.0.0.1:9002']
   * upstream: { targets: [{ url: 'http://127.0.0.1:9001', weight: 3 }, 'http://127.0.0.1:9002'], policy: 'least_conn' }
   */
  upstream: string | string[] | UpstreamGroup;

  /**
   * Which `Host` header the upstream sees: `"client"` passes the client's Host unchanged (what
   * a virtual-hosting backend wants); `"upstream"` sends the upstream's own `host:port`.
   * @default "client"
   */
  hostHeader?: 'client' | 'upstream';

  /**
   * How long one try waits for the upstream's response headers before answering 504 (or
   * trying the next upstream, see `UpstreamGroup.retry`), in milliseconds, counted from the
   * moment the request body has been passed on (a slow upload does not eat into it). A body of
   * at most 64 KiB with a Content-Length is awaited whole within this time too; after that
   * `bodyIdleTimeoutMs` applies. At most 2147483647.
   * @default timeouts.upstreamMs (30000)
   */
  timeoutMs?: number;

  /**
   * How long opening a connection to an upstream may take, in milliseconds (nginx's
   * proxy_connect_timeout, Caddy's dial_timeout). Past it the try fails like a refused
   * connection: the next upstream is tried, or the client gets 504.
   * @default timeouts.connectMs (5000)
   */
  connectTimeoutMs?: number;

  /**
   * How long a response body may send nothing, in milliseconds, once its headers arrived
   * (nginx's proxy_read_timeout); past it the upstream connection is cut (the client's
   * response ends broken, or gets 504 if nothing of it was sent yet). Time the client takes to
   * read does not count. Server-sent events must send something (a comment) more often.
   * `null` turns it off.
   * @default timeouts.bodyIdleMs (60000)
   */
  bodyIdleTimeoutMs?: number | null;

  /**
   * Largest request body this route accepts, in bytes; larger gets 413 and nothing, or only
   * the part read so far, reaches the upstream. `null` lifts the limit for this route.
   * @default limits.maxBodyBytes
   */
  maxBodyBytes?: number | null;

  /**
   * Send `Strict-Transport-Security` on this route's HTTPS responses (never on plain HTTP):
   * `true` is `max-age=31536000` (one year); the object form sets each part. An upstream's own
   * header is replaced.
   * @default false
   */
  hsts?: boolean | Hsts;

  /**
   * With `tls` set, whether plain-HTTP requests for this route get a 308 to `https://`.
   * `false` keeps the route reachable over plain HTTP as well.
   * @default tls.redirectHttp
   */
  redirectHttp?: boolean;

  /**
   * Security headers on every answer of this route: the upstream's, and the proxy's own (its
   * 413/502/504, a CORS preflight). `true` sends `X-Content-Type-Options: nosniff`,
   * `X-Frame-Options: SAMEORIGIN` and `Referrer-Policy: strict-origin-when-cross-origin`; the
   * object form starts from that set and changes parts of it (`false` drops one, a CSP is added
   * only when written). An upstream's own value is replaced unless `overwrite` is false.
   * Requests redirected to https:// (`redirectHttp`) get none. HSTS is `hsts`.
   * @default false (none added; the upstream's pass unchanged)
   *
   * @example
   * securityHeaders: true
   * securityHeaders: { frameOptions: 'DENY', contentSecurityPolicy: "default-src 'self'" }
   */
  securityHeaders?: boolean | SecurityHeaders;

  /**
   * Cross-origin requests from browsers (CORS), through Hono's `cors` middleware. A preflight
   * (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered by the proxy with
   * 204 and never reaches the upstream; every other request is forwarded, and its answer gets
   * `Access-Control-Allow-Origin` (when the request's Origin is allowed), the credentials and
   * expose headers, and `Vary: Origin` (unless `origin` is `"*"`). The upstream's own
   * `Access-Control-Allow-Origin`, `-Allow-Credentials` and `-Expose-Headers` are replaced.
   * @default off (requests and answers pass as they are)
   *
   * @example
   * cors: { origin: ['https://app.xyz.com', 'https://admin.xyz.com'], credentials: true, maxAgeSeconds: 600 }
   */
  cors?: Cors;

  /**
   * Credentials this route demands; a request without valid ones gets 401 with a
   * `WWW-Authenticate` challenge per kind, and nothing is forwarded. One kind, or several:
   * `{ anyOf: [...] }` passes with any one of them, `{ allOf: [...] }` needs each.
   * The `Authorization` field the route consumed is removed before forwarding unless
   * `passCredentials` is true.
   * @default none (every request passes)
   *
   * @example
   * auth: { basic: { users: { alice: '$2b$10$...' } } }      // bcrypt hashes, never plaintext
   * auth: { anyOf: [{ basic: { users } }, { bearer: { tokens: ['sha256:9f86d0...'] } }] }
   */
  auth?: AuthOption;

  /**
   * Forward the credentials `auth` consumed (`Authorization`) to the upstream too.
   * @default false
   */
  passCredentials?: boolean;

  /**
   * At most `requests` in any window of `windowSeconds` per key (a sliding window, exact): more
   * get 429 with `Retry-After` and `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`,
   * and never reach the upstream. Checked after `allow` / `deny` and before `auth`, so refused
   * guesses cost no password check (a `{ claim }` key is counted after auth). Counted in
   * memory, bounded (64 MiB per route: the least recently seen keys are forgotten first), or in
   * the top-level `redis` with `store: 'redis'`.
   * @default no limit
   *
   * @example
   * rateLimit: { requests: 100, windowSeconds: 60 }                              // per client
   * rateLimit: { requests: 1000, windowSeconds: 60, key: { header: 'x-api-key' } }
   * rateLimit: { requests: 600, windowSeconds: 60, burst: 20, key: { claim: 'sub' }, store: 'redis', onStoreDown: 'deny' }
   */
  rateLimit?: RateLimit;

  /**
   * Only clients in these networks may use this route: CIDRs or single addresses, IPv4 or IPv6
   * (`"10.0.0.0/8"`, `"192.168.1.7"`, `"2001:db8::/32"`; an IPv4-mapped IPv6 client matches its
   * IPv4 ranges). Others get 403. The client is the socket peer, or behind `trustedProxies` the
   * address they forwarded for; nothing else a client sends changes it.
   * @default every client
   */
  allow?: string[];

  /**
   * Clients in these networks get 403 on this route, whatever `allow` says (deny wins).
   * @default nobody
   */
  deny?: string[];

  /**
   * How to trust and authenticate to an `https://` upstream. Without it the system's root
   * certificates verify the upstream, by the upstream URL's host name.
   */
  upstreamTls?: UpstreamTls;

  /**
   * WebSocket tunnels: on by default for every route. An `Upgrade: websocket` request is
   * passed to the upstream with the route's headers, and after its 101 the two connections are
   * joined byte for byte. `false` forwards such requests as ordinary ones (without Upgrade).
   * @default { idleTimeoutMs: 120000, maxTunnels: 10000 }
   */
  websocket?: false | WebSocketOptions;
}

/**
 * Several upstreams behind one route: which one each request goes to (`policy`), how the proxy
 * notices a sick one (`health`, `passive`), and when a failed try goes to the next (`retry`).
 * Health is kept per route and upstream: two routes checking one address differently do not
 * share it.
 *
 * @example
 * upstream: {
 *   targets: [{ url: 'http://127.0.0.1:9001', weight: 3 }, 'http://127.0.0.1:9002'],
 *   policy: 'least_conn',
 *   health: { path: '/healthz', intervalMs: 2000 },
 *   retry: { tries: 3 },
 * }
 */
export interface UpstreamGroup {
  /** The upstreams: origins, or `{ url, weight, maxInFlight }`. At least one; no origin twice. */
  targets: (string | UpstreamTarget)[];

  /**
   * How a request picks its upstream; a retry takes the policy's next choice, never one
   * already tried, and upstreams that are down, cooling down or at `maxInFlight` are skipped.
   * - `"round_robin"`: in turn, smoothly interleaved by weight (nginx's weighted round robin);
   * - `"least_conn"`: fewest requests in flight relative to weight (ties in turn);
   * - `"random"`: at random, in proportion to weight;
   * - `"p2c"`: the less loaded (relative to weight) of two picked at random;
   * - `"first"`: the first available in the order written (ordered failover);
   * - `{ hash: "ip" | "path" }`, `{ hash: "header" | "cookie", name }`: the same key always goes
   *   to the same upstream while it is up (rendezvous hashing: adding or removing one of N
   *   upstreams moves about 1/N of the keys); a request without the header or cookie goes
   *   round robin;
   * - `{ sticky: { ... } }`: the first answer sets a cookie naming its upstream, signed with an
   *   HMAC (a client cannot forge one to pick an upstream); later requests with it go there
   *   while it is available.
   * @default "round_robin"
   */
  policy?: BalancePolicy;

  /** Active health checks: a request to each upstream on a timer. Off unless given. */
  health?: HealthCheck;

  /**
   * Passive health checks from live traffic: failed connections, timeouts and the listed
   * statuses count against an upstream; `failures` of them within `windowMs` take it out for
   * `cooldownMs`. A client that disconnects never counts. `false` turns them off.
   * @default { failures: 1, windowMs: 10000, cooldownMs: 10000, statuses: [] } with two or more targets; off with one
   */
  passive?: false | PassiveHealth;

  /** When a failed try is sent again to the next upstream. */
  retry?: RetryPolicy;
}

/** One upstream of a group. */
export interface UpstreamTarget {
  /** The origin, as in `Route.upstream`. */
  url: string;
  /**
   * Share of the requests relative to the others (round_robin, least_conn, random, p2c and the
   * hashes weigh by it). 1 to 1000.
   * @default 1
   */
  weight?: number;
  /** Requests in flight this upstream takes at once; past it the next upstream is picked (503 if none). @default no cap */
  maxInFlight?: number;
}

/** See `UpstreamGroup.policy`. */
export type BalancePolicy =
  | 'round_robin'
  | 'least_conn'
  | 'random'
  | 'p2c'
  | 'first'
  | { hash: 'ip' | 'path' }
  | { hash: 'header' | 'cookie'; name: string }
  | { sticky: StickyOptions };

/** Sticky sessions by a cookie the proxy sets. */
export interface StickyOptions {
  /** The cookie's name; its Path is the route's `path`. @default "switchyard_upstream" */
  cookie?: string;
  /**
   * The HMAC key (16 characters or more). Without it a random key is made at each start, so
   * cookies stop pinning after a restart; set one to keep them across restarts and instances.
   */
  secret?: string;
  /** The cookie's Max-Age in seconds; without it a session cookie. */
  maxAgeSeconds?: number;
  /** How a request without a valid cookie picks. @default "round_robin" */
  fallback?: 'round_robin' | 'least_conn' | 'random' | 'p2c' | 'first';
}

/** Active health checks of every upstream in a group. */
export interface HealthCheck {
  /** Request path (and query) of the check, e.g. `/healthz`. */
  path: string;
  /** @default "GET" */
  method?: 'GET' | 'HEAD';
  /** Time between checks of one upstream, in milliseconds. @default 5000 */
  intervalMs?: number;
  /** A check without a full answer within this long fails, in milliseconds. @default 2000 (at most intervalMs) */
  timeoutMs?: number;
  /** Statuses that pass, inclusive. @default [200, 399] */
  status?: [number, number];
  /** The answer's body (its first 64 KiB) must contain this text. @default no check */
  body?: string;
  /** Passing checks in a row that bring a down upstream back. @default 1 */
  rise?: number;
  /** Failing checks in a row that take an upstream out. @default 1 */
  fall?: number;
  /** The check's Host header. @default the upstream's own host:port */
  host?: string;
  /**
   * Each wait between checks is shortened by a random amount up to this, so checks of many
   * upstreams do not align, in milliseconds.
   * @default intervalMs / 10
   */
  jitterMs?: number;
}

/** Passive health checks (see `UpstreamGroup.passive`). */
export interface PassiveHealth {
  /** Failures within `windowMs` that put an upstream in cool-down. @default 1 */
  failures?: number;
  /** @default 10000 */
  windowMs?: number;
  /** How long a failing upstream is left out, in milliseconds; it comes back by itself (or at its next passing active check). @default 10000 */
  cooldownMs?: number;
  /** Upstream statuses that count as failures (e.g. `[502, 503, 504]`). @default [] */
  statuses?: number[];
}

/**
 * Retries on the next upstream. A try that failed before anything reached the upstream
 * (refused, unreachable, connect timeout) is retried for every method, POST included. Once the
 * request went out, only idempotent methods (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) are, when
 * the connection failed before a response head arrived, when the head timed out (`onTimeout`),
 * and on `statuses`. A request body is only sent twice if it was kept whole for replay.
 */
export interface RetryPolicy {
  /** Tries in all, the first included, each on another upstream (so at most the number of targets); 1 turns retries off. @default the number of targets */
  tries?: number;
  /**
   * No new try starts this long after the first began, in milliseconds (a try under way is
   * not cut short: its own timeouts apply). The default lets a request that met one hung
   * upstream (a whole `timeoutMs`) still be tried on the next.
   * @default twice the route's timeoutMs
   */
  tryDurationMs?: number;
  /** Upstream statuses that send an idempotent request to the next upstream (the last try's answer is passed on). @default [] */
  statuses?: number[];
  /** Retry an idempotent request whose response head timed out. @default true */
  onTimeout?: boolean;
  /**
   * Request bodies declaring at most this many bytes (Content-Length) are read whole before
   * the first try so they can be sent again; larger and chunked bodies stream and are never
   * sent twice. 0 keeps none.
   * @default 65536
   */
  replayBodyBytes?: number;
}

/** A route's WebSocket tunnels. */
export interface WebSocketOptions {
  /**
   * Close a tunnel after this long without a byte either way, in milliseconds. Long enough for
   * apps that ping every 30 s; at most 2147483647.
   * @default 120000
   */
  idleTimeoutMs?: number;
  /**
   * Open tunnels this route allows at once; past it an upgrade gets 503.
   * @default 10000
   */
  maxTunnels?: number;
}

/** The TLS listener and its certificates. */
export interface TlsConfig {
  /**
   * Where to accept TLS connections, `"HOST:PORT"` like `listen`. Port 0 picks a free port;
   * its own `listening` log line says which.
   * @default "0.0.0.0:443"
   */
  listen?: string;

  /**
   * Certificate chains and their keys, as PEM files (paths relative to the routes file).
   * Each serves the names in its subjectAltName (wildcards included); a handshake gets the
   * exact name first, then a wildcard, then the first certificate here (also the one for
   * clients without SNI). A chain file (leaf, then intermediates) is served whole. Files are
   * watched: a changed pair is served to new handshakes within about a second (SIGHUP
   * reloads at once); a broken one is logged and the old pair keeps serving.
   */
  certificates: CertificateFiles[];

  /**
   * Answer plain-HTTP requests with 308 to the same path and query on `https://`, except
   * `/.well-known/acme-challenge/`. A route's own `redirectHttp` wins.
   * @default true
   */
  redirectHttp?: boolean;

  /** Ask clients for a certificate issued by `ca`; its verified subject is passed on. */
  clientAuth?: ClientAuth;
}

/** One certificate pair. */
export interface CertificateFiles {
  /** PEM certificate chain: the leaf first, then intermediates. */
  cert: string;
  /** PEM private key of the leaf, unencrypted. */
  key: string;
}

/** Client certificates on the TLS listener. */
export interface ClientAuth {
  /** PEM bundle of the CAs whose client certificates are accepted. */
  ca: string;
  /**
   * `true`: a client without a valid certificate is refused at the handshake. `false`: it is
   * served, without a verified subject.
   * @default true
   */
  required?: boolean;
  /**
   * Send the verified client certificate's subject (`CN=client,O=Example`) upstream in this
   * header. A client's own copy of the header is always removed.
   */
  header?: string;
}

/** `Strict-Transport-Security` parts (RFC 6797). */
export interface Hsts {
  /** @default 31536000 (one year) */
  maxAge?: number;
  /** @default false */
  includeSubDomains?: boolean;
  /** @default false */
  preload?: boolean;
}

/**
 * A route's security headers (see `Route.securityHeaders`); each field left out keeps the
 * default, `false` sends no such header.
 */
export interface SecurityHeaders {
  /**
   * `X-Content-Type-Options: nosniff`: browsers use the Content-Type as sent and never guess
   * another (a text file run as a script).
   * @default true
   * @see https://fetch.spec.whatwg.org/#x-content-type-options-header
   */
  contentTypeOptions?: boolean;
  /**
   * `X-Frame-Options`: which pages may show this route's in a frame (clickjacking): `"DENY"`
   * none, `"SAMEORIGIN"` those of the same origin. A CSP's `frame-ancestors` supersedes it in
   * current browsers.
   * @default "SAMEORIGIN"
   * @see https://www.rfc-editor.org/rfc/rfc7034
   */
  frameOptions?: 'DENY' | 'SAMEORIGIN' | false;
  /**
   * `Referrer-Policy`: how much of the page's URL a browser sends as `Referer` when leaving it.
   * @default "strict-origin-when-cross-origin" (the full URL within the origin, the origin alone to others over HTTPS, nothing to HTTP)
   * @see https://www.w3.org/TR/referrer-policy/#referrer-policies
   */
  referrerPolicy?: ReferrerPolicy | false;
  /**
   * `Content-Security-Policy`, sent as written (`"default-src 'self'; img-src *"`): one line of
   * visible ASCII characters and spaces.
   * @default none
   * @see https://www.w3.org/TR/CSP3/
   */
  contentSecurityPolicy?: string;
  /**
   * `Content-Security-Policy-Report-Only`, as written: a policy browsers report on without
   * enforcing it, to try one before `contentSecurityPolicy`.
   * @default none
   */
  contentSecurityPolicyReportOnly?: string;
  /**
   * `Permissions-Policy`, as written (`"camera=(), geolocation=()"`).
   * @default none
   * @see https://www.w3.org/TR/permissions-policy/
   */
  permissionsPolicy?: string;
  /**
   * `true` replaces an upstream's own value of these headers (Caddy's `header`); `false` only
   * adds those the upstream did not send (Caddy's `?`), so an app's own CSP wins.
   * @default true
   */
  overwrite?: boolean;
}

/** A `Referrer-Policy` token (W3C Referrer Policy §3). */
export type ReferrerPolicy =
  | 'no-referrer'
  | 'no-referrer-when-downgrade'
  | 'same-origin'
  | 'origin'
  | 'strict-origin'
  | 'origin-when-cross-origin'
  | 'strict-origin-when-cross-origin'
  | 'unsafe-url';

/**
 * A route's CORS settings (see `Route.cors`), Hono's `cors` options with checks: an origin
 * list instead of `"*"` with `credentials`, method and header names that are tokens.
 * @see https://fetch.spec.whatwg.org/#http-cors-protocol
 */
export interface Cors {
  /**
   * The origins whose pages may read this route's answers: `"*"` (any page, and then no
   * credentials), one origin or a list. An origin is written as browsers send it in `Origin`:
   * scheme, host, and the port unless it is the scheme's default, lowercase, no path or
   * trailing slash (`"https://app.xyz.com"`, `"http://localhost:5173"`). Compared exactly.
   */
  origin: string | string[];
  /**
   * `Access-Control-Allow-Methods` on preflights. Methods are case-sensitive: write the
   * standard ones uppercase. `"*"` (any method) only without `credentials`.
   * @default ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH"]
   */
  allowMethods?: string[];
  /**
   * `Access-Control-Allow-Headers` on preflights: the request headers a page may send beyond
   * the CORS-safelisted ones. `"*"` only without `credentials`. At least one when given.
   * @default the headers the preflight asks for (its Access-Control-Request-Headers, reflected)
   */
  allowHeaders?: string[];
  /**
   * `Access-Control-Expose-Headers`: the answer's headers a page may read beyond the
   * CORS-safelisted ones (`Content-Type`, `Content-Length`...). `"*"` only without `credentials`.
   * @default [] (none)
   */
  exposeHeaders?: string[];
  /**
   * `Access-Control-Max-Age`: how long a browser may reuse a preflight's answer, in seconds,
   * 0 to 86400 (Firefox caps it at 86400, Chromium at 7200).
   * @default none (browsers then keep it 5 seconds)
   */
  maxAgeSeconds?: number;
  /**
   * `Access-Control-Allow-Credentials: true`: pages may send cookies and HTTP authentication
   * and read the answers. Needs `origin` to list origins, not `"*"`.
   * @default false
   */
  credentials?: boolean;
}

/** TLS to an `https://` upstream. */
export interface UpstreamTls {
  /** PEM bundle of the CAs trusted for this upstream, instead of the system roots. */
  ca?: string;
  /** SNI and the name the upstream's certificate must carry. @default the upstream URL's host */
  serverName?: string;
  /** Client certificate (PEM) shown to the upstream; needs `key`. */
  cert?: string;
  /** Private key (PEM) of `cert`. */
  key?: string;
  /**
   * Do not verify the upstream's certificate at all. Logged as a warning at every start.
   * @default false
   */
  insecure?: boolean;
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

  /**
   * A request head must arrive whole within this long, in milliseconds, counted from its first
   * byte (for a connection's first request, from the connection's start); else 408 and close.
   * @default 30000
   */
  headerTimeoutMs?: number;

  /**
   * A request body that sends nothing the proxy asked for this long, in milliseconds, is cut
   * with 408 (nginx's client_body_timeout).
   * @default 60000
   */
  bodyTimeoutMs?: number;

  /**
   * Once the proxy has waited 10 s (or `bodyTimeoutMs`, if shorter) for a body's bytes, the body must have averaged at least this
   * many bytes per second of that waiting, or it is cut with 408 (a body sending one byte every
   * few seconds resets any idle timeout; this catches it). Time the upstream takes to read does
   * not count. 0 turns the check off.
   * @default 500
   */
  bodyMinBytesPerSecond?: number;

  /**
   * A keep-alive connection with no request for this long, in milliseconds, is closed.
   * @default 5000
   */
  idleTimeoutMs?: number;

  /**
   * A client that takes none of the bytes waiting for it for this long, in milliseconds, is
   * cut (nginx's send_timeout). A slow reader is served at its own pace meanwhile.
   * @default 60000
   */
  sendTimeoutMs?: number;

  /**
   * Open client connections across all listeners; past it new connections get a 503 (plain
   * HTTP) or are closed (TLS), logged once per 10 s with a count.
   * @default 10000
   */
  maxConnections?: number;

  /**
   * Open client connections from one address; past it that address's new connections are
   * refused like above. Clients behind one NAT share an address.
   * @default 1000
   */
  maxConnectionsPerIp?: number;
}

/** Timeouts. */
export interface Timeouts {
  /**
   * Default wait for an upstream's response headers, in milliseconds, before 504 (see
   * `Route.timeoutMs`). At most 2147483647.
   * @default 30000
   */
  upstreamMs?: number;

  /** Default `Route.connectTimeoutMs`, in milliseconds. @default 5000 */
  connectMs?: number;

  /** Default `Route.bodyIdleTimeoutMs`, in milliseconds; `null` turns it off. @default 60000 */
  bodyIdleMs?: number | null;

  /**
   * On SIGTERM or SIGINT the proxy stops accepting connections at once and gives requests in
   * flight this long to finish, in milliseconds, before closing what is left and exiting 0.
   * @default 10000
   */
  shutdownGraceMs?: number;
}

/** A route's `auth`: one kind, or a combination. */
export type AuthOption = Auth | { anyOf: Auth[] } | { allOf: Auth[] };

/** One kind of credentials. */
export type Auth = { basic: BasicAuth } | { bearer: BearerAuth } | { jwt: JwtAuth } | { forward: ForwardAuth };

/** HTTP Basic (RFC 7617) against bcrypt hashes. */
export interface BasicAuth {
  /**
   * User names and their bcrypt hashes (`$2a$`, `$2b$` or `$2y$`, as `htpasswd -B` or
   * `bcrypt.hash` write them): `check` refuses anything else, a plaintext password included.
   * A successful check is remembered for 60 s (keyed by an HMAC of name and password, never
   * the password), since bcrypt is slow on purpose. A failed one is logged, without the password.
   * @default none (then `file` names them)
   */
  users?: Record<string, string>;
  /**
   * An htpasswd file (relative to routes.ts) of `name:hash` lines, bcrypt only (`htpasswd -B`);
   * read and checked at load. A name in both this and `users` takes `users`' hash.
   * @default none
   */
  file?: string;
  /** The realm of the challenge. @default "switchyard" */
  realm?: string;
}

/** `Authorization: Bearer <token>` against static tokens. */
export interface BearerAuth {
  /**
   * Accepted tokens: each as `sha256:<64 hex digits>` (its SHA-256, so routes.ts holds no
   * secret) or as the token itself. Compared in constant time.
   */
  tokens: string[];
  /** The realm of the challenge. @default "switchyard" */
  realm?: string;
}

/**
 * A JWT in `Authorization: Bearer` (or in `cookie`), verified against exactly one of `key`,
 * `secret` or `jwksUrl`. `alg: none` never verifies, and the algorithms are pinned.
 */
export interface JwtAuth {
  /**
   * A public key: a PEM file (`keys/hooks-public.pem`, relative to routes.ts) or a JWK file
   * (`.json`), or the PEM or JWK text itself. Read and checked at load.
   */
  key?: string;
  /** An HMAC secret (HS256 by default), at least 32 characters. */
  secret?: string;
  /**
   * A JWKS URL. Keys are cached (10 minutes); a token whose `kid` is unknown refetches the set,
   * at most once a second, so a rotated key is picked up at once.
   */
  jwksUrl?: string;
  /** `iss` must be this (or one of these). @default not checked */
  issuer?: string | string[];
  /** `aud` must name this (or one of these). @default not checked */
  audience?: string | string[];
  /**
   * The accepted `alg` values. Never `none`; HS* only with `secret`.
   * @default the one the key implies (RSA: RS256, EC: ES256/384/512 by curve, Ed25519: EdDSA); HS256 with `secret`; every asymmetric one with `jwksUrl`
   */
  algorithms?: JwsAlgorithm[];
  /** Allowance for `exp` and `nbf` between clocks, in seconds. @default 30 */
  clockSkewSeconds?: number;
  /**
   * Claims forwarded as request fields, e.g. `{ sub: 'x-user' }`. A client's own copies of
   * those fields are always removed. Non-string claims travel as JSON.
   * @default none
   */
  claimsToHeaders?: Record<string, string>;
  /** Read the token from this cookie instead of `Authorization`. @default Authorization */
  cookie?: string;
  /** The realm of the challenge. @default "switchyard" */
  realm?: string;
}

/** The JWS algorithms `jwt.algorithms` may pin (RFC 7518, RFC 8037). */
export type JwsAlgorithm =
  | 'HS256'
  | 'HS384'
  | 'HS512'
  | 'RS256'
  | 'RS384'
  | 'RS512'
  | 'PS256'
  | 'PS384'
  | 'PS512'
  | 'ES256'
  | 'ES384'
  | 'ES512'
  | 'EdDSA'
  | 'Ed25519';

/**
 * Ask an auth service (Caddy's forward_auth, nginx's auth_request): it gets `GET url` with the
 * client's request fields (no body) and `X-Forwarded-Method`, `-Uri`, `-Host`, `-Proto`, `-For`.
 * Its 2xx lets the request through; any other answer goes back to the client as it is. A
 * timeout is a 504 and an unreachable service a 502: the request never passes unchecked.
 */
export interface ForwardAuth {
  /** The auth service's URL (`http://localhost:9100/verify`). */
  url: string;
  /** Fields of the service's 2xx set on the forwarded request (`['x-user']`); a client's own copies are removed. @default none */
  copyHeaders?: string[];
  /** How long the service may take to answer, in milliseconds. @default 5000 */
  timeoutMs?: number;
}

/** A route's request rate limit. */
export interface RateLimit {
  /** Requests allowed in any window (1-1,000,000). */
  requests: number;
  /** The window, in seconds (1-86,400). */
  windowSeconds: number;
  /**
   * What is counted: each client (the client identity, `trustedProxies` aware), the route as a
   * whole, each value of a request field, or each value of a claim of the route's verified JWT
   * (requests without the field or claim count as their client).
   * @default "client"
   */
  key?: 'client' | 'route' | { header: string } | { claim: string };
  /**
   * A second rule on top of the window: a token bucket of `burst` requests, refilled at
   * `requests / windowSeconds` per second. Without it a client may spend the whole window's
   * `requests` in its first second; with it at most `burst` at once, then the average rate
   * (nginx's `limit_req rate=... burst=... nodelay`). 1 to `requests`.
   * @default no bucket: only the window
   */
  burst?: number;
  /**
   * Where the counts live: this process's memory, or the top-level `redis`, so several
   * switchyard instances enforce one shared limit (one atomic Lua script per request).
   * @default "memory"
   */
  store?: 'memory' | 'redis';
  /**
   * With `store: 'redis'`, what happens while Redis cannot answer within its
   * `commandTimeoutMs`: `'allow'` lets requests through uncounted (fail open), `'deny'` answers
   * them 503 (fail closed). Either way it is logged once per 10 s, and counting resumes when
   * Redis is back.
   * @default "allow"
   */
  onStoreDown?: 'allow' | 'deny';
}

/** The Redis server rate limits with `store: 'redis'` share. */
export interface RedisOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS). */
  url: string;
  /**
   * How long a request may wait for Redis before `onStoreDown` decides for it, in
   * milliseconds. Commands are never queued while Redis is away: they fail at once.
   * @default 50
   */
  commandTimeoutMs?: number;
  /** Put before every key switchyard writes, so one Redis can serve other programs too. @default "switchyard:" */
  keyPrefix?: string;
}
