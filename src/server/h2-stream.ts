// HTTP/2 requests through node:http2's stream API rather than its compatibility layer: one
// Request per stream from the header block, the answer as one `respond` and the body with
// backpressure. Used by the TLS listener on every runtime (./tls.ts): Bun's
// Http2ServerRequest/Response emulation was the larger part of an h2 request's CPU. The rules are
// ./tls.ts's: Host from :authority (RFC 9113 §8.3.1), Cookie fields joined, a body without a
// length forwarded chunked, connection-specific fields never written, a broken body resets the
// stream, a client's RST_STREAM aborts the request.
import { constants, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { Bindings } from '../app-env.ts';
import { isSmallLength } from '../http/buffering.ts';
import { adaptedRequest, requestBody, responseFields, writeBody } from './fetch-adapter.ts';
import { tlsConnOf } from './tls.ts';
import type { AppFetch, ListenerSpec } from './types.ts';

const OPEN = Symbol('switchyard.h2open');
type Tagged = { [OPEN]?: Set<AbortController> };
const END_STREAM = constants.NGHTTP2_FLAG_END_STREAM;

/** The header block as Headers: pseudo-headers stay on this hop, Host comes from :authority. */
function headersOf(block: IncomingHttpHeaders): Headers {
  const headers = new Headers();
  let host = false;
  for (const name in block) {
    if (name.charCodeAt(0) === 58 /* : */) continue;
    const value = block[name];
    if (value === undefined) continue;
    if (name === 'host') host = true;
    // node joins several cookie fields with "; " already (RFC 9113 §8.2.3).
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.append(name, value);
  }
  const authority = block[':authority'];
  if (!host && typeof authority === 'string') headers.set('host', authority);
  return headers;
}

function respond(stream: ServerHttp2Stream, response: Response, endStream: boolean): void {
  const head = responseFields(response.headers) as OutgoingHttpHeaders;
  head[':status'] = response.status;
  stream.respond(head, { endStream });
}

async function send(stream: ServerHttp2Stream, response: Response, answer: { ended: boolean }): Promise<void> {
  const body = response.body;
  if (body === null) {
    answer.ended = true;
    respond(stream, response, true);
    return;
  }
  if (isSmallLength(response.headers.get('content-length'))) {
    let bytes: Uint8Array;
    try {
      bytes = await response.bytes();
    } catch {
      stream.destroy(new Error('response body failed'));
      return;
    }
    if (stream.destroyed) return;
    answer.ended = true;
    respond(stream, response, false);
    stream.end(bytes);
    return;
  }
  respond(stream, response, false);
  await writeBody(
    body,
    stream,
    // destroy, not close(code): Bun's close(code) ends the stream as if complete.
    () => stream.destroy(new Error('response body failed')),
    () => {
      answer.ended = true;
    },
  );
}

function plain(stream: ServerHttp2Stream, status: number, text: string): void {
  if (stream.destroyed) return;
  if (stream.headersSent) {
    stream.destroy(new Error(text));
    return;
  }
  stream.respond({ ':status': status, 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(text)) });
  stream.end(text);
}

/** The 'stream' listener of an h2 server: each stream to the app. */
export function h2StreamHandler(fetch: AppFetch, spec: ListenerSpec): (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number) => void {
  const listener = spec.name;
  type Session = Tagged & { socket: TLSSocket; once(event: 'close', listener: () => void): unknown };
  // Requests in flight per session: a torn-down connection may close the session without a
  // 'close' on each of its streams (seen on Bun), so the session's close aborts what is left.
  const openOf = (session: Session): Set<AbortController> => {
    let open = session[OPEN];
    if (open === undefined) {
      const set = new Set<AbortController>();
      open = set;
      session[OPEN] = set;
      const abortAll = () => {
        for (const abort of set) abort.abort();
        set.clear();
      };
      session.once('close', abortAll);
    }
    return open;
  };

  return function onStream(stream, block, flags) {
    stream.on('error', () => {}); // a client reset is the stream's end, not the process's
    const method = block[':method'] as string;
    const target = (block[':path'] as string | undefined) ?? '';
    const abort = new AbortController();
    const session = stream.session as unknown as Session;
    const open = openOf(session);
    open.add(abort);
    // Closed before our answer ended, or reset: the client cancelled it or went away. Our own
    // flag, since Bun 1.4.5 reports a stream closed under it as finished with no error code.
    const answer = { ended: false };
    stream.once('close', () => {
      open.delete(abort);
      if (!answer.ended || stream.rstCode !== constants.NGHTTP2_NO_ERROR) abort.abort();
    });
    let request: Request;
    try {
      const headers = headersOf(block);
      const body = (flags & END_STREAM) === 0 && !stream.endAfterHeaders ? requestBody(stream) : null;
      // An h2 body without content-length reaches HTTP/1.1 upstreams chunked (RFC 9113 §8.2.2).
      if (body !== null && !headers.has('content-length')) headers.set('transfer-encoding', 'chunked');
      request = adaptedRequest(method, headers.get('host'), target, headers, body, abort.signal);
    } catch {
      plain(stream, 400, 'bad request\n');
      return;
    }
    const bindings: Bindings = { conn: tlsConnOf(session, () => session.socket, listener), line: { method, target, version: '2.0' } };
    void (async () => {
      try {
        const response = await fetch(request, bindings);
        await send(stream, response, answer);
      } catch {
        plain(stream, 500, 'internal error\n');
      }
    })();
  };
}
