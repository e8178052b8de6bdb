// Turns a validated Config into the tables the request path reads: done once per load, so the
// per-request work is lookups, never parsing. Pure: no I/O, no clock.
import { compileCidrMatcher } from '../proxy/cidr.ts';
import { compileRouteTable, type RouteTable } from '../router/table.ts';
import { type ClientLimits, DEFAULT_CLIENT_LIMITS } from '../server/limits.ts';
import type { UpstreamTlsOptions } from '../transport/types.ts';
import { normalizePath } from './schema.ts';
import { NO_TLS_FILES, type TlsFiles } from './tls-files.ts';
import type { Config, Route } from './types.ts';

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
} as const;

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
  readonly upstream: CompiledUpstream;
  readonly sendUpstreamHost: boolean;
  readonly timeoutMs: number;
  readonly maxBodyBytes: number | null;
  /** The `Strict-Transport-Security` value for HTTPS responses, or null. */
  readonly hsts: string | null;
  /** Plain-HTTP requests get a 308 to https:// (only with a TLS listener). */
  readonly redirectHttp: boolean;
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
  readonly table: RouteTable<CompiledRoute>;
  readonly isTrustedPeer: (address: string) => boolean;
  readonly forwarded: boolean;
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
  const routes = config.routes.map((route, i): CompiledRoute => {
    const prefix = normalizePath(route.path);
    const hosts = Array.isArray(route.host) ? route.host : [route.host];
    return {
      id: `routes[${i}]`,
      key: routeKey(hosts, prefix),
      hosts,
      prefix,
      stripLength: route.stripPrefix && prefix !== '/' ? prefix.length : 0,
      upstream: { ...compileUpstream(route.upstream), tls: files.upstreamTls.get(i) },
      sendUpstreamHost: route.hostHeader === 'upstream',
      timeoutMs: route.timeoutMs ?? upstreamMs,
      maxBodyBytes: route.maxBodyBytes === undefined ? globalMaxBody : route.maxBodyBytes,
      hsts: tls === undefined ? null : hstsValue(route.hsts),
      redirectHttp: tls !== undefined && (route.redirectHttp ?? redirectDefault),
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
    table: compileRouteTable(routes),
    isTrustedPeer: compileCidrMatcher(config.trustedProxies ?? []),
    forwarded: config.forwarded ?? false,
    maxHeaderBytes: config.limits?.maxHeaderBytes ?? DEFAULTS.maxHeaderBytes,
    maxUrlBytes: config.limits?.maxUrlBytes ?? DEFAULTS.maxUrlBytes,
    shutdownGraceMs: config.timeouts?.shutdownGraceMs ?? DEFAULTS.shutdownGraceMs,
    clientLimits: clientLimits(config.limits),
  };
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
