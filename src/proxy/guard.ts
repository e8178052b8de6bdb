// Request sanity before routing: a usable Host, and a target whose authority agrees with it
// (RFC 9112 §3.2), so the route is chosen by the same authority that is forwarded.
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { normalizeHost } from '../router/host.ts';
import { plain } from './respond.ts';

export interface GuardOptions {
  /** Longest request target accepted; longer gets 414. */
  readonly maxUrlBytes: number;
}

export const guardRequest = ({ maxUrlBytes }: GuardOptions): MiddlewareHandler<AppEnv> =>
  async function guardRequest(c, next) {
    const raw = c.req.raw;
    // Node's parser accepts HTTP/0.9-style request lines ("GET /"); nobody else does.
    const version = c.env.httpVersion;
    if (version !== undefined && version !== '1.1' && version !== '1.0' && version !== '2.0') return plain(400, 'bad request: unsupported HTTP version');
    const hostHeader = raw.headers.get('host');
    // RFC 9112 §3.2: a request without Host is invalid for HTTP/1.1. The Web API hides the
    // version, so HTTP/1.0 requests without Host are refused too (documented).
    if (hostHeader === null) return plain(400, 'bad request: missing Host header');
    // Two Host fields arrive joined by a comma (Node, Bun) and fail here; Deno refuses them itself.
    const host = normalizeHost(hostHeader);
    if (host === null) return plain(400, 'bad request: invalid Host header');
    const target = requestTarget(raw.url, c.env.rawTarget, hostHeader, host);
    if (target === null) return plain(400, 'bad request: request target does not match Host');
    if (target.length > maxUrlBytes) return plain(414, 'uri too long');
    c.set('host', host);
    c.set('target', target);
    await next();
  };

/**
 * The origin-form target (path and query) to forward, or null when an absolute-form target
 * names another authority than Host. `rawTarget` is the bytes on the wire when the runtime
 * gives them (Node, Bun); otherwise the runtime's URL carries the target's authority (Deno) or the
 * Host's (in-process requests).
 */
export function requestTarget(url: string, rawTarget: string | undefined, hostHeader: string, host: string): string | null {
  if (rawTarget !== undefined && rawTarget.charCodeAt(0) === 47 /* / */) return rawTarget;
  const source = rawTarget ?? url;
  // Only http(s) absolute-forms; Deno passes `evil://host/p` through as the URL.
  if (!source.startsWith('http://') && !source.startsWith('https://')) return null;
  const authorityStart = source.indexOf('//') + 2;
  let pathStart = source.indexOf('/', authorityStart);
  const queryStart = source.indexOf('?', authorityStart);
  if (queryStart >= 0 && (pathStart < 0 || queryStart < pathStart)) pathStart = queryStart;
  const authority = pathStart < 0 ? source.slice(authorityStart) : source.slice(authorityStart, pathStart);
  if (authority !== hostHeader && normalizeHost(authority) !== host) return null;
  if (pathStart < 0) return '/';
  return source.charCodeAt(pathStart) === 63 /* ? */ ? `/${source.slice(pathStart)}` : source.slice(pathStart);
}
