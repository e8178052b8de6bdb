// The access log: one JSON line per request, written when the response is complete as far as
// the proxy can tell (see `AccessRecord.countBody`). Also owns the request id.
import type { MiddlewareHandler } from 'hono';
import { type AppEnv, methodOf } from '../app-env.ts';
import type { Logger } from './logger.ts';

/** What the rest of the chain tells the access log about one request. */
export interface AccessRecord {
  id: string;
  upstream: string | null;
  /** Overrides the response status in the log (499 when the client left first). */
  status: number | null;
  error: string | null;
  /** Set when the body is being counted; the line is written when it ends. */
  streaming: boolean;
}

/**
 * Request ids: a random per-process prefix and a counter. Unique within a process and across
 * restarts, and far cheaper per request than a UUID.
 */
export function createRequestIds(): () => string {
  const prefix = Math.floor(Math.random() * 0x7fffffff).toString(36);
  let n = 0;
  return () => `${prefix}-${(++n).toString(36)}`;
}

export const accessLog = (logger: Logger, nextId = createRequestIds()): MiddlewareHandler<AppEnv> =>
  async function accessLog(c, next) {
    const start = performance.now();
    const rec: AccessRecord = { id: nextId(), upstream: null, status: null, error: null, streaming: false };
    const raw = c.req.raw;
    const write = (bytes: number) => {
      let path = c.get('target');
      if (path === undefined) {
        const url = raw.url;
        const pathStart = url.indexOf('/', url.indexOf('//') + 2);
        path = pathStart < 0 ? url : url.slice(pathStart);
      }
      // Serialised by hand: one line per request is the hottest logging there is.
      const q = JSON.stringify;
      let fields = `,"client":${q(c.env.remoteAddr)},"method":${q(methodOf(c))},"host":${q(raw.headers.get('host'))},"path":${q(path)}`;
      fields += `,"status":${rec.status ?? c.res.status},"bytes":${bytes},"duration_ms":${Math.round((performance.now() - start) * 100) / 100}`;
      fields += `,"upstream":${q(rec.upstream)},"request_id":${q(rec.id)}`;
      if (rec.error) fields += `,"error":${q(rec.error)}`;
      logger.logSerialized('info', 'access', fields);
    };
    c.set('access', rec);
    c.set('logDone', write);
    await next();
    if (rec.streaming) return;
    const length = c.res.headers.get('content-length');
    write(length === null ? 0 : Number(length));
  };

/** Wraps a body so the access line is written with the byte count once it ends or breaks. */
export function countBody(body: ReadableStream<Uint8Array>, done: (bytes: number) => void): ReadableStream<Uint8Array> {
  let bytes = 0;
  let finished = false;
  const finish = () => {
    if (!finished) {
      finished = true;
      done(bytes);
    }
  };
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { value, done: end } = await reader.read();
        if (end) {
          controller.close();
          finish();
          return;
        }
        bytes += value.byteLength;
        controller.enqueue(value);
      } catch (error) {
        finish();
        controller.error(error);
      }
    },
    cancel(reason) {
      finish();
      return reader.cancel(reason);
    },
  });
}
