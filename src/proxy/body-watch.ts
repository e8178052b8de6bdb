// The request body on its way upstream, watched: cut with 413 when it crosses the route's body
// limit, with 408 when it stalls or trickles (the client limits, server/limits.ts). Only the
// time spent waiting for the client counts: a pull starts the wait, the bytes end it, so an
// upstream that reads slowly (backpressure) is never blamed on the client.
import { BODY_RATE_GRACE_MS } from '../server/limits.ts';
import { ProxyError } from './errors.ts';

export interface BodyWatch {
  /** Cut with 413 past this many bytes (chunked bodies; a declared length is checked before). Null: no limit. */
  readonly limit: number | null;
  /** One wait for the client's next bytes may last this long. */
  readonly stallMs: number;
  /** After BODY_RATE_GRACE_MS (or `stallMs`, if shorter) of waiting, the bytes per second of waiting must reach this. 0: off. */
  readonly minBytesPerSecond: number;
  /** Cancels the exchange with the failure (the answer becomes its status). */
  readonly fail: (error: ProxyError) => void;
  /** Called once the whole body has been handed on. */
  readonly onEnd: () => void;
}

/** `body` as the upstream reads it, under `watch`. */
export function watchedBody(body: ReadableStream<Uint8Array>, watch: BodyWatch): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  const { limit, stallMs, minBytesPerSecond, fail } = watch;
  // A stall timeout shorter than the grace would cut first anyway; the rate is judged from then.
  const graceMs = Math.min(BODY_RATE_GRACE_MS, stallMs);
  let seen = 0;
  let waited = 0;
  let failed = false;
  const failWith = (controller: ReadableStreamDefaultController<Uint8Array>, error: ProxyError) => {
    failed = true;
    fail(error);
    controller.error(error);
    void reader.cancel(error).catch(() => {});
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const started = Date.now();
        const stall = setTimeout(
          () => failWith(controller, new ProxyError('body-timeout', 'client', false, `request body stalled for ${stallMs} ms`, { reply: 'request timeout' })),
          stallMs,
        );
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (error) {
          if (!failed) controller.error(error);
          return;
        } finally {
          clearTimeout(stall);
        }
        if (failed) return;
        if (chunk.done) {
          controller.close();
          watch.onEnd();
          return;
        }
        const value = chunk.value;
        waited += Date.now() - started;
        seen += value.byteLength;
        if (limit !== null && seen > limit)
          return failWith(controller, new ProxyError('body-too-large', 'client', false, `request body exceeds ${limit} bytes`));
        if (minBytesPerSecond > 0 && waited > graceMs && (seen * 1000) / waited < minBytesPerSecond) {
          const rate = Math.round((seen * 1000) / waited);
          return failWith(
            controller,
            new ProxyError('body-timeout', 'client', false, `request body too slow: ${rate} bytes/s over ${waited} ms of waiting`, {
              reply: 'request timeout',
            }),
          );
        }
        controller.enqueue(value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
