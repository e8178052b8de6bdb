// node:http(s).request with keep-alive Agents as the transport, on Bun and Deno: the one
// client that sends the target byte for byte (Bun's fetch collapses `//` and dot segments),
// adds no User-Agent or Accept, honours Host, and streams both ways on every runtime.
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { lookupWithLocalhost } from './localhost.ts';
import type { ClosableTransport, UpstreamInit } from './types.ts';

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
// Hop-by-hop response fields (RFC 9110 §7.6.1), dropped while copying.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

interface Origin {
  readonly secure: boolean;
  readonly hostname: string;
  readonly port: number;
}

export function createNodeHttpTransport(): ClosableTransport {
  const agentOptions = { keepAlive: true, keepAliveMsecs: 1000, maxFreeSockets: 256, scheduling: 'lifo' as const };
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent(agentOptions);
  const origins = new Map<string, Origin>();

  const originOf = (origin: string): Origin => {
    let o = origins.get(origin);
    if (!o) {
      const u = new URL(origin);
      const secure = u.protocol === 'https:';
      o = { secure, hostname: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) || (secure ? 443 : 80) };
      origins.set(origin, o);
    }
    return o;
  };

  const attempt = (origin: Origin, path: string, init: UpstreamInit, headers: Record<string, string>, retry: boolean): Promise<Response> =>
    new Promise<Response>((resolve, reject) => {
      const req = (origin.secure ? https : http).request({
        host: origin.hostname,
        port: origin.port,
        path,
        method: init.method,
        headers,
        agent: origin.secure ? httpsAgent : httpAgent,
        signal: init.signal,
        // `localhost` may be ::1 or 127.0.0.1 depending on the service: try both (RFC 8305).
        lookup: lookupWithLocalhost,
        autoSelectFamily: true,
      } as http.RequestOptions);
      req.on('error', (error) => {
        // A pooled socket the upstream closed while idle fails on reuse before any byte of
        // ours was processed; Node documents retrying once on `reusedSocket`.
        if (retry && req.reusedSocket && (error as { code?: string }).code === 'ECONNRESET' && !init.signal.aborted) {
          resolve(attempt(origin, path, init, headers, false));
        } else reject(error);
      });
      req.on('response', (res) => {
        const out = new Headers();
        const raw = res.rawHeaders;
        const connection = res.headers.connection;
        const named = connection
          ? new Set(
              connection
                .toLowerCase()
                .split(',')
                .map((s) => s.trim()),
            )
          : null;
        for (let i = 0; i < raw.length; i += 2) {
          const name = (raw[i] as string).toLowerCase();
          if (HOP_BY_HOP.has(name) || named?.has(name)) continue;
          out.append(name, raw[i + 1] as string);
        }
        const status = res.statusCode ?? 502;
        if (NULL_BODY_STATUS.has(status) || init.method === 'HEAD') {
          res.resume();
          resolve(new Response(null, { status, statusText: res.statusMessage, headers: out }));
          return;
        }
        const body = Readable.toWeb(res) as NodeReadableStream as unknown as ReadableStream<Uint8Array>;
        resolve(new Response(body, { status, statusText: res.statusMessage, headers: out }));
      });
      if (init.body === null) req.end();
      else pump(init.body, req);
    });

  return {
    name: 'node-http',
    fetch: function nodeHttpTransport(url: string, init: UpstreamInit) {
      const pathStart = url.indexOf('/', url.indexOf('//') + 2);
      const headers: Record<string, string> = {};
      for (const [name, value] of init.headers) headers[name] = value;
      // Only a request without a body is safe to send twice.
      const idempotent = init.body === null;
      return attempt(originOf(url.slice(0, pathStart)), url.slice(pathStart), init, headers, idempotent);
    },
    close: async () => {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

/** Streams a web body into a request with backpressure; a failing body destroys the request. */
async function pump(body: ReadableStream<Uint8Array>, req: http.ClientRequest): Promise<void> {
  const reader = body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!req.write(value)) await new Promise((resolve) => req.once('drain', resolve));
      if (req.destroyed) break;
    }
    req.end();
  } catch (error) {
    req.destroy(error as Error);
  }
}
