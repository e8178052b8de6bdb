// Turns a validated Config into the tables the request path reads: done once per load, so the
// per-request work is lookups, never parsing. Pure: no I/O, no clock.
import { type CompiledAuth, compileAuth } from '../access/auth.ts';
import type { RateRule } from '../access/rate-limit.ts';
import type { RedisSettings } from '../access/redis-store.ts';
import { compileCidrMatcher } from '../proxy/cidr.ts';
import { type CompiledCors, compileCors } from '../proxy/cors.ts';
import { type CompiledSecurityHeaders, compileSecurityHeaders } from '../proxy/security-headers.ts';
import { compileRouteTable, type RouteTable } from '../router/table.ts';
import { type ClientLimits, DEFAULT_CLIENT_LIMITS } from '../server/limits.ts';
import type { UpstreamTlsOptions } from '../transport/types.ts';
import { normalizePath, upstreamOrigins } from './schema.ts';
import { NO_TLS_FILES, type TlsFiles } from './tls-files.ts';
import type { Config, Route, UpstreamGroup } from './types.ts';

export const DEFAULT_LISTEN = '0.0.0.0:80';
export const DEFAULT_TLS_LISTEN = '0.0.0.0:443';
/** One year, what `hsts: true` sends (and what hstspreload.org asks for). */
export const HSTS_DEFAULT_MAX_AGE = 31_536_000;
export const DEFAULTS = {
  upstreamMs: 30_000,
  shutdownGraceMs: 10_000,
  maxHeaderBytes: 16_384,
  maxUrlBytes: 8192,
  tunnelIdleMs: 120_000,
  maxTunnels: 10_000,
  connectMs: 5_000,
  bodyIdleMs: 60_000,
  healthIntervalMs: 5_000,
  healthTimeoutMs: 2_000,
  passiveFailures: 1,
  passiveWindowMs: 10_000,
  passiveCooldownMs: 10_000,
  replayBodyBytes: 65_536,
  stickyCookie: 'switchyard_upstream',
} as const;

/** One upstream of a route's group, pre-split like a single upstream. */
export interface CompiledTarget extends CompiledUpstream {
  /** Position in the group's `targets`, as written. */
  readonly index: number;
  readonly weight: number;
  /** Requests in flight it takes at once; Infinity without a cap. */
  readonly maxInFlight: number;
}

/** How a group picks (config's `BalancePolicy`, tagged). */
export type CompiledPolicy =
  | { readonly kind: 'round_robin' | 'least_conn' | 'random' | 'p2c' | 'first' }
  | { readonly kind: 'hash'; readonly by: 'ip' | 'path' | 'header' | 'cookie'; readonly name: string }
  | {
      readonly kind: 'sticky';
      readonly cookie: string;
      /** The cookie's Path: the route's prefix, so two routes of one host keep their own pins. */
      readonly path: string;
      /** Null: the process's own random key. */
      readonly secret: string | null;
      readonly maxAgeSeconds: number | null;
      readonly fallback: 'round_robin' | 'least_conn' | 'random' | 'p2c' | 'first';
    };

export interface CompiledHealth {
  readonly method: 'GET' | 'HEAD';
  readonly path: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly statusFrom: number;
  readonly statusTo: number;
  readonly body: string | null;
  readonly rise: number;
  readonly fall: number;
  /** Null: each upstream's own host:port. */
  readonly host: string | null;
  readonly jitterMs: number;
}

export interface CompiledPassive {
  readonly failures: number;
  readonly windowMs: number;
  readonly cooldownMs: number;
  readonly statuses: ReadonlySet<number>;
}

export interface CompiledRetry {
  readonly tries: number;
  readonly tryDurationMs: number;
  readonly statuses: ReadonlySet<number>;
  readonly onTimeout: boolean;
  readonly replayBodyBytes: number;
}

/** Several upstreams, or one with health checks or a cap: what the balancer (src/balancer/) works from. */
export interface CompiledGroup {
  readonly targets: readonly CompiledTarget[];
  readonly policy: CompiledPolicy;
  readonly health: CompiledHealth | null;
  readonly passive: CompiledPassive | null;
  readonly retry: CompiledRetry;
  /**
   * The group's settings as text: a reload keeps a route's upstream health when its key and
   * this are unchanged.
   */
  readonly signature: string;
}

