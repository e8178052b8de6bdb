// undici's dispatcher API as the transport on Node and Deno: raw bytes (no decompression), the
// Host header as given, streaming both ways, keep-alive pools per origin, and no invented
// headers. Global fetch on those runtimes drops Host and decompresses (docs/transport.md).
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { Agent } from 'undici';
import { lookupWithLocalhost } from './localhost.ts';
import type { ClosableTransport, UpstreamInit } from './types.ts';

// RFC 9110 §15.3.5, §15.4.5 and friends: these statuses never carry a body, and the Response
// constructor rejects one.
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
// Hop-by-hop response fields (RFC 9110 §7.6.1); dropped while copying, so the proxy's own
// filter finds nothing to do.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

export function createUndiciTransport(): ClosableTransport {
  const agent = new Agent({
    // The proxy enforces its own header timeout per route; the body may take as long as it takes.
    headersTimeout: 0,
    bodyTimeout: 0,
    keepAliveTimeout: 4_000,
    // `localhost` may be served on ::1 or 127.0.0.1 only: offer both and try each (RFC 8305).
    connect: { lookup: lookupWithLocalhost, autoSelectFamily: true, autoSelectFamilyAttemptTimeout: 250 },
  });

  return {
    name: 'undici',
    fetch: async function undiciTransport(url: string, init: UpstreamInit) {
      const pathStart = url.indexOf('/', url.indexOf('//') + 2);
      const { statusCode, headers, body } = await agent.request({
        origin: url.slice(0, pathStart),
        path: url.slice(pathStart),
        method: init.method,
        headers: init.headers,
        // A web ReadableStream is an async iterable on Node 20 and Deno; undici streams it.
        body: init.body as unknown as Readable | null,
        signal: init.signal,
      });
      const out = new Headers();
      const connection = headers.connection;
      const named =
        typeof connection === 'string'
          ? new Set(
              connection
                .toLowerCase()
                .split(',')
                .map((s) => s.trim()),
            )
          : null;
      for (const name in headers) {
        if (HOP_BY_HOP.has(name) || named?.has(name)) continue;
        const value = headers[name];
        if (Array.isArray(value)) for (const v of value) out.append(name, v);
        else if (value !== undefined) out.append(name, value);
      }
      if (NULL_BODY_STATUS.has(statusCode) || init.method === 'HEAD') {
        body.destroy();
        return new Response(null, { status: statusCode, headers: out });
      }
      return new Response(Readable.toWeb(body) as NodeReadableStream as unknown as ReadableStream<Uint8Array>, { status: statusCode, headers: out });
    },
    // Called after the grace period: whatever is still in flight is cut.
    close: () => agent.destroy(),
  };
}
