// What the TLS listener's two adapters share (./tls.ts over node:http2's compatibility layer,
// ./h2-stream.ts over its stream API): node request bodies as web streams, the Request the app
// gets, response fields without connection-specific ones, and a response body written with
// backpressure. One copy, so h1 and h2 and the three runtimes follow the same rules.
import type { Readable } from 'node:stream';
import { BODY_QUEUE } from '../http/buffering.ts';
import { CONNECTION_SPECIFIC } from '../http/hop-by-hop.ts';

/** A web stream over a node request body, paused while the stream's queue is full. */
export function requestBody(source: Readable): ReadableStream<Uint8Array> {
  let done = false;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        source.on('data', (chunk: Buffer) => {
          if (done) return;
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          if ((controller.desiredSize ?? 1) <= 0) source.pause();
        });
        source.once('end', () => {
          if (done) return;
          done = true;
          controller.close();
        });
        const fail = () => {
          if (done) return;
          done = true;
          controller.error(new Error('client closed the request body'));
        };
        source.once('error', fail);
        source.once('aborted', fail);
      },
      pull() {
        source.resume();
      },
      cancel() {
        done = true;
        source.resume(); // drain what is left, so the connection (h1) or stream (h2) can end
      },
    },
    BODY_QUEUE,
  );
}

/**
 * The Request the app gets from a TLS listener. fetch forbids a body on GET and HEAD, and
 * CONNECT altogether; the exact method travels in `line` (what switchyard's own middlewares
 * read), so a GET with a body still reaches the upstream as sent. Throws on what no Request
 * can carry (a header value with a control byte): the caller answers 400.
 */
export function adaptedRequest(
  method: string,
  host: string | null,
  target: string,
  headers: Headers,
  body: ReadableStream<Uint8Array> | null,
  signal: AbortSignal,
): Request {
  let url = `https://${host ?? 'localhost'}${target.charCodeAt(0) === 47 /* / */ ? target : '/'}`;
  if (!URL.canParse(url)) url = 'https://localhost/';
  return new Request(url, {
    method: body !== null && (method === 'GET' || method === 'HEAD') ? 'POST' : method === 'CONNECT' ? 'GET' : method,
    headers,
    body,
    signal,
    ...(body === null ? {} : { duplex: 'half' }),
  } as RequestInit);
}

/** Response fields for node's writeHead / respond: joined once, connection-specific ones left out. */
export function responseFields(headers: Headers): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of headers) {
    if (CONNECTION_SPECIFIC.has(name)) continue;
    const seen = out[name];
    if (seen === undefined) out[name] = value;
    else if (Array.isArray(seen)) seen.push(value);
    else out[name] = [seen, value];
  }
  return out;
}

/** The part of a node response (ServerResponse, Http2ServerResponse, ServerHttp2Stream) a body is written to. */
export interface BodySink {
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  write(chunk: Uint8Array): boolean;
  end(): void;
  on(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
}

/** Resolves when `sink` can take more (drain) or is gone (close). */
function writable(sink: BodySink): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      sink.off('drain', done);
      sink.off('close', done);
      resolve();
    };
    sink.on('drain', done);
    sink.on('close', done);
  });
}

/**
 * Writes `body` to `sink` with backpressure and ends it; `beforeEnd` runs right before the end.
 * A client gone stops the copy; a body that breaks calls `broken` (reset or close, so a short
 * body never looks complete).
 */
export async function writeBody(body: ReadableStream<Uint8Array>, sink: BodySink, broken: () => void, beforeEnd?: () => void): Promise<void> {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (sink.destroyed || sink.writableEnded) {
        await reader.cancel().catch(() => {});
        return;
      }
      if (!sink.write(value)) await writable(sink);
    }
    beforeEnd?.();
    sink.end();
  } catch {
    if (!sink.destroyed) broken();
    await reader.cancel().catch(() => {});
  }
}