/** A route's WebSocket tunnels. */
export interface CompiledWebSocket {
  /** Close a tunnel after this long without a byte either way. */
  readonly idleMs: number;
  /** Open tunnels the route allows at once. */
  readonly maxTunnels: number;
}

/** An upstream origin, pre-split for the request path. */
export interface CompiledUpstream {
  /** `http://localhost:8080`, to which the raw request target is appended. */
  readonly origin: string;
  /** `localhost:8080`: the Host value when a route sends the upstream's own host. */
  readonly hostPort: string;
  /** The route's `upstreamTls`, read and frozen once (https: upstreams only). */
  readonly tls?: UpstreamTlsOptions;
}

/** A route with every default applied. */
export interface CompiledRoute {
  /** `routes[3]`, for messages: where the route is written. */
  readonly id: string;
  /**
   * What the route matches, stable across reloads and insertions: its hosts lowercased as
   * written, sorted, joined by `,`, then its normalised path prefix (`"sub1.xyz.com/"`,
   * `"*.xyz.com/api"`). Unique, since validation refuses two routes with one host and path.
   * Per-route state (health, limits, cache) is kept by this, never by position.
   */
  readonly key: string;
  readonly hosts: readonly string[];
  readonly prefix: string;
  /** Characters to cut from the start of the target; 0 when the prefix is kept. */
  readonly stripLength: number;
  /** The upstream of a single-upstream route; a group's first target. */
  readonly upstream: CompiledUpstream;
  /** Null for a single upstream without health checks or a cap (the plain path, no balancer). */
  readonly group: CompiledGroup | null;
  readonly sendUpstreamHost: boolean;
  /** Response-head timeout of one try. */
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  /** Null: off. */
  readonly bodyIdleTimeoutMs: number | null;
  readonly maxBodyBytes: number | null;
  /** The `Strict-Transport-Security` value for HTTPS responses, or null. */
  readonly hsts: string | null;
  /** Plain-HTTP requests get a 308 to https:// (only with a TLS listener). */
  readonly redirectHttp: boolean;
  /** Headers set on every answer of the route (proxy/security-headers.ts), or null. */
  readonly securityHeaders: CompiledSecurityHeaders | null;
  /** CORS, with its Hono middleware built once (proxy/cors.ts), or null. */
  readonly cors: CompiledCors | null;
  /** `auth` compiled (access/auth.ts), or null. */
  readonly auth: CompiledAuth | null;
  /** Request fields removed before forwarding: what `auth` consumed, unless `passCredentials`. */
  readonly dropFields: readonly string[];
  /** Cookies the route's auth consumed (a JWT in a cookie), removed from `Cookie` before forwarding. */
  readonly dropCookies: readonly string[];
  /** `rateLimit`: its rule and what it counts by, or null. */
  readonly rateLimit: CompiledRateLimit | null;
  /** `allow` / `deny`: true for a client the route refuses (403), or null when it refuses none. */
  readonly refusesClient: ((client: string) => boolean) | null;
  /** WebSocket tunnels, or null when the route forwards upgrades as ordinary requests. */
  readonly websocket: CompiledWebSocket | null;
}

/** The TLS listener's settings; its certificates live in the certificate store (src/tls/store.ts). */
export interface CompiledTls {
  readonly listen: ListenAddress;
  /** Client certificates: asked for, required or not, and the header their subject goes upstream in. */
  readonly clientAuth: { readonly ca: string; readonly required: boolean; readonly header: string | null } | null;
}

export interface ListenAddress {
  readonly hostname: string;
  readonly port: number;
}

export interface CompiledConfig {
  readonly listen: ListenAddress;
  /** Null without a `tls` section. */
  readonly tls: CompiledTls | null;
  readonly routes: readonly CompiledRoute[];
  /** The top-level `redis` for `store: 'redis'` limits; null without one. */
  readonly redis: RedisSettings | null;
  readonly table: RouteTable<CompiledRoute>;
  readonly isTrustedPeer: (address: string) => boolean;
  readonly forwarded: boolean;
  /** `underscoreHeaders`: what happens to request fields named with `_`. */
  readonly underscoreHeaders: 'drop' | 'reject' | 'pass';
  readonly maxHeaderBytes: number;
  readonly maxUrlBytes: number;
  readonly shutdownGraceMs: number;
  /** The listeners' timeouts and connection caps, defaults applied. */
  readonly clientLimits: ClientLimits;
}

