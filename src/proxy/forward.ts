// The last handler of the chain: prepares the upstream request once (target, headers, body
// limit, timeout, client abort), sends it through `sendAttempt` as often as the retry policy
// allows (to the route's one upstream, or to a group's picks: ./tries.ts), and streams the
// answer back. Response headers and 204/205 framing come from the transport already clean
// (transport/types.ts); nothing here filters them again.

import type { Context, Handler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import type { Balancers, RouteBalancer, TargetState } from '../balancer/state.ts';
import type { CompiledTarget } from '../config/compile.ts';
import { requestDeclaresBody } from '../http/body-rules.ts';
import { isSmallLength } from '../http/buffering.ts';
import { withoutCookies } from '../http/cookies.ts';
import { countBody } from '../log/access-log.ts';
import type { Transport, UpstreamInit } from '../transport/types.ts';
import type { TunnelRegistry } from '../tunnel/registry.ts';
import { sendAttempt } from './attempt.ts';
import { watchedBody } from './body-watch.ts';
import { clientError, ProxyError } from './errors.ts';
import { exchangeControl } from './exchange.ts';
import { HEADERS_TOO_LARGE, UNDERSCORE_NAME, upstreamRequestHeaders } from './headers.ts';
import { refuse } from './respond.ts';
import { countsAgainst, mayRetry } from './retry.ts';
import { noUpstream, tryUpstreams } from './tries.ts';
import { asksForWebSocket, handshakeProblem, openTunnel, type TunnelTargets } from './websocket.ts';

const DIGITS = /^\d+$/;

// A client-sent X-Request-Id is kept only from trusted proxies, and only if it is tame.
const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface ForwardOptions {
  readonly transport: Transport;
  /** Open WebSocket tunnels (caps per route, goodbye on shutdown). */
  readonly tunnels: TunnelRegistry;
  /** The shutdown grace period in force (a tunnel opened during shutdown gets it). */
  readonly graceMs: () => number;
  /** The live state of every route with a group of upstreams (synced with each config). */
  readonly balancers: Balancers;
}

const noop = () => {};

export const forward = ({ transport, tunnels, graceMs, balancers }: ForwardOptions): Handler<AppEnv> =>
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
    const trusted = facts.peerTrusted;
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
        underscores: config.underscoreHeaders,
      },
      config.maxHeaderBytes,
    );
    if (headers === HEADERS_TOO_LARGE) return refuse(c, clientError('headers-too-large', 'request header fields too large'));
    if (headers === UNDERSCORE_NAME) return refuse(c, clientError('bad-request', 'bad request: header field name with an underscore'));
    // The credentials the route's auth consumed stay here (access/auth.ts).
    for (const name of route.dropFields) headers.delete(name);
    if (route.dropCookies.length > 0) withoutCookies(headers, route.dropCookies);
    const authFields = c.get('authFields');
    if (authFields !== undefined) for (const [name, value] of authFields) headers.set(name, value);

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

    const balancer = route.group === null ? null : balancers.for(route);
    // A group's access line names an upstream once one is tried (none: a 503 with none available).
    if (balancer !== null) rec.upstream = null;
    const exchange = exchangeControl(req.signal, route, rec);

    // RFC 6455: a WebSocket handshake becomes a tunnel where the listener can hand the
    // connection over (HTTP/1.1); an invalid one is refused, never tunnelled. Any other
    // Upgrade (h2c...) is forwarded as an ordinary request: Upgrade is hop-by-hop.
    if (route.websocket !== null && asksForWebSocket(req.headers)) {
      const problem = handshakeProblem(facts.method, facts.httpVersion, req.headers);
      if (problem !== null) return refuse(c, problem);
      const upgrade = c.env.upgrade;
      if (upgrade !== undefined) {
        let targets: TunnelTargets = { first: upstream, next: () => null };
        if (balancer !== null) {
          const pickFacts = { clientIp: facts.client, target: c.get('target'), headers: req.headers };
          const first = balancer.pick(pickFacts);
          if (first < 0) {
            exchange.release();
            return refuse(c, noUpstream(route, balancer));
          }
          targets = tunnelTargets(balancer, first, pickFacts);
        }
        return openTunnel(c, { transport, tunnels, graceMs }, { upgrade, route, target, headers, exchange, targets });
      }
    }

    // A group keeps a small declared body whole so another try can send it again; anything
    // larger or chunked streams once. The wait for the response head starts once the body is
    // passed on (a slow upload is the client's time, not the upstream's), or at each try for a
    // kept body.
    const retry = balancer?.group.retry;
    const keep = body !== null && retry !== undefined && declared !== null && retry.tries > 1 && Number(declared) <= retry.replayBodyBytes;
    if (body === null) {
      if (balancer === null) exchange.startTimer();
    } else {
      const limits = config.clientLimits;
      body = watchedBody(body, {
        limit: declared === null ? limit : null,
        stallMs: limits.bodyTimeoutMs,
        minBytesPerSecond: limits.bodyMinBytesPerSecond,
        fail: exchange.fail,
        onEnd: keep ? noop : exchange.startTimer,
      });
    }

    if (balancer !== null) {
      let tryBody: Uint8Array | ReadableStream<Uint8Array> | null = body;
      if (keep) {
        const whole = await readWhole(body as ReadableStream<Uint8Array>);
        if (whole === null) {
          exchange.release();
          const reason = exchange.signal.reason;
          return refuse(c, reason instanceof ProxyError ? reason : new ProxyError('client-closed', 'client', false, 'client closed the connection'));
        }
        tryBody = whole;
      }
      // Picked once the body is in (a kept one): an upload's time is not spent holding a slot
      // of an upstream (maxInFlight, least_conn), nor on one that went down meanwhile.
      const pickFacts = { clientIp: facts.client, target: c.get('target'), headers: req.headers };
      const first = balancer.pick(pickFacts);
      if (first < 0) {
        exchange.release();
        return refuse(c, noUpstream(route, balancer));
      }
      const tries = await tryUpstreams(
        { transport, route, balancer, exchange, rec, method: facts.method, target, headers, facts: pickFacts, body: tryBody },
        first,
      );
      exchange.answered();
      const outcome = tries.outcome;
      if (outcome instanceof ProxyError) return refuse(c, outcome);
      const cookie = balancer.picker.cookieFor?.(pickFacts, tries.index);
      if (cookie) outcome.headers.append('set-cookie', cookie);
      return answer(c, outcome, tries.done);
    }

    const method = facts.method;
    const signal = exchange.signal;
    const hasBody = body !== null;
    const tls = upstream.tls;
    const connectTimeoutMs = route.connectTimeoutMs;
    const bodyIdleTimeoutMs = route.bodyIdleTimeoutMs;
    const init: UpstreamInit =
      tls === undefined
        ? { method, headers, body, signal, connectTimeoutMs, bodyIdleTimeoutMs }
        : { method, headers, body, signal, tls, connectTimeoutMs, bodyIdleTimeoutMs };
    let outcome = await sendAttempt(transport, upstream, target, init);
    // A retry only ever follows a bodiless request, so the same headers go again as they are.
    for (let attempts = 1; outcome instanceof ProxyError && !signal.aborted && mayRetry(outcome, method, hasBody, attempts); attempts++) {
      outcome = await sendAttempt(transport, upstream, target, { ...init, body: null, fresh: true });
    }
    exchange.answered();
    if (outcome instanceof ProxyError) return refuse(c, outcome);
    return answer(c, outcome, null);
  };

