// undici's dispatcher as the transport (Node, Deno and Bun): raw bytes (no decompression), the
// Host header as given, no invented headers, keep-alive pools per origin, streaming both ways.
// It uses the low-level dispatch handler API and feeds a web ReadableStream directly: going
// through undici's Node Readable and Readable.toWeb cost ~35% of throughput on Bun and Node.
// Global fetch is no option: it drops Host and decompresses on Node and Deno, and adds headers
// and normalises paths on Bun (docs/runtimes.md).
// 'undici/index.js', not 'undici': on Bun the bare name is Bun's own shim (which decompresses).
import { Agent, type Dispatcher } from 'undici/index.js';
import { responseHeadersFromFields } from '../proxy/headers.ts';
import { lookupWithLocalhost } from './localhost.ts';
import type { ClosableTransport, UpstreamInit } from './types.ts';

// RFC 9110: these statuses never carry a body, and the Response constructor rejects one.
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
// Upstream bytes buffered per response before undici is paused (backpressure).
const BODY_HIGH_WATER_BYTES = 64 * 1024;
const PLAIN_REASON = /^[\t\x20-\x7e]*$/;

// SNI and certificate name per upstream origin; computed once per origin (IP literals get none).
const servernames = new Map<string, string | undefined>();
function servernameOf(origin: string): string | undefined {
  if (!servernames.has(origin)) {
    const { protocol, hostname } = new URL(origin);
    const isIp = hostname.startsWith('[') || /^\d+\.\d+\.\d+\.\d+$/.test(hostname);
    servernames.set(origin, protocol === 'https:' && !isIp ? hostname : undefined);
  }
  return servernames.get(origin);
}

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
    fetch: function undiciTransport(url: string, init: UpstreamInit) {
      const pathStart = url.indexOf('/', url.indexOf('//') + 2);
      const origin = url.slice(0, pathStart);
      const method = init.method;
      return new Promise<Response>((resolve, reject) => {
        const signal = init.signal;
        let control: Dispatcher.DispatchController | null = null;
        let stream: ReadableStreamDefaultController<Uint8Array> | null = null;
        // The response head once it is known; null for HEAD and null-body statuses.
        let head: ResponseInit | null = null;
        let declaredLength = false;
        let smallBody = false;
        let awaitingWhole = false;
        let resolved = false;
        let ended = false;
        let early: Buffer[] = [];
        let earlyBytes = 0;
        const onAbort = () => control?.abort(signal.reason);
        const cleanup = () => signal.removeEventListener('abort', onAbort);
        const fail = (error: Error) => {
          cleanup();
          if (!resolved) {
            resolved = true;
            reject(error);
          } else stream?.error(error);
        };
        const settle = (response: Response) => {
          resolved = true;
          resolve(response);
        };
        if (signal.aborted) {
          reject(signal.reason);
          return;
        }
        signal.addEventListener('abort', onAbort, { once: true });

        // Hands the response over one microtask after its head: bytes undici parsed in the same
        // pass (a small body usually arrives with its head) are in `early` by then. A body that is
        // already complete and declared its length goes out as bytes, sparing a stream per
        // response; anything else streams, starting with what arrived early.
        const handOver = (controller: Dispatcher.DispatchController) => {
          if (resolved || head === null) return;
          // A small declared body still on its way is awaited whole (bounded, like nginx's
          // proxy buffers): if it breaks, the client gets a clean 502, not a truncated answer.
          if (!ended && declaredLength && smallBody) {
            awaitingWhole = true;
            return;
          }
          if (ended && declaredLength) {
            const bytes = early.length === 1 ? (early[0] as Buffer) : Buffer.concat(early, earlyBytes);
            settle(new Response(bytes as unknown as Uint8Array<ArrayBuffer>, head));
            return;
          }
          const body = new ReadableStream<Uint8Array>(
            {
              start(c) {
                stream = c;
                for (const chunk of early) c.enqueue(chunk);
                early = [];
                if (ended) c.close();
              },
              pull() {
                if (controller.paused) controller.resume();
              },
              cancel(reason) {
                cleanup();
                controller.abort(reason instanceof Error ? reason : new Error('response body cancelled'));
              },
            },
            new ByteLengthQueuingStrategy({ highWaterMark: BODY_HIGH_WATER_BYTES }),
          );
          settle(new Response(body, head));
        };

        const handler: Dispatcher.DispatchHandler = {
          onRequestStart(controller) {
            control = controller;
            if (signal.aborted) controller.abort(signal.reason);
          },
          onResponseStart(controller, statusCode, headers, statusMessage) {
            // 1xx informational answers (100 Continue, 103 Early Hints) are not the response.
            if (statusCode < 200) return;
            // RFC 9110 §15: three digits; a Response cannot carry more than 599 either.
            if (statusCode > 599) {
              const error = Object.assign(new Error(`invalid status ${statusCode}`), { code: 'UPSTREAM_INVALID_STATUS' });
              fail(error);
              controller.abort(error);
              return;
            }
            // A reason phrase is optional (RFC 9112 §4); one no header may carry is dropped.
            const statusText = PLAIN_REASON.test(statusMessage ?? '') ? statusMessage : '';
            const init = { status: statusCode, statusText, headers: responseHeadersFromFields(headers) };
            if (NULL_BODY_STATUS.has(statusCode) || method === 'HEAD') {
              settle(new Response(null, init));
              return;
            }
            head = init;
            const length = headers['content-length'];
            declaredLength = length !== undefined;
            smallBody = declaredLength && Number(length) <= BODY_HIGH_WATER_BYTES;
            queueMicrotask(() => {
              try {
                handOver(controller);
              } catch (error) {
                // Never leave the caller waiting: whatever broke here is the upstream's answer.
                fail(error as Error);
                controller.abort(error as Error);
              }
            });
          },
          onResponseData(controller, chunk) {
            if (head === null) return; // body of a HEAD / null-body answer: ignored
            if (stream === null) {
              early.push(chunk);
              earlyBytes += chunk.byteLength;
              if (earlyBytes >= BODY_HIGH_WATER_BYTES && !smallBody) controller.pause();
              return;
            }
            stream.enqueue(chunk);
            if ((stream.desiredSize ?? 1) <= 0) controller.pause();
          },
          onResponseEnd(controller) {
            cleanup();
            ended = true;
            stream?.close();
            if (awaitingWhole) handOver(controller);
          },
          onResponseError(_controller, error) {
            fail(error);
          },
        };

        agent.dispatch(
          {
            origin,
            path: url.slice(pathStart),
            // TLS checks the configured upstream's name, never the client's Host.
            servername: servernameOf(origin),
            method: method as Dispatcher.HttpMethod,
            headers: init.headers as unknown as Iterable<[string, string]>,
            // A web ReadableStream is an async iterable on every runtime; undici streams it.
            body: init.body as unknown as import('node:stream').Readable | null,
            // `servername` is a Request option undici's types do not list.
          } as Dispatcher.DispatchOptions,
          handler,
        );
      });
    },
    // Called after the grace period: whatever is still in flight is cut.
    close: () => agent.destroy(),
  };
}
