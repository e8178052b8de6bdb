// Routing: host matching (exact, wildcard, catch-all, normalisation, specificity independent of
// order), a large exact-host table, 421 on a miss, path prefixes within a host, and the 400
// cases of request sanity (absolute-form authority, repeated or missing Host).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ProxyHandle, RUNTIMES, rawRequest, send, startProxy, startUpstream, type Upstream } from './harness.ts';

/** An upstream that answers with its own name and the target it saw, so a test knows who served. */
function namedUpstream(name: string): Promise<Upstream> {
  return startUpstream((_req, res, seen) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ name, url: seen.url }));
  });
}

interface Hit {
  status: number;
  name?: string;
  url?: string;
  body: string;
}

/** GET `path` through the proxy with `host` as the Host header; who served it and what they saw. */
async function hit(proxy: ProxyHandle, host: string, path: string): Promise<Hit> {
  const r = await send(`${proxy.origin}${path}`, { headers: { host } });
  const body = r.body.toString('utf8');
  if (r.status !== 200) return { status: r.status, body };
  const parsed = JSON.parse(body) as { name: string; url: string };
  return { status: r.status, name: parsed.name, url: parsed.url, body };
}

/** A raw request on a fresh socket, closing after the answer so nothing waits on idle time. */
function raw(proxy: ProxyHandle, head: string): ReturnType<typeof rawRequest> {
  return rawRequest(proxy.port, head, { idleMs: 1500 });
}

const total = (ups: Upstream[]) => ups.reduce((n, u) => n + u.requests.length, 0);

