// HTTP/2 through the TLS listener (issue 7), black box on every runtime: the foundation's
// forwarding fidelity over h2 (method, :path byte for byte, bodies both ways, repeated headers,
// Cookie crumbs, Set-Cookie, hop-by-hop removal including the fields node:http2 refuses to send,
// X-Forwarded-* and Forwarded, HEAD, 204/304, gzip), what the upstream sees (HTTP/1.1, Host from
// :authority, no pseudo-headers), 100 streams on one connection, a stream reset cancelling only
// its upstream request, and 1 GiB down with the proxy's memory sampled.
// SWITCHYARD_E2E_BIG_BYTES shrinks the big transfer for quick local runs (default 1 GiB).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import type tls from 'node:tls';
import { until } from '../support/wait.ts';
import {
  type Echo,
  forwardingHandler,
  GZ,
  generator,
  headerValues,
  mib,
  RUNTIMES,
  rssKiB,
  type SeenRequest,
  sampleRss,
  startUpstream,
  type Upstream,
} from './harness.ts';
import { curl, fixtures, h2connect, h2request, needs, pem, startTlsProxy, type TlsProxy } from './tls-harness.ts';

const BIG = Number(process.env.SWITCHYARD_E2E_BIG_BYTES ?? 1024 ** 3);
/** Allowed growth of the proxy's RSS over its level right before the big transfer. */
const HEADROOM_KIB = 400 * 1024;
const fx = fixtures();

const config = (up: Upstream) => ({
  listen: '127.0.0.1:0',
  forwarded: true,
  timeouts: { shutdownGraceMs: 3000 },
  tls: {
    listen: '127.0.0.1:0',
    certificates: [
      { cert: 'certs/a-chain.pem', key: 'certs/a.key' },
      { cert: 'certs/w.pem', key: 'certs/w.key' },
    ],
  },
  routes: [{ host: '*', upstream: up.origin }],
});

const echoOf = (body: Buffer): Echo => JSON.parse(body.toString('utf8'));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Connection-specific fields (RFC 9113 §8.2.2) that an h2 response must never carry. */
const CONNECTION_FIELDS = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'];

