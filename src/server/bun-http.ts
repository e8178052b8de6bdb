// Bun listener: node:http with a thin Web adapter of our own. Bun.serve is faster but drops a
// Content-Length set on a streamed body (oven-sh/bun#10507) and rewrites the request target
// (dot segments, absolute-form) before the app sees it; @hono/node-server on Bun costs ~30% of
// throughput over this adapter (docs/runtimes.md). Bun's Request and Response are native, so
// building real ones per request is cheap here (unlike on Node).
import http from 'node:http';
import { normalizePeer } from '../proxy/headers.ts';
import { nodeServerOptions, startNodeServer } from './node-listen.ts';
import type { AppFetch, Listener, ListenOptions } from './types.ts';

const SMALL_BODY_BYTES = 64 * 1024;

export async function listenBunHttp(fetch: AppFetch, options: ListenOptions): Promise<Listener> {
  const server = http.createServer(nodeServerOptions(options), (req, res) => {
    handle(fetch, req, res).catch((error) => {
      // The app maps its own failures; reaching here is a bug in this adapter. Never crash.
      console.error('switchyard: response adapter failed', error);
      try {
        if (res.headersSent) throw error;
        res.statusMessage = '';
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('internal error\n');
      } catch {
        res.destroy(); // nothing sane can be written on this connection any more
      }
    });
  });
  return startNodeServer(server, options);
}

async function handle(fetch: AppFetch, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const raw = req.rawHeaders;
  const headers = new Headers();
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i] as string, raw[i + 1] as string);
  const target = req.url ?? '/';
  // Absolute-form stays as sent so the guard can compare it with Host.
  const url = target.charCodeAt(0) === 47 /* / */ ? `http://${headers.get('host') ?? 'localhost'}${target}` : target;
  const abort = new AbortController();
  // Client gone before we finished answering: abort the request so the upstream is cancelled.
  res.once('close', () => {
    if (!res.writableFinished) abort.abort(new Error('client closed the connection'));
  });
  const hasBody = headers.has('content-length') ? headers.get('content-length') !== '0' : headers.has('transfer-encoding');
  let request: Request;
  try {
    request = new Request(url, {
      method: req.method,
      headers,
      // Bun accepts an async iterable (the IncomingMessage) as a streamed body.
      body: hasBody ? (req as unknown as BodyInit) : null,
      signal: abort.signal,
      duplex: 'half',
    } as RequestInit);
  } catch {
    // Not a URL: a Host header no URL parser accepts, or a malformed target.
    res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('bad request: invalid Host header or request target\n');
    return;
  }
  const response = await fetch(request, {
    remoteAddr: normalizePeer(req.socket.remoteAddress ?? ''),
    rawTarget: target,
    proto: 'http',
    httpVersion: req.httpVersion,
  });

  const out: Record<string, string | string[]> = {};
  for (const [name, value] of response.headers) {
    if (name === 'set-cookie') continue;
    out[name] = value;
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length) out['set-cookie'] = cookies;
  const body = response.body;
  if (body === null || req.method === 'HEAD') {
    res.writeHead(response.status, response.statusText || undefined, out);
    res.end();
    return;
  }
  // A small body with a declared length goes out in one write: reading a web stream chunk by
  // chunk costs more on Bun than the bytes themselves. Bounded, like nginx's proxy buffers.
  // It is read before the head is written, so a body that breaks becomes a clean 502.
  const length = response.headers.get('content-length');
  if (length !== null && Number(length) <= SMALL_BODY_BYTES) {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await response.arrayBuffer());
    } catch {
      res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('bad gateway\n');
      return;
    }
    res.writeHead(response.status, response.statusText || undefined, out);
    res.end(bytes);
    return;
  }
  res.writeHead(response.status, response.statusText || undefined, out);
  const reader = body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!res.write(value)) {
        await new Promise<void>((resolve) => {
          const go = () => {
            res.off('drain', go);
            res.off('close', go);
            resolve();
          };
          res.on('drain', go);
          res.on('close', go);
        });
      }
      if (res.destroyed) {
        await reader.cancel(new Error('client closed the connection'));
        return;
      }
    }
    res.end();
  } catch (error) {
    // The upstream body broke mid-way: cut the client connection so it sees a truncated
    // response instead of a clean end (RFC 9112 §6.3: an incomplete message must not look whole).
    res.destroy(error as Error);
  }
}
