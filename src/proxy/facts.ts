// The first middleware: the request's config snapshot and its own facts (exact method, raw
// target, HTTP version, connection), decided once. Nothing after it reads `c.env` or
// `c.req.method` (docs/stock-middleware.md says what those show on each runtime).
import type { MiddlewareHandler } from 'hono';
import type { AppEnv, ConnInfo, RequestFacts } from '../app-env.ts';
import type { ConfigSource } from '../config/source.ts';
import { clientBehind } from './client.ts';

/**
 * Sets `config` (one snapshot per request: a swap while it is in flight does not change its
 * route or limits) and `facts`, from the listener's request line where it has one, else from
 * the `Request`.
 */
export const requestFacts = (source: ConfigSource): MiddlewareHandler<AppEnv> =>
  // Not async: it only sets two variables, so it hands Hono next()'s promise instead of
  // wrapping it in one more (measured on the hot path).
  function requestFacts(c, next) {
    const config = source.current;
    c.set('config', config);
    const env = c.env;
    const line = env.line;
    const conn = env.conn;
    const peer = conn.remoteAddr;
    const peerTrusted = config.isTrustedPeer(peer);
    // Forwarding headers are read only from a trusted peer: nobody else can change the client.
    const client = peerTrusted ? clientBehind(peer, c.req.raw.headers.get('x-forwarded-for'), c.req.raw.headers.get('forwarded'), config.isTrustedPeer) : peer;
    c.set(
      'facts',
      line === undefined
        ? factsFromRequest(c.req.raw, conn, peerTrusted, client)
        : { method: line.method, rawTarget: line.target, httpVersion: line.version, conn, peerTrusted, client },
    );
    return next();
  };

/**
 * Facts where the listener has no request line (Deno.serve, in-process `app.request`). The
 * method is the Request's (Deno keeps it as sent). The target is the URL as the runtime gives
 * it: absolute-form, built from Host for an origin-form request, or the client's own
 * absolute-form target (Deno passes `http://other/p` through), so the guard can still compare
 * its authority with Host (RFC 9112 §3.2.2) before reducing it to the path and query.
 */
export function factsFromRequest(request: Request, conn: ConnInfo, peerTrusted = false, client = conn.remoteAddr): RequestFacts {
  return { method: request.method, rawTarget: request.url, httpVersion: null, conn, peerTrusted, client };
}