for (const runtime of RUNTIMES) {
  describe(`http/2 forwarding on ${runtime}`, () => {
    let up: Upstream;
    let proxy: TlsProxy;
    let session: http2.ClientHttp2Session;
    before(async () => {
      up = await startUpstream(forwardingHandler);
      proxy = await startTlsProxy(runtime, config(up));
      session = await h2connect(proxy.httpsPort);
    });
    after(async () => {
      session?.destroy();
      await proxy?.stop();
      await up?.close();
    });
    const last = (): SeenRequest => {
      const s = up.requests.at(-1);
      assert.ok(s, 'the upstream saw a request');
      return s;
    };
    const one = (name: string) => headerValues(last().rawHeaders, name);

    test('the upstream sees HTTP/1.1, Host = :authority, no pseudo-headers, no te/connection from the client, nothing invented', async () => {
      const authority = `a.test:${proxy.httpsPort}`;
      const r = await h2request(session, { path: '/shape?q=1', authority });
      assert.equal(r.status, 200);
      const echo = echoOf(r.body);
      assert.equal(echo.httpVersion, '1.1');
      assert.equal(echo.url, '/shape?q=1');
      assert.deepEqual(headerValues(echo.rawHeaders, 'host'), [authority]);
      const names = echo.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
      assert.deepEqual(
        names.filter((n) => n.startsWith(':')),
        [],
        `pseudo-headers upstream: ${JSON.stringify(echo.rawHeaders)}`,
      );
      assert.deepEqual(headerValues(echo.rawHeaders, 'te'), []);
      // undici (Node, Deno) sends Connection: keep-alive of its own (docs/runtimes.md); nothing else.
      assert.deepEqual(
        headerValues(echo.rawHeaders, 'connection').filter((v) => v !== 'keep-alive'),
        [],
      );
      const allowed = new Set(['host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id', 'forwarded', 'connection']);
      assert.deepEqual(
        names.filter((n) => !allowed.has(n)),
        [],
        `upstream saw ${JSON.stringify(echo.rawHeaders)}`,
      );
      assert.deepEqual(headerValues(echo.rawHeaders, 'x-forwarded-host'), [authority]);
    });

    for (const target of ['/a%2Fb', '//x', '/%7E', '/a/../b', '/./c', '/p?x=%7e&y=a%20b', '/q?a=/../b&c=%2F', '/x;p=1', '/sp%20ace?&&']) {
      test(`:path ${target} reaches the upstream byte for byte`, async () => {
        const r = await h2request(session, { path: target });
        assert.equal(r.status, 200);
        assert.equal(last().url, target);
      });
    }

    for (const method of ['GET', 'DELETE', 'OPTIONS']) {
      test(`method ${method} is forwarded over h2, without a body`, async () => {
        const r = await h2request(session, { method, path: '/m?x=1' });
        assert.equal(r.status, 200);
        assert.equal(last().method, method);
        assert.equal(last().url, '/m?x=1');
        assert.equal(last().bodyBytes, 0);
        assert.deepEqual([one('content-length'), one('transfer-encoding')].flat(), [], 'no body framing invented');
      });
    }

    for (const method of ['POST', 'PUT', 'PATCH']) {
      test(`method ${method} is forwarded over h2 with its body (content-length given)`, async () => {
        const body = `${method}-body-${'z'.repeat(5000)}`;
        const r = await h2request(session, { method, path: '/m', headers: { 'content-type': 'text/plain', 'content-length': String(body.length) }, body });
        assert.equal(r.status, 200);
        assert.equal(last().method, method);
        assert.equal(last().body.toString(), body);
        assert.deepEqual(one('content-type'), ['text/plain']);
      });
    }

    test('a request body without content-length, sent in pieces, arrives whole with one framing header', async () => {
      const pieces = ['part-one/', 'part-two/', 'part-three'];
      const body = new Readable({ read() {} });
      const pending = h2request(session, { method: 'POST', path: '/pieces', body });
      for (const p of pieces) {
        body.push(p);
        await new Promise((r) => setTimeout(r, 30));
      }
      body.push(null);
      const r = await pending;
      assert.equal(r.status, 200);
      assert.equal(last().body.toString(), pieces.join(''));
      const te = one('transfer-encoding');
      const cl = one('content-length');
      assert.equal(te.length + cl.length, 1, `framing te=${te} cl=${cl}`);
    });

    test('a 1 MiB body goes up and comes back byte for byte', async () => {
      const body = randomBytes(1 << 20);
      const r = await h2request(session, { method: 'POST', path: '/__/echo-body', headers: { 'content-length': String(body.length) }, body });
      assert.equal(r.status, 200);
      assert.equal(last().bodyBytes, body.length);
      assert.equal(sha(r.body), sha(body));
      assert.equal(r.headers['content-length'], String(body.length));
    });

    test('repeated request headers arrive in order; h2 Cookie crumbs reach the upstream as one Cookie joined by "; "', async () => {
      await h2request(session, { path: '/dup', headers: { 'x-dup': ['a', 'b'], 'x-other': 'o', cookie: ['c1=1', 'c2=2'] } });
      assert.equal(one('x-dup').join(', '), 'a, b');
      assert.deepEqual(one('x-other'), ['o']);
      assert.deepEqual(one('cookie'), ['c1=1; c2=2']);
    });

    test('several Set-Cookie headers stay separate over h2', async () => {
      const r = await h2request(session, { path: '/__/cookies' });
      assert.equal(r.status, 200);
      assert.deepEqual(r.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/; HttpOnly']);
      assert.equal(r.body.toString(), 'ok');
    });

    test('hop-by-hop response headers are removed over h2 (Connection-named, Keep-Alive, Proxy-Connection, Upgrade)', async () => {
      const r = await h2request(session, { path: '/__/hop' });
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-public'], 'yes');
      assert.equal(r.headers['x-private'], undefined, 'a header named in Connection is removed');
      for (const name of CONNECTION_FIELDS) assert.equal(r.headers[name], undefined, name);
      assert.equal(r.body.toString(), 'hop');
    });

    test('an upstream answering Connection: keep-alive, Keep-Alive: timeout=5, chunked: clean h2 answers, the proxy and the session live on', async () => {
      for (let i = 0; i < 5; i++) {
        const r = await h2request(session, { path: `/__/hop-framing/${i}`, timeoutMs: 5000 });
        assert.equal(r.status, 200);
        assert.equal(r.body.toString(), 'chunked-body');
        for (const name of CONNECTION_FIELDS) assert.equal(r.headers[name], undefined, name);
      }
      assert.ok(proxy.alive(), `proxy exited: ${proxy.stderr().slice(-2000)}`);
      const next = await h2request(session, { path: '/after-hop' });
      assert.equal(next.status, 200);
      assert.ok(!session.destroyed && !session.closed, 'the session survived');
      const uncaught = proxy.lines.filter((l) => /uncaught|unhandled/i.test(l.msg));
      assert.deepEqual(uncaught, [], 'nothing escaped to the process handlers');
    });

    test('X-Forwarded-Proto https, X-Forwarded-For, Forwarded proto=https over h2', async () => {
      await h2request(session, { path: '/xf', headers: { 'x-forwarded-proto': 'http', 'x-forwarded-for': '6.6.6.6', forwarded: 'for=6.6.6.6' } });
      assert.deepEqual(one('x-forwarded-proto'), ['https']);
      assert.deepEqual(one('x-forwarded-for'), ['127.0.0.1']);
      assert.deepEqual(one('x-forwarded-host'), ['a.test']);
      assert.deepEqual(one('forwarded'), ['for=127.0.0.1;host=a.test;proto=https']);
    });

    test('HEAD over h2 keeps the upstream Content-Length and has no body', async () => {
      const r = await h2request(session, { method: 'HEAD', path: '/__/head' });
      assert.equal(r.status, 200);
      assert.equal(last().method, 'HEAD');
      assert.equal(r.headers['content-length'], '1234');
      assert.equal(r.body.length, 0);
    });

    test('204 and 304 over h2 carry no body', async () => {
      const a = await h2request(session, { path: '/__/204' });
      assert.equal(a.status, 204);
      assert.equal(a.headers['x-kind'], 'no-content');
      assert.equal(a.body.length, 0);
      const b = await h2request(session, { path: '/__/304', headers: { 'if-none-match': '"v1"' } });
      assert.equal(b.status, 304);
      assert.equal(b.headers.etag, '"v1"');
      assert.equal(b.body.length, 0);
      assert.deepEqual(one('if-none-match'), ['"v1"']);
    });

    test('a gzip body passes through h2 untouched (same bytes, Content-Encoding, Content-Length)', async () => {
      const r = await h2request(session, { path: '/__/gzip', headers: { 'accept-encoding': 'gzip' } });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-encoding'], 'gzip');
      assert.equal(r.headers['content-length'], String(GZ.length));
      assert.ok(r.body.equals(GZ), `body: ${r.body.length} bytes vs ${GZ.length}`);
      assert.deepEqual(one('accept-encoding'), ['gzip']);
    });

    test('the access line of an h2 request names host, path and status', async () => {
      const path = `/log-h2-${Date.now()}?q=1`;
      const r = await h2request(session, { path });
      assert.equal(r.status, 200);
      const line = await proxy.waitForLine((l) => l.msg === 'access' && l.path === path, 5000);
      assert.equal(line.host, 'a.test');
      assert.equal(line.status, 200);
      assert.equal(line.method, 'GET');
    });

    test('curl --http2 uploads a body and gets it back through the proxy', needs('curl'), async () => {
      const file = join(tmpdir(), `switchyard-h2-${process.pid}-${Date.now()}.txt`);
      const text = `curl over h2 ${'0123456789'.repeat(10_000)}`;
      writeFileSync(file, text);
      try {
        const p = proxy.httpsPort;
        const r = await curl([
          '--http2',
          '--cacert',
          fx.path('root.pem'),
          '--resolve',
          `a.test:${p}:127.0.0.1`,
          '--data-binary',
          `@${file}`,
          `https://a.test:${p}/__/echo-body`,
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, text);
        assert.equal(last().method, 'POST');
      } finally {
        rmSync(file, { force: true });
      }
    });

    // Last in this group: it ends the proxy.
    test('SIGTERM with an h2 session open: the proxy stops cleanly (exit 0)', async () => {
      assert.equal((await h2request(session, { path: '/before-stop' })).status, 200);
      const code = await proxy.stop('SIGTERM', 10_000);
      assert.equal(code, 0, `exit ${code}; stderr: ${proxy.stderr().slice(-1500)}`);
    });
  });

  describe(`http/2 streams on ${runtime}`, () => {
    let up: Upstream;
    let proxy: TlsProxy;
    let inflight = 0;
    let maxInflight = 0;
    const held = new Map<string, { closedEarly: boolean; closedAt: number }>();
    let openSiblings: () => void = () => {};
    let siblingsGate = Promise.resolve();
    let baseline = 0;
    before(async () => {
      up = await startUpstream(
        (req, res) => {
          const url = req.url ?? '';
          req.resume();
          if (url.startsWith('/c/')) {
            inflight++;
            maxInflight = Math.max(maxInflight, inflight);
            setTimeout(() => {
              inflight--;
              res.setHeader('content-type', 'application/json');
              res.end(JSON.stringify({ url }));
            }, 100);
          } else if (url.startsWith('/hold-')) {
            const record = { closedEarly: false, closedAt: 0 };
            held.set(url, record);
            res.on('close', () => {
              record.closedAt = Date.now();
              record.closedEarly = !res.writableFinished;
            });
            if (url.startsWith('/hold-body')) {
              res.writeHead(200, { 'content-type': 'text/plain' });
              res.write('first');
            }
          } else if (url.startsWith('/sib/')) {
            const record = { closedEarly: false, closedAt: 0 };
            held.set(url, record);
            res.on('close', () => {
              record.closedAt = Date.now();
              record.closedEarly = !res.writableFinished;
            });
            void siblingsGate.then(() => res.end(`sibling ${url}`));
          } else if (url.startsWith('/big')) {
            res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG) });
            generator(BIG).pipe(res);
          } else res.end('ok');
        },
        { raw: true },
      );
    });
    // A proxy per case: one that dies in a case must not fail the next ones for that reason.
    beforeEach(async () => {
      proxy = await startTlsProxy(runtime, config(up));
    });
    afterEach(async () => {
      await proxy?.stop();
    });
    after(async () => {
      await up?.close();
    });

    // Deno 2.9.6's nghttp2 aborts the process (assertion in find_stream_on_goaway_func) when a
    // client's GOAWAY follows ~70+ streams on one session: denoland/deno#36788, open. No code of
    // ours runs before the abort; the case stays here, todo on Deno, so a fixed Deno shows it.
    const denoGoawayBug = runtime === 'deno' ? { todo: 'Deno aborts on the GOAWAY after many streams (denoland/deno#36788)' } : {};
    test('100 concurrent streams on one connection, each to its own path, each get their own answer', { timeout: 60_000, ...denoGoawayBug }, async () => {
      const session = await h2connect(proxy.httpsPort);
      try {
        maxInflight = 0;
        const t0 = Date.now();
        const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => h2request(session, { path: `/c/${i}?n=${i}`, timeoutMs: 30_000 })));
        const ms = Date.now() - t0;
        console.log(`[h2] ${runtime} 100 streams on one connection: ${ms} ms, at most ${maxInflight} upstream requests at once`);
        replies.forEach((r, i) => {
          assert.equal(r.status, 200, `stream ${i}`);
          assert.equal(JSON.parse(r.body.toString()).url, `/c/${i}?n=${i}`, `stream ${i} got another stream's answer`);
        });
        const urls = new Set(up.requests.filter((s) => s.url.startsWith('/c/')).map((s) => s.url));
        assert.equal(urls.size, 100);
        assert.ok(maxInflight > 1, 'the streams were forwarded one at a time');
      } finally {
        session.close();
      }
      // The client's GOAWAY after many streams must not take the process down: a new connection serves.
      await new Promise<void>((resolve) => (session.destroyed ? resolve() : session.once('close', () => resolve())));
      const next = await h2connect(proxy.httpsPort);
      try {
        assert.equal((await h2request(next, { path: '/after-100' })).status, 200);
      } finally {
        next.close();
      }
      assert.ok(proxy.alive(), `proxy exited after the session closed: ${proxy.stderr().slice(-1500)}`);
    });

    test('RST_STREAM (CANCEL) on slow answers cancels only those upstream requests; sibling streams complete', { timeout: 60_000 }, async () => {
      const session = await h2connect(proxy.httpsPort);
      siblingsGate = new Promise<void>((resolve) => {
        openSiblings = resolve;
      });
      try {
        const open = (path: string) => session.request({ ':method': 'GET', ':path': path, ':authority': 'a.test' }).end();
        const headWait = open('/hold-head/1');
        const bodyWait = open('/hold-body/2');
        headWait.on('error', () => {});
        bodyWait.on('error', () => {});
        const firstData = new Promise<string>((resolve) => bodyWait.once('data', (c: Buffer) => resolve(c.toString())));
        const siblings = ['/sib/3', '/sib/4'].map((path) => h2request(session, { path, timeoutMs: 20_000 }));
        await until(
          () => ['/hold-head/1', '/hold-body/2', '/sib/3', '/sib/4'].every((u) => held.has(u)),
          10_000,
          () => `upstream saw ${[...held.keys()]}`,
        );
        assert.equal(await firstData, 'first');
        headWait.close(http2.constants.NGHTTP2_CANCEL);
        bodyWait.close(http2.constants.NGHTTP2_CANCEL);
        await until(
          () => held.get('/hold-head/1')!.closedAt > 0 && held.get('/hold-body/2')!.closedAt > 0,
          5000,
          () => `upstream requests still open after the client's RST_STREAM: ${JSON.stringify([...held])}`,
        );
        assert.ok(held.get('/hold-head/1')!.closedEarly && held.get('/hold-body/2')!.closedEarly);
        assert.equal(held.get('/sib/3')!.closedAt, 0, 'a sibling upstream request was closed too');
        assert.equal(held.get('/sib/4')!.closedAt, 0, 'a sibling upstream request was closed too');
        openSiblings();
        const done = await Promise.all(siblings);
        assert.deepEqual(
          done.map((r) => [r.status, r.body.toString()]),
          [
            [200, 'sibling /sib/3'],
            [200, 'sibling /sib/4'],
          ],
        );
        const again = await h2request(session, { path: '/after-cancel' });
        assert.equal(again.status, 200, 'the session serves after the resets');
      } finally {
        openSiblings();
        session.close();
      }
    });

    test('control: an HTTPS/1.1 client leaving mid-response cancels its upstream request', async () => {
      await new Promise<void>((resolve, reject) => {
        const options: https.RequestOptions & tls.ConnectionOptions = {
          host: '127.0.0.1',
          port: proxy.httpsPort,
          servername: 'a.test',
          ca: pem('root.pem'),
          path: '/hold-body/h1',
          headers: { host: 'a.test' },
          agent: false,
          ALPNProtocols: ['http/1.1'],
        };
        const req = https.request(options, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', (e) => (e.message.includes('socket hang up') ? undefined : reject(e)));
        req.end();
      });
      await until(() => (held.get('/hold-body/h1')?.closedAt ?? 0) > 0, 5000, 'the upstream request of a departed HTTPS/1.1 client is still open');
      assert.ok(held.get('/hold-body/h1')!.closedEarly);
    });

    test('an h2 connection torn down mid-response cancels its upstream requests', async () => {
      const session = await h2connect(proxy.httpsPort);
      const stream = session.request({ ':method': 'GET', ':path': '/hold-body/teardown', ':authority': 'a.test' }, { endStream: true });
      stream.on('error', () => {});
      await new Promise<void>((resolve) => stream.once('data', () => resolve()));
      session.destroy();
      await until(() => (held.get('/hold-body/teardown')?.closedAt ?? 0) > 0, 5000, 'the upstream request of a destroyed h2 connection is still open');
      assert.ok(proxy.alive());
    });

    test(`download of ${BIG} bytes over h2: complete, proxy RSS growth bounded`, { timeout: 300_000 }, async () => {
      const session = await h2connect(proxy.httpsPort, { settings: { initialWindowSize: 16 << 20 } });
      baseline = rssKiB(proxy.pid);
      const rss = sampleRss(proxy.pid);
      let peak = 0;
      const t0 = performance.now();
      let got: { status: number; bytes: number; cl: string | undefined };
      try {
        got = await new Promise((resolve, reject) => {
          const stream = session.request({ ':method': 'GET', ':path': '/big', ':authority': 'a.test' });
          let status = 0;
          let cl: string | undefined;
          let bytes = 0;
          stream.on('response', (h) => {
            status = Number(h[':status']);
            cl = h['content-length'] as string | undefined;
          });
          stream.on('data', (c: Buffer) => (bytes += c.length));
          stream.on('end', () => resolve({ status, bytes, cl }));
          stream.on('error', reject);
          stream.on('close', () => (stream.rstCode ? reject(new Error(`reset ${stream.rstCode} after ${bytes} bytes`)) : undefined));
          stream.end();
        });
      } finally {
        peak = rss.stop();
        session.close();
      }
      const secs = (performance.now() - t0) / 1000;
      console.log(
        `[rss] ${runtime} h2 download ${BIG} bytes: baseline ${mib(baseline)}, peak ${mib(peak)} (+${mib(peak - baseline)}), ${secs.toFixed(1)} s, ${(BIG / 1024 ** 2 / secs).toFixed(0)} MiB/s`,
      );
      assert.equal(got.status, 200);
      assert.equal(got.bytes, BIG);
      assert.equal(got.cl, String(BIG));
      assert.ok(peak < baseline + HEADROOM_KIB, `peak RSS ${mib(peak)} exceeds baseline ${mib(baseline)} + ${mib(HEADROOM_KIB)}`);
    });
  });
}
