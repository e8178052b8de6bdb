// WebSocket tunnels: an `Upgrade: websocket` request checked as an opening handshake (RFC 6455
// §4.2.1), sent to the route's upstream with the route's forwarding headers, and after the
// upstream's 101 the client's connection and the upstream's joined byte for byte
// (tunnel/pipe.ts), frames followed only for a clean goodbye on shutdown. One access line per
// tunnel, when it ends. Anything that is not a valid handshake is refused here, never tunnelled.
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.ts';
import type { CompiledRoute, CompiledUpstream } from '../config/compile.ts';
import { connectionTokens, HOP_BY_HOP } from '../http/hop-by-hop.ts';
import { hasToken } from '../http1/fields.ts';
import type { Transport, UpgradeResult } from '../transport/types.ts';
import { pipeTunnel } from '../tunnel/pipe.ts';
import type { TunnelRegistry } from '../tunnel/registry.ts';
import type { ByteStream, ClientUpgrade } from '../tunnel/types.ts';
import { sendUpgrade } from './attempt.ts';
import { clientError, ProxyError } from './errors.ts';
import type { ExchangeControl } from './exchange.ts';
import { refuse } from './respond.ts';

/** RFC 6455 §4.1: the key is 16 random bytes in base64. */
const KEY = /^[A-Za-z0-9+/]{22}==$/;

/** The request asks for a WebSocket: Upgrade names `websocket` and Connection names `upgrade`. */
export function asksForWebSocket(headers: Headers): boolean {
  const upgrade = headers.get('upgrade');
  return upgrade !== null && hasToken(upgrade, 'websocket') && hasToken(headers.get('connection'), 'upgrade');
}

/** Why a request asking for a WebSocket is no valid opening handshake (RFC 6455 §4.2.1), or null. */
export function handshakeProblem(method: string, version: string | null, headers: Headers): ProxyError | null {
  if (method !== 'GET') return clientError('bad-request', 'bad request: a WebSocket handshake is a GET');
  if (version === '1.0') return clientError('bad-request', 'bad request: a WebSocket handshake needs HTTP/1.1');
  if (headers.has('content-length') || headers.has('transfer-encoding')) return clientError('bad-request', 'bad request: a WebSocket handshake has no body');
  const key = headers.get('sec-websocket-key');
  if (key === null || !KEY.test(key.trim())) return clientError('bad-request', 'bad request: missing or invalid Sec-WebSocket-Key');
  if (headers.get('sec-websocket-version')?.trim() !== '13') return clientError('websocket-version', 'upgrade required: Sec-WebSocket-Version 13');
  return null;
}

/**
 * The fields of the upstream's 101 the client gets: hop-by-hop ones and those its Connection
 * names removed, then `Upgrade: websocket` and `Connection: Upgrade` of our own. Several
 * Set-Cookie stay separate fields (Headers keeps them apart).
 */
export function switchingFields(upstream: Headers): Headers {
  const connection = upstream.get('connection');
  const named = connection === null ? null : connectionTokens(connection);
  const out = new Headers();
  for (const [name, value] of upstream) {
    if (HOP_BY_HOP.has(name) || named?.has(name)) continue;
    out.append(name, value);
  }
  out.set('upgrade', 'websocket');
  out.set('connection', 'Upgrade');
  return out;
}

export interface TunnelDeps {
  readonly transport: Transport;
  readonly tunnels: TunnelRegistry;
  /** The shutdown grace period, for a tunnel that opens while shutdown is under way. */
  readonly graceMs: () => number;
}

/** Where a handshake goes: the route's upstream, or a group's picks. */
export interface TunnelTargets {
  readonly first: CompiledUpstream;
  /** After `failure`, the next upstream to try (a connect failure in a group), or null. */
  next(failure: ProxyError): CompiledUpstream | null;
  /** Counts an open tunnel against its upstream (least_conn, maxInFlight); returns the release. */
  hold?(upstream: CompiledUpstream): () => void;
}

