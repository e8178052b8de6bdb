// Streaming: 1 GiB up and down through the proxy with flat memory, and incremental delivery.
// SWITCHYARD_E2E_BIG_BYTES shrinks the transfers for quick local runs (default 1 GiB).
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { generator, mib, type ProxyHandle, RUNTIMES, rssKiB, sampleRss, startProxy, startUpstream, type Upstream } from './harness.ts';

const BIG = Number(process.env.SWITCHYARD_E2E_BIG_BYTES ?? 1024 ** 3);
/** Allowed growth of the proxy's RSS over its baseline during a transfer. */
const HEADROOM_KIB = 200 * 1024;

for (const runtime of RUNTIMES) {
  describe(`streaming on ${runtime}`, () => {
    let counter: Upstream;
    let source: Upstream;
    let sse: Upstream;
    let proxy: ProxyHandle;
    let secondSentAt = 0;
    /** RSS right after start-up: every transfer is measured against it, so growth cannot accumulate unseen. */
    let baseline = 0;

    before(async () => {
      [counter, source, sse] = await Promise.all([
        // Counts the request body without keeping it, answers with the count.
        startUpstream(
          (req, res) => {
            let n = 0;
            req.on('data', (c: Buffer) => (n += c.length));
            req.on('end', () => res.end(JSON.stringify({ bytes: n, te: req.headers['transfer-encoding'] ?? null, cl: req.headers['content-length'] ?? null })));
          },
          { raw: true },
        ),
        // Generates BIG bytes with a Content-Length.
        startUpstream((_req, res) => {
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG) });
          generator(BIG).pipe(res);
        }),
        // Server-sent events: one event, 300 ms of silence, another.
        startUpstream((_req, res) => {
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
          res.write('data: one\n\n');
          setTimeout(() => {
            secondSentAt = performance.now();
            res.end('data: two\n\n');
          }, 300);
        }),
      ]);
      proxy = await startProxy(runtime, {
        routes: [
          { host: 'up.test', upstream: counter.origin },
          { host: 'down.test', upstream: source.origin },
          { host: 'sse.test', upstream: sse.origin },
        ],
      });
      baseline = rssKiB(proxy.pid);
    });
    after(async () => {
      await proxy?.stop();
      await Promise.all([counter?.close(), source?.close(), sse?.close()]);
    });

    for (const framing of ['content-length', 'chunked'] as const) {
      test(`upload of ${BIG} bytes (${framing}) arrives complete with flat proxy memory`, { timeout: 120_000 }, async () => {
        const rss = sampleRss(proxy.pid);
        let peak = 0;
        const t0 = performance.now();
        let reply: { status: number; body: string };
        try {
          reply = await new Promise((resolve, reject) => {
            const headers: Record<string, string> = { host: 'up.test', 'content-type': 'application/octet-stream' };
            if (framing === 'content-length') headers['content-length'] = String(BIG);
            const req = http.request(`${proxy.origin}/upload`, { method: 'POST', headers, agent: false }, (res) => {
              let body = '';
              res.setEncoding('utf8');
              res.on('data', (c) => (body += c));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
              res.on('error', reject);
            });
            req.on('error', reject);
            generator(BIG).pipe(req);
          });
        } finally {
          peak = rss.stop();
        }
        const secs = (performance.now() - t0) / 1000;
        console.log(
          `[rss] ${runtime} upload ${framing}: baseline ${mib(baseline)}, peak ${mib(peak)} (+${mib(peak - baseline)}), ${(BIG / 1024 ** 2 / secs).toFixed(0)} MiB/s`,
        );
        assert.equal(reply.status, 200, reply.body);
        const seen = JSON.parse(reply.body);
        assert.equal(seen.bytes, BIG);
        assert.ok(peak < baseline + HEADROOM_KIB, `peak RSS ${mib(peak)} exceeds baseline ${mib(baseline)} + 200 MiB`);
      });
    }

    test(`download of ${BIG} bytes arrives complete with flat proxy memory`, { timeout: 120_000 }, async () => {
      const rss = sampleRss(proxy.pid);
      let peak = 0;
      const t0 = performance.now();
      let got: { status: number; bytes: number; cl: string | undefined };
      try {
        got = await new Promise((resolve, reject) => {
          const req = http.request(`${proxy.origin}/download`, { headers: { host: 'down.test' }, agent: false }, (res) => {
            let bytes = 0;
            res.on('data', (c: Buffer) => (bytes += c.length));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, cl: res.headers['content-length'] }));
            res.on('error', reject);
          });
          req.on('error', reject);
          req.end();
        });
      } finally {
        peak = rss.stop();
      }
      const secs = (performance.now() - t0) / 1000;
      console.log(
        `[rss] ${runtime} download: baseline ${mib(baseline)}, peak ${mib(peak)} (+${mib(peak - baseline)}), ${(BIG / 1024 ** 2 / secs).toFixed(0)} MiB/s`,
      );
      assert.equal(got.status, 200);
      assert.equal(got.bytes, BIG);
      assert.equal(got.cl, String(BIG));
      assert.ok(peak < baseline + HEADROOM_KIB, `peak RSS ${mib(peak)} exceeds baseline ${mib(baseline)} + 200 MiB`);
    });

    test('streaming is incremental: the first SSE event arrives before the second is sent', async () => {
      secondSentAt = 0;
      const events: { at: number; text: string }[] = [];
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request(`${proxy.origin}/events`, { headers: { host: 'sse.test', accept: 'text/event-stream' }, agent: false }, (res) => {
          res.setEncoding('utf8');
          res.on('data', (c: string) => events.push({ at: performance.now(), text: c }));
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        });
        req.setTimeout(10_000, () => req.destroy(new Error('SSE request timed out')));
        req.on('error', reject);
        req.end();
      });
      assert.equal(status, 200);
      assert.ok(secondSentAt > 0, 'upstream never sent the second event');
      const first = events[0];
      assert.ok(first, 'no data received');
      assert.match(first.text, /data: one/);
      assert.doesNotMatch(first.text, /data: two/, 'first event was held back until the second');
      assert.ok(first.at < secondSentAt, `first event arrived ${(first.at - secondSentAt).toFixed(0)} ms after the second was sent`);
      assert.match(events.map((e) => e.text).join(''), /data: one\n\ndata: two\n\n/);
    });
  });
}