for (const runtime of RUNTIMES) {
  describe(`routing on ${runtime}`, () => {
    describe('host matching and path prefixes', () => {
      let ups: Record<string, Upstream>;
      let all: Upstream[];
      let proxy: ProxyHandle;
      before(async () => {
        const names = ['exact', 'wild', 'wildB', 'catchAll', 'example', 'api', 'apiV2', 'apiRoot', 'strip', 'only'];
        all = await Promise.all(names.map(namedUpstream));
        ups = Object.fromEntries(names.map((n, i) => [n, all[i] as Upstream]));
        // Written least specific first on purpose: order must not matter.
        proxy = await startProxy(runtime, {
          routes: [
            { host: '*', upstream: ups.catchAll!.origin },
            { host: '*.xyz.com', upstream: ups.wild!.origin },
            { host: '*.b.xyz.com', upstream: ups.wildB!.origin },
            { host: 'sub1.xyz.com', upstream: ups.exact!.origin },
            { host: '*.example.com', upstream: ups.example!.origin },
            { host: 'api.test', upstream: ups.apiRoot!.origin },
            { host: 'api.test', path: '/api', upstream: ups.api!.origin },
            { host: 'api.test', path: '/api/v2', upstream: ups.apiV2!.origin },
            { host: 'strip.test', path: '/api', stripPrefix: true, upstream: ups.strip!.origin },
            { host: 'only.test', path: '/api', upstream: ups.only!.origin },
          ],
        });
      });
      after(async () => {
        await proxy?.stop();
        await Promise.all((all ?? []).map((u) => u.close()));
      });

      test('exact host goes to its route', async () => {
        const r = await hit(proxy, 'sub1.xyz.com', '/e');
        assert.equal(r.status, 200, r.body);
        assert.equal(r.name, 'exact');
        assert.equal(r.url, '/e');
      });

      test('wildcard matches one or more labels but not the bare suffix', async () => {
        assert.equal((await hit(proxy, 'a.example.com', '/')).name, 'example');
        assert.equal((await hit(proxy, 'a.b.example.com', '/')).name, 'example');
        // example.com itself is not covered by *.example.com: it falls to the catch-all.
        assert.equal((await hit(proxy, 'example.com', '/')).name, 'catchAll');
        assert.equal((await hit(proxy, 'sub2.xyz.com', '/')).name, 'wild');
        assert.equal((await hit(proxy, 'xyz.com', '/')).name, 'catchAll');
        // A name that merely ends in the same letters is not under the suffix.
        assert.equal((await hit(proxy, 'notxyz.com', '/')).name, 'catchAll');
      });

      test('catch-all * takes any other host', async () => {
        assert.equal((await hit(proxy, 'other.example', '/c')).name, 'catchAll');
        assert.equal((await hit(proxy, 'localhost', '/c')).name, 'catchAll');
        assert.equal((await hit(proxy, '127.0.0.1', '/c')).name, 'catchAll');
      });

      test('matching is case-insensitive, ignores the port and tolerates a trailing dot', async () => {
        assert.equal((await hit(proxy, 'SUB1.XYZ.COM:4433', '/')).name, 'exact');
        assert.equal((await hit(proxy, 'Sub1.Xyz.Com', '/')).name, 'exact');
        assert.equal((await hit(proxy, 'sub1.xyz.com.', '/')).name, 'exact');
        assert.equal((await hit(proxy, 'sub1.xyz.com.:8080', '/')).name, 'exact');
        assert.equal((await hit(proxy, 'SUB2.XYZ.COM:4433', '/')).name, 'wild');
        assert.equal((await hit(proxy, 'A.B.EXAMPLE.COM.', '/')).name, 'example');
      });

      test('most specific host wins regardless of order; longer wildcard beats shorter', async () => {
        assert.equal((await hit(proxy, 'sub1.xyz.com', '/')).name, 'exact');
        assert.equal((await hit(proxy, 'c.xyz.com', '/')).name, 'wild');
        assert.equal((await hit(proxy, 'a.b.xyz.com', '/')).name, 'wildB');
        assert.equal((await hit(proxy, 'x.y.b.xyz.com', '/')).name, 'wildB');
        // b.xyz.com is not under *.b.xyz.com, but is under *.xyz.com.
        assert.equal((await hit(proxy, 'b.xyz.com', '/')).name, 'wild');
      });

      test('path prefix takes /api, /api/, /api/x, /api?q=1 but not /apix', async () => {
        for (const path of ['/api', '/api/', '/api/x', '/api?q=1']) {
          const r = await hit(proxy, 'api.test', path);
          assert.equal(r.name, 'api', `${path} -> ${r.name}`);
          assert.equal(r.url, path, 'the path is forwarded unchanged without stripPrefix');
        }
        const r = await hit(proxy, 'api.test', '/apix');
        assert.equal(r.name, 'apiRoot');
        assert.equal(r.url, '/apix');
        assert.equal((await hit(proxy, 'api.test', '/')).name, 'apiRoot');
      });

      test('longest path prefix wins', async () => {
        assert.equal((await hit(proxy, 'api.test', '/api/v2')).name, 'apiV2');
        assert.equal((await hit(proxy, 'api.test', '/api/v2/users?x=1')).name, 'apiV2');
        assert.equal((await hit(proxy, 'api.test', '/api/v2x')).name, 'api');
        assert.equal((await hit(proxy, 'api.test', '/api/v1')).name, 'api');
      });

      test('stripPrefix sends /api/x?q as /x?q and /api as /', async () => {
        let r = await hit(proxy, 'strip.test', '/api/x?q');
        assert.equal(r.name, 'strip');
        assert.equal(r.url, '/x?q');
        r = await hit(proxy, 'strip.test', '/api');
        assert.equal(r.name, 'strip');
        assert.equal(r.url, '/');
        r = await hit(proxy, 'strip.test', '/api/');
        assert.equal(r.url, '/');
        r = await hit(proxy, 'strip.test', '/api?q=1');
        assert.equal(r.name, 'strip');
        assert.equal(r.url, '/?q=1');
      });

      test('a host with only a path route falls back to * for other paths', async () => {
        const a = await hit(proxy, 'only.test', '/api/y');
        assert.equal(a.name, 'only');
        assert.equal(a.url, '/api/y');
        const b = await hit(proxy, 'only.test', '/other');
        assert.equal(b.name, 'catchAll');
        assert.equal(b.url, '/other');
        assert.equal((await hit(proxy, 'only.test', '/apix')).name, 'catchAll');
        // strip.test too: outside /api it is the catch-all's, unstripped.
        const c = await hit(proxy, 'strip.test', '/x');
        assert.equal(c.name, 'catchAll');
        assert.equal(c.url, '/x');
      });

      test('absolute-form target whose authority differs from Host: 400, nothing forwarded', async () => {
        const before = total(all);
        const r = await raw(proxy, 'GET http://other.example/p HTTP/1.1\r\nHost: sub1.xyz.com\r\nConnection: close\r\n\r\n');
        assert.equal(r.status, 400, r.raw.toString('latin1'));
        assert.equal(total(all), before, 'nothing reaches any upstream');
      });

      test('absolute-form target whose authority equals Host is forwarded to that host', async () => {
        const exactBefore = ups.exact!.requests.length;
        const before = total(all);
        const r = await raw(proxy, 'GET http://sub1.xyz.com/p?q=1 HTTP/1.1\r\nHost: sub1.xyz.com\r\nConnection: close\r\n\r\n');
        assert.equal(r.status, 200, r.raw.toString('latin1'));
        assert.equal(ups.exact!.requests.length, exactBefore + 1);
        assert.equal(total(all), before + 1);
        assert.equal(ups.exact!.requests.at(-1)!.url, '/p?q=1');
      });

      test('two Host headers: 400, nothing forwarded', async () => {
        const before = total(all);
        const r = await raw(proxy, 'GET /two HTTP/1.1\r\nHost: sub1.xyz.com\r\nHost: other.example\r\nConnection: close\r\n\r\n');
        // Every runtime's request reaches the guard (Deno's listener is our own server now).
        assert.equal(r.status, 400, r.raw.toString('latin1'));
        assert.equal(total(all), before, 'nothing reaches any upstream');
      });

      test('two identical Host headers: 400, nothing forwarded', async () => {
        const before = total(all);
        const r = await raw(proxy, 'GET /two HTTP/1.1\r\nHost: sub1.xyz.com\r\nHost: sub1.xyz.com\r\nConnection: close\r\n\r\n');
        assert.equal(r.status, 400, r.raw.toString('latin1'));
        assert.equal(total(all), before, 'nothing reaches any upstream');
      });

      test('HTTP/1.1 without Host: 400, nothing forwarded', async () => {
        const before = total(all);
        const r = await raw(proxy, 'GET /nohost HTTP/1.1\r\nConnection: close\r\n\r\n');
        assert.equal(r.status, 400, r.raw.toString('latin1'));
        assert.equal(total(all), before, 'nothing reaches any upstream');
      });
    });

    describe('no route and no catch-all', () => {
      let a: Upstream;
      let w: Upstream;
      let proxy: ProxyHandle;
      before(async () => {
        [a, w] = await Promise.all([namedUpstream('a'), namedUpstream('w')]);
        proxy = await startProxy(runtime, {
          routes: [
            { host: 'a.test', upstream: a.origin },
            { host: '*.example.com', upstream: w.origin },
            { host: 'p.test', path: '/only', upstream: a.origin },
          ],
        });
      });
      after(async () => {
        await proxy?.stop();
        await Promise.all([a?.close(), w?.close()]);
      });

      test('unknown host gets 421 with a short plain-text body and nothing is forwarded', async () => {
        const r = await send(`${proxy.origin}/x`, { headers: { host: 'unknown.test' } });
        assert.equal(r.status, 421);
        assert.match(String(r.headers['content-type']), /^text\/plain/);
        assert.ok(r.body.length > 0 && r.body.length < 200, `short body, got ${r.body.length} bytes`);
        assert.equal(a.requests.length + w.requests.length, 0);
      });

      test('bare suffix of a wildcard gets 421', async () => {
        const r = await send(`${proxy.origin}/x`, { headers: { host: 'example.com' } });
        assert.equal(r.status, 421);
        assert.equal(a.requests.length + w.requests.length, 0);
        assert.equal((await hit(proxy, 'z.example.com', '/')).name, 'w');
      });

      test('a path outside the only path route of a host gets 421', async () => {
        const before = a.requests.length + w.requests.length;
        const r = await send(`${proxy.origin}/elsewhere`, { headers: { host: 'p.test' } });
        assert.equal(r.status, 421);
        assert.equal(a.requests.length + w.requests.length, before);
        assert.equal((await hit(proxy, 'p.test', '/only/x')).name, 'a');
      });
    });

    describe('10,000 exact hosts', () => {
      const N = 10_000;
      let even: Upstream;
      let odd: Upstream;
      let rest: Upstream;
      let proxy: ProxyHandle;
      before(async () => {
        [even, odd, rest] = await Promise.all([namedUpstream('even'), namedUpstream('odd'), namedUpstream('rest')]);
        const routes: object[] = [];
        for (let i = 0; i < N; i++) routes.push({ host: `h${i}.bulk.test`, upstream: (i % 2 ? odd : even).origin });
        routes.push({ host: '*', upstream: rest.origin });
        proxy = await startProxy(runtime, { routes });
      });
      after(async () => {
        await proxy?.stop();
        await Promise.all([even?.close(), odd?.close(), rest?.close()]);
      });

      test('loads and routes the first, middle and last hosts', async () => {
        const cases: [string, string][] = [
          ['h0.bulk.test', 'even'],
          ['h1.bulk.test', 'odd'],
          ['h4321.bulk.test', 'odd'],
          ['h5000.bulk.test', 'even'],
          ['H9998.BULK.TEST', 'even'],
          [`h${N - 1}.bulk.test`, 'odd'],
          [`h${N}.bulk.test`, 'rest'],
          ['bulk.test', 'rest'],
        ];
        for (const [host, name] of cases) {
          const r = await hit(proxy, host, `/${host}`);
          assert.equal(r.status, 200, `${host}: ${r.body}`);
          assert.equal(r.name, name, host);
          assert.equal(r.url, `/${host}`);
        }
      });
    });
  });
}