/** What forward has decided for the request by the time it turns into a tunnel. */
export interface TunnelRequest {
  readonly upgrade: ClientUpgrade;
  readonly route: CompiledRoute;
  /** The request target as it goes upstream. */
  readonly target: string;
  /** The upstream request fields (forwarding headers applied, hop-by-hop removed). */
  readonly headers: Headers;
  readonly exchange: ExchangeControl;
  readonly targets: TunnelTargets;
}

/** Opens the tunnel, or answers as the upstream did (its 4xx, a 502, a 504). */
export async function openTunnel(c: Context<AppEnv>, { transport, tunnels, graceMs }: TunnelDeps, t: TunnelRequest): Promise<Response> {
  const { route, upgrade, headers, exchange } = t;
  const ws = route.websocket as NonNullable<CompiledRoute['websocket']>;
  if (!tunnels.reserve(route.key, ws.maxTunnels))
    return refuse(
      c,
      new ProxyError('tunnel-limit', 'internal', false, `route ${route.key} has ${ws.maxTunnels} tunnels open (websocket.maxTunnels), or shutdown began`),
    );
  headers.set('connection', 'upgrade');
  headers.set('upgrade', 'websocket');
  const rec = c.get('access');
  let to: CompiledUpstream = t.targets.first;
  let release = t.targets.hold?.(to);
  let result: UpgradeResult | ProxyError;
  const tried: string[] = [];
  for (;;) {
    if (route.sendUpstreamHost) headers.set('host', to.hostPort);
    rec.upstream = to.origin;
    tried.push(to.origin);
    if (tried.length > 1) rec.upstreams = tried;
    const init = { method: 'GET', headers, body: null, signal: exchange.signal, connectTimeoutMs: route.connectTimeoutMs };
    exchange.startTimer();
    result = await sendUpgrade(transport, to, t.target, to.tls === undefined ? init : { ...init, tls: to.tls });
    if (!(result instanceof ProxyError)) break;
    // A group moves on after a connect failure (the handshake reached nobody).
    release?.();
    release = undefined;
    const next = t.targets.next(result);
    if (next === null || !exchange.retry(next.origin)) break;
    to = next;
    release = t.targets.hold?.(to);
  }
  exchange.answered();
  const opened = result instanceof ProxyError ? result : switched(result, upgrade, to.origin);
  if (!Array.isArray(opened)) {
    tunnels.release(route.key);
    release?.();
    // The upstream refused the upgrade (401, 403, 426...): the client gets that answer.
    return opened instanceof ProxyError ? refuse(c, opened) : opened;
  }
  const [client, upstream] = opened;
  // The connection is no longer HTTP: the request's signal means nothing to the tunnel.
  exchange.release();

  rec.status = 101;
  rec.streaming = true;
  const logDone = c.get('logDone');
  const tunnel = pipeTunnel(client, upstream, { idleMs: ws.idleMs, websocket: true });
  tunnels.track(route.key, tunnel, graceMs);
  void tunnel.done.then((end) => {
    release?.();
    rec.tunnel = { bytesIn: end.clientToUpstream, end: end.end, first: end.first };
    if (end.error !== undefined) rec.error = end.error.message;
    logDone(end.upstreamToClient);
  });
  // The listener sends nothing of this: the connection is no longer HTTP.
  return new Response(null, { status: 200 });
}

/**
 * After the upstream's answer: the two byte streams to join once it switched to websocket and
 * the client's 101 went out; else its ordinary answer, or why there is no tunnel.
 */
function switched(result: UpgradeResult, upgrade: ClientUpgrade, origin: string): [ByteStream, ByteStream] | Response | ProxyError {
  if (!result.switched) return result.response;
  const upstream = result.stream;
  const protocol = result.headers.get('upgrade');
  if (!hasToken(protocol, 'websocket')) {
    upstream.destroy();
    return new ProxyError('reset', 'upstream', false, `upstream ${origin} switched to ${protocol ?? 'nothing'}, not websocket`);
  }
  try {
    return [upgrade.accept(switchingFields(result.headers)), upstream];
  } catch (error) {
    // The client went away while the upstream answered.
    upstream.destroy();
    return new ProxyError('client-closed', 'client', false, 'client closed the connection', { cause: error });
  }
}