/** `"127.0.0.1:8080"`, `":80"`, `"[::1]:0"` -> hostname and port. Validated by the schema. */
export function parseListen(value: string): ListenAddress {
  const colon = value.lastIndexOf(':');
  let hostname = value.slice(0, colon);
  if (hostname.startsWith('[')) hostname = hostname.slice(1, -1);
  return { hostname: hostname || '0.0.0.0', port: Number(value.slice(colon + 1)) };
}

/** `ws:` and `wss:` upstreams are `http:` and `https:` ones: a WebSocket starts as an HTTP request. */
const HTTP_SCHEME: Readonly<Record<string, string>> = { 'ws:': 'http:', 'wss:': 'https:' };

export function compileUpstream(value: string): CompiledUpstream {
  const url = new URL(value);
  const scheme = HTTP_SCHEME[url.protocol];
  return { origin: scheme === undefined ? url.origin : `${scheme}//${url.host}`, hostPort: url.host };
}

const positive = (value: number | undefined, fallback: number) => (value === undefined ? fallback : value);

/** A route's `upstream` in its one compiled shape, or null when it is a single plain upstream. */
export function compileGroup(upstream: Route['upstream'], tls: UpstreamTlsOptions | undefined, timeoutMs: number, prefix = '/'): CompiledGroup | null {
  const spec = typeof upstream === 'string' ? { targets: [upstream] } : Array.isArray(upstream) ? { targets: upstream } : upstream;
  const targets = spec.targets.map((target, index): CompiledTarget => {
    const t = typeof target === 'string' ? { url: target } : target;
    return { ...compileUpstream(t.url), tls, index, weight: t.weight ?? 1, maxInFlight: t.maxInFlight ?? Number.POSITIVE_INFINITY };
  });
  const capped = targets.some((t) => t.maxInFlight !== Number.POSITIVE_INFINITY);
  const several = targets.length > 1;
  if (!several && !capped && spec.health === undefined && (spec.passive === undefined || spec.passive === false)) return null;
  const policy = compilePolicy(spec.policy, prefix);
  const h = spec.health;
  const intervalMs = h?.intervalMs ?? DEFAULTS.healthIntervalMs;
  const health: CompiledHealth | null =
    h === undefined
      ? null
      : {
          method: h.method ?? 'GET',
          path: h.path,
          intervalMs,
          timeoutMs: Math.min(h.timeoutMs ?? DEFAULTS.healthTimeoutMs, intervalMs),
          statusFrom: h.status?.[0] ?? 200,
          statusTo: h.status?.[1] ?? 399,
          body: h.body ?? null,
          rise: h.rise ?? 1,
          fall: h.fall ?? 1,
          host: h.host ?? null,
          jitterMs: Math.min(h.jitterMs ?? Math.round(intervalMs / 10), intervalMs - 1),
        };
  // Passive checks are on by default only with somewhere else to go: a single upstream taken
  // out would turn every request into a 503 (nginx ignores max_fails with one server too).
  const p = spec.passive;
  const passive: CompiledPassive | null =
    p === false || (p === undefined && !several)
      ? null
      : {
          failures: positive(p?.failures, DEFAULTS.passiveFailures),
          windowMs: positive(p?.windowMs, DEFAULTS.passiveWindowMs),
          cooldownMs: positive(p?.cooldownMs, DEFAULTS.passiveCooldownMs),
          statuses: new Set(p?.statuses ?? []),
        };
  const r = spec.retry;
  const retry: CompiledRetry = {
    tries: Math.min(r?.tries ?? targets.length, targets.length),
    tryDurationMs: r?.tryDurationMs ?? 2 * timeoutMs,
    statuses: new Set(r?.statuses ?? []),
    onTimeout: r?.onTimeout ?? true,
    replayBodyBytes: r?.replayBodyBytes ?? DEFAULTS.replayBodyBytes,
  };
  const signature = JSON.stringify({
    targets: targets.map((t) => [t.origin, t.weight, t.maxInFlight]),
    // The checks' TLS settings too: a reload that changes the upstream CA must check with the new one.
    tls: tls ?? null,
    policy,
    health,
    passive: passive && { ...passive, statuses: [...passive.statuses] },
  });
  return { targets, policy, health, passive, retry, signature };
}

