// Long-lived and unbounded responses (issue 8, "Streams"): server-sent events relayed as they
// arrive whatever their size, headers before a late first event, no timeout cutting a stream
// the upstream still feeds, an upstream dying mid-body seen as a broken response, a client
// leaving mid-stream closing the upstream at once (logged 499), and what happens to trailers.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { until, within } from '../support/wait.ts';
import { type LogLine, type ProxyHandle, RUNTIMES, rawRequest, startProxy, startUpstream, type Upstream } from './harness.ts';

/** When each event (by number) was written by the upstream, per stream. */
const sentAt = new Map<string, number[]>();

/** An SSE upstream: `/sse?n=&size=&gap=&first=` sends n events of about `size` bytes, `gap` ms apart, the first after `first` ms. */
function sseHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const id = url.searchParams.get('id') ?? 'x';
  const n = Number(url.searchParams.get('n') ?? 3);
  const size = Number(url.searchParams.get('size') ?? 10);
  const gap = Number(url.searchParams.get('gap') ?? 100);
  const first = Number(url.searchParams.get('first') ?? 0);
  const endless = url.searchParams.has('endless');
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
  const times: number[] = [];
  sentAt.set(id, times);
  let i = 0;
  const sendOne = () => {
    if (res.destroyed) return;
    times.push(performance.now());
    res.write(`id: ${i}\ndata: ${String(i).padStart(6, '0')}${'x'.repeat(Math.max(0, size - 6))}\n\n`);
    i++;
    if (endless || i < n) timer = setTimeout(sendOne, gap);
    else res.end();
  };
  let timer = setTimeout(sendOne, first);
  res.on('close', () => clearTimeout(timer));
}

interface Received {
  readonly status: number;
  readonly headersAt: number;
  /** Arrival time of each complete event, by number. */
  readonly eventAt: number[];
  readonly events: string[];
  readonly complete: boolean;
}

