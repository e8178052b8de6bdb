// Request sanity before routing: a supported version, a usable Host, a target whose authority
// agrees with it (RFC 9112 §3.2), so the route is chosen by the same authority that is
// forwarded, and a target within the length limit. Every refusal is a ProxyError.
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { normalizeHost } from '../router/host.ts';
import { clientError } from './errors.ts';
import { refuse } from './respond.ts';

/** Reads the version and raw target from `facts`, the target limit from `config` (limits.maxUrlBytes; longer gets 414). */
export const guardRequest = (): MiddlewareHandler<AppEnv> =>
  async function guardRequest(c, next) {
    const facts = c.get('facts');
    // Node's parser accepts HTTP/0.9-style request lines ("GET /"); nobody else does.
    const version = facts.httpVersion;
    if (version !== null && version !== '1.1' && version !== '1.0' && version !== '2.0') {
      return refuse(c, clientError('bad-request', 'bad request: unsupported HTTP version'));
    }
    // No open proxy: CONNECT would tunnel to an address the client names, never a configured one.
    if (facts.method === 'CONNECT') return refuse(c, clientError('unsupported-method', 'not implemented: CONNECT'));
    // TRACE reflects the request, credentials included (cross-site tracing); Bun and Deno refuse it in the listener.
    if (facts.method === 'TRACE') return refuse(c, clientError('unsupported-method', 'not implemented: TRACE'));
    if (facts.rawTarget === '*') {
      // RFC 9110 §9.3.7: `OPTIONS *` asks about the server itself, so the proxy answers it (as
      // Go's net/http does, under Caddy), never an upstream. No other method takes `*`.
      if (facts.method === 'OPTIONS') return new Response(null, { status: 200, headers: { 'content-length': '0' } });
      return refuse(c, clientError('bad-request', 'bad request: asterisk-form target'));
    }
    const hostHeader = c.req.raw.headers.get('host');
    // RFC 9112 §3.2: a request without Host is invalid for HTTP/1.1. Deno does not say the
    // version, so HTTP/1.0 requests without Host are refused too (documented).
    if (hostHeader === null) return refuse(c, clientError('bad-request', 'bad request: missing Host header'));
    // Two Host fields arrive joined by a comma (Node, Bun) and fail here; Deno refuses them itself.
    const host = normalizeHost(hostHeader);
    if (host === null) return refuse(c, clientError('bad-request', 'bad request: invalid Host header'));
    const target = requestTarget(facts.rawTarget, hostHeader, host);
    if (target === null) return refuse(c, clientError('bad-request', 'bad request: request target does not match Host'));
    if (target.length > c.get('config').maxUrlBytes) return refuse(c, clientError('target-too-long', 'uri too long'));
    c.set('host', host);
    c.set('target', target);
    await next();
  };

/**
 * The origin-form target (path and query) to forward, or null when the target is neither
 * origin-form nor an http(s) absolute-form naming the same authority as Host. `rawTarget` is
 * the bytes on the wire where the listener has them (Node, Bun), otherwise the runtime's URL,
 * which carries the client's absolute-form target (Deno) or the Host's authority.
 */
export function requestTarget(rawTarget: string, hostHeader: string, host: string): string | null {
  if (rawTarget.charCodeAt(0) === 47 /* / */) return rawTarget;
  // Only http(s) absolute-forms; Deno passes `evil://host/p` through as the URL.
  if (!rawTarget.startsWith('http://') && !rawTarget.startsWith('https://')) return null;
  const authorityStart = rawTarget.indexOf('//') + 2;
  let pathStart = rawTarget.indexOf('/', authorityStart);
  const queryStart = rawTarget.indexOf('?', authorityStart);
  if (queryStart >= 0 && (pathStart < 0 || queryStart < pathStart)) pathStart = queryStart;
  const authority = pathStart < 0 ? rawTarget.slice(authorityStart) : rawTarget.slice(authorityStart, pathStart);
  if (authority !== hostHeader && normalizeHost(authority) !== host) return null;
  if (pathStart < 0) return '/';
  return rawTarget.charCodeAt(pathStart) === 63 /* ? */ ? `/${rawTarget.slice(pathStart)}` : rawTarget.slice(pathStart);
}
