// The last handler of the chain: sends the routed request upstream through the transport and
// streams the answer back. Owns the upstream URL, headers, body limit, timeout and the mapping
// of failures to 413 / 431 / 499 / 502 / 504.
import type { Handler } from 'hono';
import { type AppEnv, methodOf } from '../app-env.ts';
import type { CompiledConfig } from '../config/compile.ts';
import { countBody } from '../log/access-log.ts';
import type { Transport } from '../transport/types.ts';
import { classifyTransportError, ProxyError, statusFor } from './errors.ts';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.ts';
import { plain } from './respond.ts';

const MESSAGES: Record<number, string> = {
  413: 'payload too large',
  499: 'client closed request',
  502: 'bad gateway',
  504: 'gateway timeout',
  500: 'internal error',
};

const DIGITS = /^\d+$/;

// A client-sent X-Request-Id is kept only from trusted proxies, and only if it is tame.
const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface ForwardOptions {
  readonly transport: Transport;
  readonly config: Pick<CompiledConfig, 'isTrustedPeer' | 'forwarded' | 'maxHeaderBytes'>;
}

export const forward = ({ transport, config }: ForwardOptions): Handler<AppEnv> =>
  async function forward(c) {
    const req = c.req.raw;
    const route = c.get('route');
    const rec = c.get('access');
    rec.upstream = route.upstream.origin;

    let target = c.get('target');
    if (route.stripLength) {
      // Strip from the form the route matched (dot segments resolved), so the prefix is there.
      target = c.get('routeTarget').slice(route.stripLength);
      if (target.charCodeAt(0) !== 47 /* / */) target = `/${target}`;
    }

    const peer = c.env.remoteAddr;
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
        proto: c.env.proto,
        clientHost,
        upstreamHost: route.sendUpstreamHost ? route.upstream.hostPort : clientHost,
        forwarded: config.forwarded,
        requestId: rec.id,
      },
      config.maxHeaderBytes,
    );
    if (headers === null) return plain(431, 'request header fields too large');

    const controller = new AbortController();
    // RFC 9112 §6.3: a request has a body only if it declares Content-Length or
    // Transfer-Encoding. Not touching `req.body` otherwise spares @hono/node-server from
    // building a full Request per GET.
    const declared = req.headers.get('content-length');
    const coding = req.headers.get('transfer-encoding');
    if (declared !== null) {
      // RFC 9112 §6.3: Content-Length with Transfer-Encoding, or a list ("5, 5" from two
      // fields), is a framing ambiguity a proxy must refuse, never pass on.
      if (coding !== null || !DIGITS.test(declared)) return plain(400, 'bad request: invalid Content-Length');
    } else if (coding !== null && coding.trim().toLowerCase() !== 'chunked') {
      // RFC 9112 §6.1: we cannot undo other transfer codings, so we must not forward them.
      return plain(501, 'not implemented: transfer coding');
    }
    let body: ReadableStream<Uint8Array> | null = (declared !== null && declared !== '0') || coding !== null ? req.body : null;
    const limit = route.maxBodyBytes;
    if (body !== null && limit !== null && declared !== null && Number(declared) > limit) {
      return fail(rec, new ProxyError('body-too-large', 'client', true, `request body of ${declared} bytes exceeds ${limit}`));
    }

    // Client gone: cancel the upstream exchange at once, before or during the response.
    const clientSignal = req.signal;
    const onClientAbort = () => controller.abort(new ProxyError('client-closed', 'client', false, 'client closed the connection'));
    if (clientSignal.aborted) onClientAbort();
    else clientSignal.addEventListener('abort', onClientAbort, { once: true });
    // The wait for the response head starts once the body is passed on: a slow upload is the
    // client's time, not the upstream's.
    let timer: ReturnType<typeof setTimeout> | undefined;
    let answered = false;
    const startTimer = () => {
      if (answered) return;
      timer = setTimeout(
        () =>
          controller.abort(
            new ProxyError('timeout', 'upstream', false, `upstream ${route.upstream.origin} sent no response head within ${route.timeoutMs} ms`),
          ),
        route.timeoutMs,
      );
    };
    if (body === null) startTimer();
    else body = watchBody(body, declared === null ? limit : null, controller, startTimer);

    let res: Response;
    try {
      res = await transport(route.upstream.origin + target, { method: methodOf(c), headers, body, signal: controller.signal });
    } catch (error) {
      const reason = controller.signal.reason;
      return fail(rec, reason instanceof ProxyError ? reason : classifyTransportError(error, route.upstream.origin));
    } finally {
      answered = true;
      clearTimeout(timer);
    }

    let outHeaders = clientResponseHeaders(res.headers);
    // 204 and 205 carry no content (RFC 9110 §15.3.5-6), but an upstream may still send a
    // Content-Length for the body it dropped (node:http does for 205): passed on, it would frame
    // bytes that never come and desync the client's connection.
    if ((res.status === 204 || res.status === 205) && outHeaders.has('content-length')) {
      if (outHeaders === res.headers) outHeaders = new Headers(res.headers);
      if (res.status === 204) outHeaders.delete('content-length');
      else outHeaders.set('content-length', '0');
    }
    // `res.body` is only read when needed: on Node it turns @hono/node-server's light Response
    // into a full one.
    if (!outHeaders.has('content-length')) {
      const resBody = res.body;
      if (resBody !== null) {
        rec.streaming = true;
        return new Response(countBody(resBody, c.get('logDone')), { status: res.status, statusText: res.statusText, headers: outHeaders });
      }
    }
    if (outHeaders === res.headers) return res;
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers: outHeaders });
  };

function fail(rec: { status: number | null; error: string | null }, error: ProxyError): Response {
  const status = statusFor(error.kind);
  rec.status = status;
  rec.error = error.message;
  return plain(status, MESSAGES[status] ?? 'error');
}

/**
 * Passes a request body through, calls `onEnd` once it has all been handed on, and when
 * `limit` is set aborts the exchange with 413 as soon as the body crosses it (chunked bodies;
 * a declared length is checked up front).
 */
function watchBody(body: ReadableStream<Uint8Array>, limit: number | null, controller: AbortController, onEnd: () => void): ReadableStream<Uint8Array> {
  let seen = 0;
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, out) {
        seen += chunk.byteLength;
        if (limit === null || seen <= limit) {
          out.enqueue(chunk);
          return;
        }
        const error = new ProxyError('body-too-large', 'client', false, `request body exceeds ${limit} bytes`);
        controller.abort(error);
        out.error(error);
      },
      flush: onEnd,
    }),
  );
}