function compilePolicy(policy: UpstreamGroup['policy'], prefix: string): CompiledPolicy {
  if (policy === undefined) return { kind: 'round_robin' };
  if (typeof policy === 'string') return { kind: policy };
  // Header names are case-insensitive (looked up lowercased); cookie names are not (RFC 6265).
  if ('hash' in policy)
    return { kind: 'hash', by: policy.hash, name: 'name' in policy ? (policy.hash === 'header' ? policy.name.toLowerCase() : policy.name) : '' };
  const sticky = policy.sticky;
  return {
    kind: 'sticky',
    cookie: sticky.cookie ?? DEFAULTS.stickyCookie,
    path: prefix,
    secret: sticky.secret ?? null,
    maxAgeSeconds: sticky.maxAgeSeconds ?? null,
    fallback: sticky.fallback ?? 'round_robin',
  };
}

/** A route's `key` from its hosts and normalised prefix. */
export function routeKey(hosts: readonly string[], prefix: string): string {
  const names = hosts.map((host) => host.toLowerCase()).sort();
  return names.join(',') + prefix;
}

/** `hsts` as the header value, or null. */
export function hstsValue(hsts: Route['hsts']): string | null {
  if (hsts === undefined || hsts === false) return null;
  if (hsts === true) return `max-age=${HSTS_DEFAULT_MAX_AGE}`;
  let value = `max-age=${hsts.maxAge ?? HSTS_DEFAULT_MAX_AGE}`;
  if (hsts.includeSubDomains) value += '; includeSubDomains';
  if (hsts.preload) value += '; preload';
  return value;
}

/**
 * `files` holds what the TLS settings name, read from disk (config/tls-files.ts); a config
 * with TLS settings compiled without them gets no upstream CA and no client-certificate CA.
 */
export function compileConfig(config: Config, files: TlsFiles = NO_TLS_FILES): CompiledConfig {
  const globalMaxBody = config.limits?.maxBodyBytes ?? null;
  const tls = config.tls;
  const redirectDefault = tls !== undefined && (tls.redirectHttp ?? true);
  const upstreamMs = config.timeouts?.upstreamMs ?? DEFAULTS.upstreamMs;
  const connectMs = config.timeouts?.connectMs ?? DEFAULTS.connectMs;
  const bodyIdleMs = config.timeouts?.bodyIdleMs === undefined ? DEFAULTS.bodyIdleMs : config.timeouts.bodyIdleMs;
  const redis = compileRedis(config.redis);
  const routes = config.routes.map((route, i): CompiledRoute => {
    const prefix = normalizePath(route.path);
    const hosts = Array.isArray(route.host) ? route.host : [route.host];
    const upstreamTls = files.upstreamTls.get(i);
    const timeoutMs = route.timeoutMs ?? upstreamMs;
    const group = compileGroup(route.upstream, upstreamTls, timeoutMs, prefix);
    const auth = compileAuth(route.auth, files.jwtKeys.get(i), files.htpasswd.get(i));
    return {
      id: `routes[${i}]`,
      key: routeKey(hosts, prefix),
      hosts,
      prefix,
      stripLength: route.stripPrefix && prefix !== '/' ? prefix.length : 0,
      upstream: group === null ? { ...compileUpstream(upstreamOrigins(route.upstream)[0] as string), tls: upstreamTls } : (group.targets[0] as CompiledTarget),
      group,
      sendUpstreamHost: route.hostHeader === 'upstream',
      timeoutMs,
      connectTimeoutMs: route.connectTimeoutMs ?? connectMs,
      bodyIdleTimeoutMs: route.bodyIdleTimeoutMs === undefined ? bodyIdleMs : route.bodyIdleTimeoutMs,
      maxBodyBytes: route.maxBodyBytes === undefined ? globalMaxBody : route.maxBodyBytes,
      hsts: tls === undefined ? null : hstsValue(route.hsts),
      redirectHttp: tls !== undefined && (route.redirectHttp ?? redirectDefault),
      securityHeaders: compileSecurityHeaders(route.securityHeaders),
      cors: route.cors === undefined ? null : compileCors(route.cors),
      refusesClient: compileIpRules(route.allow, route.deny),
      rateLimit: compileRateLimit(route.rateLimit, redis),
      auth,
      // A client's own copies of the fields a success sets are dropped too.
      dropFields: auth === null ? [] : [...(route.passCredentials === true ? [] : auth.consumes), ...(auth.setsFields ?? [])],
      dropCookies: auth === null || route.passCredentials === true ? [] : (auth.consumesCookies ?? []),
      websocket:
        route.websocket === false
          ? null
          : { idleMs: route.websocket?.idleTimeoutMs ?? DEFAULTS.tunnelIdleMs, maxTunnels: route.websocket?.maxTunnels ?? DEFAULTS.maxTunnels },
    };
  });
  const clientAuth = tls?.clientAuth;
  return {
    listen: parseListen(config.listen ?? DEFAULT_LISTEN),
    tls:
      tls === undefined
        ? null
        : {
            listen: parseListen(tls.listen ?? DEFAULT_TLS_LISTEN),
            clientAuth:
              clientAuth === undefined
                ? null
                : { ca: files.clientCa ?? '', required: clientAuth.required ?? true, header: clientAuth.header?.toLowerCase() ?? null },
          },
    routes,
    redis,
    table: compileRouteTable(routes),
    isTrustedPeer: compileCidrMatcher(config.trustedProxies ?? []),
    forwarded: config.forwarded ?? false,
    underscoreHeaders: config.underscoreHeaders ?? 'drop',
    maxHeaderBytes: config.limits?.maxHeaderBytes ?? DEFAULTS.maxHeaderBytes,
    maxUrlBytes: config.limits?.maxUrlBytes ?? DEFAULTS.maxUrlBytes,
    shutdownGraceMs: config.timeouts?.shutdownGraceMs ?? DEFAULTS.shutdownGraceMs,
    clientLimits: clientLimits(config.limits),
  };
}