/** Reads an SSE response through the proxy, noting when the head and each event arrived. */
function readEvents(origin: string, path: string, host: string, timeoutMs = 15_000): Promise<Received> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request(`${origin}${path}`, { headers: { host, accept: 'text/event-stream' }, agent: false }, (res) => {
      const headersAt = performance.now() - started;
      const eventAt: number[] = [];
      const events: string[] = [];
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          events.push(buffer.slice(0, end));
          eventAt.push(performance.now());
          buffer = buffer.slice(end + 2);
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headersAt, eventAt, events, complete: res.complete }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`SSE ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

for (const runtime of RUNTIMES) {
  describe(`long-lived streams on ${runtime}`, () => {
    let sse: Upstream;
    let dying: Upstream;
    let trailers: Upstream;
    let proxy: ProxyHandle;
    /** Upstream responses of the endless stream, closed or not. */
    const endless: { closedAt: number }[] = [];

    before(async () => {
      [sse, dying, trailers] = await Promise.all([
        startUpstream(
          (req, res) => {
            if ((req.url ?? '').includes('endless')) {
              const record = { closedAt: 0 };
              endless.push(record);
              res.on('close', () => {
                record.closedAt = Date.now();
              });
            }
            sseHandler(req, res);
          },
          { raw: true },
        ),
        // Dies mid-body: /chunked sends two chunks then destroys its socket; /length declares
        // 100000 bytes, sends 30000 and destroys it.
        startUpstream(
          (req, res) => {
            if (req.url === '/length') {
              res.writeHead(200, { 'content-length': '100000' });
              res.write(Buffer.alloc(30_000, 97));
            } else {
              res.writeHead(200, { 'content-type': 'text/plain' });
              res.write('first part;');
              res.write('second part;');
            }
            setTimeout(() => res.socket?.destroy(), 150);
          },
          { raw: true },
        ),
        // Answers chunked with a trailer, and reports what it received (TE, body, trailers).
        startUpstream(
          (req, res) => {
            const chunks: Buffer[] = [];
            req.on('data', (c: Buffer) => chunks.push(c));
            req.on('end', () => {
              res.writeHead(200, { 'content-type': 'application/json', trailer: 'x-checksum' });
              res.write(JSON.stringify({ te: req.headers.te ?? null, body: Buffer.concat(chunks).toString(), trailers: req.trailers }));
              res.addTrailers({ 'x-checksum': 'abc' });
              res.end();
            });
          },
          { raw: true },
        ),
      ]);
      proxy = await startProxy(runtime, {
        routes: [
          { host: 'sse.test', upstream: sse.origin, timeoutMs: 1000 },
          { host: 'dying.test', upstream: dying.origin },
          { host: 'trailers.test', upstream: trailers.origin },
        ],
        // Short client limits: none of them may cut a stream the upstream still feeds.
        limits: { idleTimeoutMs: 500, sendTimeoutMs: 1000, headerTimeoutMs: 1000, bodyTimeoutMs: 1000 },
      });
    });
    after(async () => {
      await proxy?.stop();
      await Promise.all([sse?.close(), dying?.close(), trailers?.close()]);
    });

    for (const size of [1, 256 * 1024]) {
      test(`SSE events of ${size} bytes reach the client as they are sent, each within milliseconds`, { timeout: 20_000 }, async () => {
        const id = `relay-${size}`;
        const got = await readEvents(proxy.origin, `/sse?id=${id}&n=10&size=${size}&gap=100`, 'sse.test');
        assert.equal(got.status, 200);
        assert.equal(got.events.length, 10);
        for (const [i, event] of got.events.entries()) assert.ok(event.startsWith(`id: ${i}\ndata: ${String(i).padStart(6, '0')}`), `event ${i} intact`);
        const sent = sentAt.get(id) ?? [];
        const delays = got.eventAt.map((at, i) => at - (sent[i] ?? at));
        console.log(`[streams] ${runtime} SSE ${size} B: delay median ${median(delays).toFixed(1)} ms, max ${Math.max(...delays).toFixed(1)} ms`);
        // Each event is flushed on its own: none waits for the next one (sent 100 ms later).
        assert.ok(Math.max(...delays) < 90, `an event waited ${Math.max(...delays).toFixed(0)} ms: held back for the next one`);
      });
    }

    test('the head reaches the client before a first event that comes 1.5 s late', { timeout: 20_000 }, async () => {
      const got = await readEvents(proxy.origin, '/sse?id=late&n=1&first=1500', 'sse.test');
      assert.equal(got.events.length, 1);
      console.log(
        `[streams] ${runtime} head after ${got.headersAt.toFixed(0)} ms, first event ${((got.eventAt[0] ?? 0) - (sentAt.get('late')?.[0] ?? 0)).toFixed(1)} ms after it was sent`,
      );
      assert.ok(got.headersAt < 700, `head arrived after ${got.headersAt.toFixed(0)} ms, with the late event`);
    });

    test('a stream the upstream feeds every 1.2 s outlives every client and route timeout (0.5-1 s)', { timeout: 20_000 }, async () => {
      const got = await readEvents(proxy.origin, '/sse?id=slow&n=5&gap=1200', 'sse.test');
      assert.equal(got.status, 200);
      assert.equal(got.events.length, 5);
      assert.equal(got.complete, true, 'the stream ended cleanly, not cut');
    });

    test('an upstream that dies mid-body: a chunked response ends without its last chunk', { timeout: 10_000 }, async () => {
      const r = await rawRequest(proxy.port, 'GET /chunked HTTP/1.1\r\nHost: dying.test\r\n\r\n', { idleMs: 3000 });
      assert.equal(r.status, 200);
      const body = r.body.toString('latin1');
      assert.match(body, /first part;/);
      assert.doesNotMatch(body, /(^|\r\n)0\r\n\r\n$/, `the body looks complete: ${JSON.stringify(body.slice(-40))}`);
    });

    test('an upstream that dies mid-body: a Content-Length response arrives short and the connection closes', { timeout: 10_000 }, async () => {
      const r = await rawRequest(proxy.port, 'GET /length HTTP/1.1\r\nHost: dying.test\r\n\r\n', { idleMs: 3000 });
      assert.equal(r.status, 200);
      const declared = Number(r.headers.find(([name]) => name === 'content-length')?.[1]);
      assert.equal(declared, 100_000);
      assert.ok(r.body.length < declared, `got ${r.body.length} of ${declared} bytes: looks complete`);
      // node:http sees it as an aborted response, never a complete one.
      const seen = await new Promise<{ complete: boolean; error: string | null }>((resolve) => {
        const req = http.get(`${proxy.origin}/length`, { headers: { host: 'dying.test' }, agent: false }, (res) => {
          res.on('data', () => {});
          res.on('end', () => resolve({ complete: res.complete, error: null }));
          res.on('error', (e) => resolve({ complete: res.complete, error: e.message }));
          res.on('aborted', () => resolve({ complete: false, error: 'aborted' }));
        });
        req.on('error', (e) => resolve({ complete: false, error: e.message }));
      });
      assert.equal(seen.complete, false, 'node:http took the short body as complete');
    });

    test('a client that leaves mid-stream closes the upstream response at once, logged 499', { timeout: 10_000 }, async () => {
      const before = endless.length;
      const socket = net.connect(proxy.port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write('GET /sse?id=leave&endless&gap=50 HTTP/1.1\r\nHost: sse.test\r\n\r\n');
      let received = '';
      socket.on('data', (c: Buffer) => {
        received += c.toString('latin1');
      });
      await until(() => received.includes('data: 000002'), 5000, 'three events through the proxy');
      const record = endless[before];
      assert.ok(record, 'the upstream saw the request');
      const leftAt = Date.now();
      socket.destroy();
      await until(() => record.closedAt > 0, 3000, 'the upstream response closed');
      console.log(`[streams] ${runtime} upstream closed ${record.closedAt - leftAt} ms after the client left`);
      assert.ok(record.closedAt - leftAt < 1000, `upstream closed ${record.closedAt - leftAt} ms after the client left`);
      const line = await proxy.waitForLine((l: LogLine) => l.msg === 'access' && l.host === 'sse.test' && String(l.path).includes('id=leave'), 5000);
      assert.equal(line.status, 499, JSON.stringify(line));
      assert.ok(Number(line.bytes) > 0, 'the bytes the client got are counted');
    });

    test('TE is not forwarded; trailers are dropped both ways, bodies arrive intact', { timeout: 10_000 }, async () => {
      const r = await rawRequest(
        proxy.port,
        'POST /t HTTP/1.1\r\nHost: trailers.test\r\nTE: trailers\r\nTransfer-Encoding: chunked\r\nTrailer: x-client\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nx-client: 1\r\n\r\n',
        { idleMs: 3000 },
      );
      assert.equal(r.status, 200);
      const text = r.body.toString('latin1');
      const json = JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)) as {
        te: string | null;
        body: string;
        trailers: Record<string, string>;
      };
      assert.equal(json.te, null, 'TE reached the upstream');
      assert.equal(json.body, 'hello');
      assert.deepEqual(json.trailers, {}, 'a request trailer reached the upstream');
      assert.doesNotMatch(text, /x-checksum/i, 'a response trailer reached the client');
      // Complete either way: chunked to its last chunk, or (a small body the transport read
      // whole, Node) with a Content-Length that matches.
      const length = r.headers.find(([name]) => name === 'content-length')?.[1];
      if (length === undefined) assert.match(text, /0\r\n\r\n$/, 'the response ends with its last chunk');
      else assert.equal(r.body.length, Number(length));
    });

    test('streams through the proxy leave it serving', async () => {
      const got = await within(readEvents(proxy.origin, '/sse?id=after&n=2&gap=10', 'sse.test'), 5000, 'a last stream');
      assert.equal(got.events.length, 2);
    });
  });
}
