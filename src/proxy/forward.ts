// The last handler of the chain: prepares the upstream request once (target, headers, body
// limit, timeout, client abort), sends it through `sendAttempt` as often as the retry policy
// allows, and streams the answer back. Response headers and 204/205 framing come from the
// transport already clean (transport/types.ts); nothing here filters them again.
import type { Handler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { requestDeclaresBody } from '../http/body-rules.ts';
import { isSmallLength } from '../http/buffering.ts';
import { countBody } from '../log/access-log.ts';
import type { Transport, UpstreamInit } from '../transport/types.ts';
import type { TunnelRegistry } from '../tunnel/registry.ts';
import { sendAttempt } from './attempt.ts';
import { watchedBody } from './body-watch.ts';
import { clientError, ProxyError } from './errors.ts';
import { exchangeControl } from './exchange.ts';
import { upstreamRequestHeaders } from './headers.ts';
import { refuse } from './respond.ts';
import { mayRetry } from './retry.ts';
import { asksForWebSocket, handshakeProblem, openTunnel } from './websocket.ts';

const DIGITS = /^\d+$/;

// A client-sent X-Request-Id is kept only from trusted proxies, and only if it is tame.
const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface ForwardOptions {
  readonly transport: Transport;
  /** Open WebSocket tunnels (caps per route, goodbye on shutdown). */
  readonly tunnels: TunnelRegistry;
  /** The shutdown grace period in force (a tunnel opened during shutdown gets it). */
  readonly graceMs: () => number;
}

export const forward = ({ transport, tunnels, graceMs }: ForwardOptions): Handler<AppEnv> =>
  async function forward(c) {
    const req = c.req.raw;
    const config = c.get('config');
    const facts = c.get('facts');
    const route = c.get('route');
    const upstream = route.upstream;
    const rec = c.get('access');
    rec.upstream = upstream.origin;

    let target = c.get('target');
    if (route.stripLength) {
      // Strip from the form the route matched (dot segments resolved), so the prefix is there.
      target = c.get('routeTarget').slice(route.stripLength);
      if (target.charCodeAt(0) !== 47 /* / */) target = `/${target}`;
    }

    const peer = facts.conn.remoteAddr;
    const trusted = config.isTrustedPeer(peer);
    if (trusted) {
      const id = req.headers.get('x-request-id');
      if (id && SAFE_ID.test(id)) rec.id = id;
    }
    const clientHost = req.headers.get('host') as string; // guardRequest ensured it
    const headers = upstreamRequestHeaders(
      req.headers,
      {
        peer,
        trusted,
        proto: facts.conn.proto,
        clientHost,
        upstreamHost: route.sendUpstreamHost ? upstream.hostPort : clientHost,
        forwarded: config.forwarded,
        requestId: rec.id,
        clientCertHeader: config.tls?.clientAuth?.header,
        clientSubject: facts.conn.tls?.clientCertificate?.subject,
      },
      config.maxHeaderBytes,
    );
    if (headers === null) return refuse(c, clientError('headers-too-large', 'request header fields too large'));

    // RFC 9112 §6.3: a request has a body only if it declares Content-Length or
    // Transfer-Encoding. Not touching `req.body` otherwise spares @hono/node-server from
    // building a full Request per GET.
    const declared = req.headers.get('content-length');
    const coding = req.headers.get('transfer-encoding');
    if (declared !== null) {
      // RFC 9112 §6.3: Content-Length with Transfer-Encoding, or a list ("5, 5" from two
      // fields), is a framing ambiguity a proxy must refuse, never pass on.
      if (coding !== null || !DIGITS.test(declared)) return refuse(c, clientError('bad-request', 'bad request: invalid Content-Length'));
    } else if (coding !== null && coding.trim().toLowerCase() !== 'chunked') {
      // RFC 9112 §6.1: we cannot undo other transfer codings, so we must not forward them.
      return refuse(c, clientError('unsupported-coding', 'not implemented: transfer coding'));
    }
    let body: ReadableStream<Uint8Array> | null = requestDeclaresBody(declared, coding) ? req.body : null;
    const limit = route.maxBodyBytes;
    if (body !== null && limit !== null && declared !== null && Number(declared) > limit) {
      return refuse(c, new ProxyError('body-too-large', 'client', true, `request body of ${declared} bytes exceeds ${limit}`));
    }

    const exchange = exchangeControl(req.signal, route, rec);

    // RFC 6455: a WebSocket handshake becomes a tunnel where the listener can hand the
    // connection over (HTTP/1.1); an invalid one is refused, never tunnelled. Any other
    // Upgrade (h2c...) is forwarded as an ordinary request: Upgrade is hop-by-hop.
    if (route.websocket !== null && asksForWebSocket(req.headers)) {
      const problem = handshakeProblem(facts.method, facts.httpVersion, req.headers);
      if (problem !== null) return refuse(c, problem);
      const upgrade = c.env.upgrade;
      if (upgrade !== undefined) return openTunnel(c, { transport, tunnels, graceMs }, { upgrade, route, target, headers, exchange });
    }

    // The wait for the response head starts once the body is passed on: a slow upload is the
    // client's time, not the upstream's.
    if (body === null) exchange.startTimer();
    else {
      const limits = config.clientLimits;
      body = watchedBody(body, {
        limit: declared === null ? limit : null,
        stallMs: limits.bodyTimeoutMs,
        minBytesPerSecond: limits.bodyMinBytesPerSecond,
        fail: exchange.fail,
        onEnd: exchange.startTimer,
      });
    }

    const method = facts.method;
    const signal = exchange.signal;
    const hasBody = body !== null;
    const tls = upstream.tls;
    const init: UpstreamInit = tls === undefined ? { method, headers, body, signal } : { method, headers, body, signal, tls };
    let outcome = await sendAttempt(transport, upstream, target, init);
    // A retry only ever follows a bodiless request, so the same headers go again as they are.
    for (let attempts = 1; outcome instanceof ProxyError && !signal.aborted && mayRetry(outcome, method, hasBody, attempts); attempts++) {
      outcome = await sendAttempt(transport, upstream, target, { method, headers, body: null, signal, fresh: true, tls });
    }
    exchange.answered();
    if (outcome instanceof ProxyError) return refuse(c, outcome);

    // `res.body` is only read when needed: on Node it turns @hono/node-server's light Response
    // into a full one. Streamed and large bodies are counted to their end, so a client that
    // leaves during one is logged as 499 with the bytes it got; small ones go out in one write.
    const length = outcome.headers.get('content-length');
    if (length === null || !isSmallLength(length)) {
      const resBody = outcome.body;
      if (resBody !== null) {
        rec.streaming = true;
        return new Response(countBody(resBody, c.get('logDone')), { status: outcome.status, statusText: outcome.statusText, headers: outcome.headers });
      }
    }
    return outcome;
  };
