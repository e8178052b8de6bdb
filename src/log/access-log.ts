// The access records: when a response is complete as far as the proxy can tell, one typed
// `AccessEntry` goes to every subscriber; the JSON log line is one of them, metrics and the
// dashboard will be others. Also owns the request id.
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import type { Logger } from './logger.ts';

/** What the rest of the chain tells the access log about one request while it is served. */
export interface AccessRecord {
  id: string;
  upstream: string | null;
  /** Overrides the response status in the log (499 when the client left first). */
  status: number | null;
  error: string | null;
  /** Set when the body is being counted; the entry is made when it ends. */
  streaming: boolean;
  /** Set when the request became a WebSocket tunnel, by the time it ended. */
  tunnel?: TunnelFacts;
  /** The origins tried, in order, when there was more than one try. */
  upstreams?: readonly string[];
}

/** How a tunnel went, for its access line. */
export interface TunnelFacts {
  /** Bytes from the client to the upstream (`bytes` counts the other way). */
  readonly bytesIn: number;
  /** `closed` (both ends closed), `idle` (idle timeout), `error` (a side broke), `stopped` (shutdown). */
  readonly end: string;
  /** Which side ended or broke first. */
  readonly first: 'client' | 'upstream' | null;
}

/**
 * One served request, as subscribers receive it. Field names are the access line's (README
 * "Logs"), so a subscriber and the log agree on what each means.
 */
export interface AccessEntry {
  /** Epoch milliseconds when the entry was made. */
  readonly time: number;
  readonly request_id: string;
  /** The client (`RequestFacts.client`): the peer, or the address a trusted proxy forwarded for. */
  readonly client: string;
  /** The socket peer, only when it is not `client` (a trusted proxy). */
  readonly peer?: string;
  /** The listener's scheme: `"https"` on the TLS listener. */
  readonly scheme: 'http' | 'https';
  /** `"1.1"`, `"1.0"`, `"2.0"` (h2), or null where the listener cannot tell (Deno's plain listener). */
  readonly version: string | null;
  /** The method exactly as sent. */
  readonly method: string;
  /** The Host header as sent, or null. */
  readonly host: string | null;
  /** The request target's path and query (as sent; before any prefix strip). */
  readonly path: string;
  readonly status: number;
  /**
   * The Content-Length, or the counted bytes of a streamed body.
   */
  readonly bytes: number;
  /**
   * To the response head for a response with a Content-Length, to its last byte for a
   * streamed one (counting every body would cost a stream wrapper per request).
   */
  readonly duration_ms: number;
  /** The upstream origin the request was sent to, or null when none was. */
  readonly upstream: string | null;
  /** The matched route's `key` (config/compile.ts), or null when no route matched. */
  readonly route: string | null;
  /** What went wrong, for every answer the proxy made itself (proxy/errors.ts), else null. */
  readonly error: string | null;
  /**
   * WebSocket tunnels only (status 101; `bytes` is what the upstream sent, `duration_ms` the
   * tunnel's whole life): the bytes the client sent, how it ended, which side ended first.
   */
  readonly tunnel: { readonly bytes_in: number; readonly end: string; readonly first: string | null } | null;
  /** The origins tried in order, only when a request took more than one try (`upstream` is the last); else null. */
  readonly upstreams: readonly string[] | null;
}

export interface AccessLogOptions {
  readonly logger: Logger;
  /** Receives every entry after the log line is queued. Must not throw (a throw is logged and dropped). */
  readonly onAccess?: (entry: AccessEntry) => void;
  /** Request ids; see `createRequestIds`. */
  readonly nextId?: () => string;
  /** Epoch milliseconds, for entries and their log lines. */
  readonly now?: () => number;
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

/** The access line subscriber: the entry serialised by hand, fields in README order. */
export function writeAccessLine(logger: Logger, e: AccessEntry): void {
  // Serialised by hand: one line per request is the hottest logging there is.
  const q = JSON.stringify;
  let fields = `,"client":${q(e.client)}${e.peer === undefined ? '' : `,"peer":${q(e.peer)}`},"scheme":"${e.scheme}","version":${q(e.version)},"method":${q(e.method)},"host":${q(e.host)},"path":${q(e.path)}`;
  fields += `,"status":${e.status},"bytes":${e.bytes},"duration_ms":${e.duration_ms}`;
  fields += `,"upstream":${q(e.upstream)},"request_id":${q(e.request_id)}`;
  if (e.tunnel !== null) fields += `,"bytes_in":${e.tunnel.bytes_in},"end":"${e.tunnel.end}","first":${q(e.tunnel.first)}`;
  if (e.upstreams !== null) fields += `,"tries":${e.upstreams.length},"upstreams":${q(e.upstreams)}`;
  if (e.error !== null) fields += `,"error":${q(e.error)}`;
  logger.logSerialized('info', 'access', fields);
}

export const accessLog = ({ logger, onAccess, nextId = createRequestIds(), now = Date.now }: AccessLogOptions): MiddlewareHandler<AppEnv> =>
  async function accessLog(c, next) {
    const start = performance.now();
    const rec: AccessRecord = { id: nextId(), upstream: null, status: null, error: null, streaming: false };
    const write = (bytes: number) => {
      const raw = c.req.raw;
      let path = c.get('target');
      if (path === undefined) {
        const url = raw.url;
        const pathStart = url.indexOf('/', url.indexOf('//') + 2);
        path = pathStart < 0 ? url : url.slice(pathStart);
      }
      const facts = c.get('facts');
      const tunnel = rec.tunnel;
      const entry: AccessEntry = {
        time: now(),
        request_id: rec.id,
        client: facts.client,
        peer: facts.client === facts.conn.remoteAddr ? undefined : facts.conn.remoteAddr,
        scheme: facts.conn.proto,
        version: facts.httpVersion,
        method: facts.method,
        host: raw.headers.get('host'),
        path,
        status: rec.status ?? c.res.status,
        bytes,
        duration_ms: Math.round((performance.now() - start) * 100) / 100,
        upstream: rec.upstream,
        route: c.get('route')?.key ?? null,
        error: rec.error || null,
        tunnel: tunnel === undefined ? null : { bytes_in: tunnel.bytesIn, end: tunnel.end, first: tunnel.first },
        upstreams: rec.upstreams ?? null,
      };
      writeAccessLine(logger, entry);
      if (onAccess !== undefined) {
        try {
          onAccess(entry);
        } catch (error) {
          // A subscriber's bug must not break the response it describes.
          logger.error('access subscriber failed', { error: error instanceof Error ? (error.stack ?? error.message) : String(error), request_id: rec.id });
        }
      }
    };
    c.set('access', rec);
    c.set('logDone', write);
    await next();
    if (rec.streaming) return;
    const length = c.res.headers.get('content-length');
    write(length === null ? 0 : Number(length));
  };

/** Wraps a body so the access entry is made with the byte count once it ends or breaks. */
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