/**
 * A route's rate limit as settings; the counts live in access/limiters.ts, outside the config.
 * The key is the client (header and claim null, perRoute false), the route, a request field's
 * value or a verified JWT claim's value.
 */
export interface CompiledRateLimit extends RateRule {
  readonly store: 'memory' | 'redis';
  readonly onStoreDown: 'allow' | 'deny';
  readonly header: string | null;
  readonly claim: string | null;
  readonly perRoute: boolean;
  /** The rule as text: a reload keeps a route's counts while it is unchanged. */
  readonly signature: string;
}

function compileRateLimit(option: Config['routes'][number]['rateLimit'], redis: RedisSettings | null): CompiledRateLimit | null {
  if (option === undefined) return null;
  const key = option.key ?? 'client';
  const store = option.store ?? 'memory';
  const compiled = {
    requests: option.requests,
    windowSeconds: option.windowSeconds,
    burst: option.burst ?? null,
    store,
    onStoreDown: option.onStoreDown ?? 'allow',
    header: typeof key === 'object' && 'header' in key ? key.header.toLowerCase() : null,
    claim: typeof key === 'object' && 'claim' in key ? key.claim : null,
    perRoute: key === 'route',
  };
  return { ...compiled, signature: JSON.stringify({ ...compiled, redis: store === 'redis' ? redis : null }) };
}

/** The top-level `redis`, defaults applied. */
function compileRedis(option: Config['redis']): RedisSettings | null {
  if (option === undefined) return null;
  return { url: option.url, commandTimeoutMs: option.commandTimeoutMs ?? 50, keyPrefix: option.keyPrefix ?? 'switchyard:' };
}

/** `allow` and `deny` as one test: deny wins; with an allow list, only its networks pass. */
function compileIpRules(allow: readonly string[] | undefined, deny: readonly string[] | undefined): ((client: string) => boolean) | null {
  if (allow === undefined && (deny === undefined || deny.length === 0)) return null;
  const denied = compileCidrMatcher(deny ?? []);
  if (allow === undefined) return denied;
  const allowed = compileCidrMatcher(allow);
  return (client) => denied(client) || !allowed(client);
}

/** `limits`' client timeouts and caps over the defaults (server/limits.ts). */
function clientLimits(limits: Config['limits']): ClientLimits {
  const d = DEFAULT_CLIENT_LIMITS;
  return {
    headerTimeoutMs: limits?.headerTimeoutMs ?? d.headerTimeoutMs,
    bodyTimeoutMs: limits?.bodyTimeoutMs ?? d.bodyTimeoutMs,
    bodyMinBytesPerSecond: limits?.bodyMinBytesPerSecond ?? d.bodyMinBytesPerSecond,
    idleTimeoutMs: limits?.idleTimeoutMs ?? d.idleTimeoutMs,
    sendTimeoutMs: limits?.sendTimeoutMs ?? d.sendTimeoutMs,
    maxConnections: limits?.maxConnections ?? d.maxConnections,
    maxConnectionsPerIp: limits?.maxConnectionsPerIp ?? d.maxConnectionsPerIp,
  };
}