/**
 * The upstream's answer to the client. `res.body` is only read when needed: on Node it turns
 * @hono/node-server's light Response into a full one. Streamed and large bodies are counted to
 * their end, so a client that leaves during one is logged as 499 with the bytes it got; small
 * ones go out in one write. `done` (a group's in-flight count) runs when the body is over.
 */
function answer(c: Context<AppEnv>, outcome: Response, done: (() => void) | null): Response {
  const length = outcome.headers.get('content-length');
  if (length === null || !isSmallLength(length)) {
    const resBody = outcome.body;
    if (resBody !== null) {
      c.get('access').streaming = true;
      const logDone = c.get('logDone');
      const end =
        done === null
          ? logDone
          : (bytes: number) => {
              done();
              logDone(bytes);
            };
      return new Response(countBody(resBody, end), { status: outcome.status, statusText: outcome.statusText, headers: outcome.headers });
    }
  }
  done?.();
  return outcome;
}

/** A group's upstreams for a WebSocket handshake: the first pick, then (after a connect failure) the next. */
function tunnelTargets(balancer: RouteBalancer, first: number, facts: { clientIp: string; target: string; headers: Headers }): TunnelTargets {
  const targets = balancer.group.targets;
  const tried = [first];
  return {
    first: targets[first] as CompiledTarget,
    next(failure) {
      if (countsAgainst(failure)) balancer.failed(tried[tried.length - 1] as number, failure.message);
      if (!failure.retryable || tried.length >= balancer.group.retry.tries) return null;
      const next = balancer.pickAgain(facts, tried);
      if (next < 0) return null;
      tried.push(next);
      return targets[next] as CompiledTarget;
    },
    hold(upstream) {
      const state = balancer.states[(upstream as CompiledTarget).index] as TargetState;
      state.inFlight++;
      return () => state.inFlight--;
    },
  };
}

/** A body read whole (it is at most `retry.replayBodyBytes`), or null when it broke (client gone, limits). */
async function readWhole(body: ReadableStream<Uint8Array>): Promise<Uint8Array | null> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    return null;
  }
  return chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks, size);
}
