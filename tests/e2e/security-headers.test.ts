// Security headers and CORS per route (issue 10), the same cases on every runtime through the
// real artifact, a real node:http upstream and real clients (node:http, raw sockets): headers on
// upstream answers and on the proxy's own, the overwrite rule, preflights answered by the proxy
// (the upstream sees nothing), actual requests with allowed and other origins, credentials,
// Vary: Origin, and a route without either setting passed through as before.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { headerValues, type ProxyHandle, RUNTIMES, rawRequest, send, startProxy, startUpstream, type Upstream } from './harness.ts';

const APP = 'https://app.test';
const CSP = "default-src 'self'";

/** An upstream that sends its own security and CORS headers, so the overwrite rule shows. */
function opinionatedUpstream(): Promise<Upstream> {
  return startUpstream((_req, res, seen) => {
    const body = JSON.stringify({ method: seen.method, url: seen.url, origin: seen.headers.origin ?? null });
    res.writeHead(200, [
      ['Content-Type', 'application/json'],
      ['Content-Length', String(Buffer.byteLength(body))],
      ['X-Frame-Options', 'DENY'],
      ['Content-Security-Policy', "default-src 'none'"],
      ['Access-Control-Allow-Origin', '*'],
      ['Vary', 'Accept-Encoding'],
      ['X-App', 'kept'],
    ] as unknown as Parameters<typeof res.writeHead>[1]);
    res.end(body);
  });
}

/** A port nothing listens on: bound once, then closed. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

const get = (proxy: ProxyHandle, host: string, path = '/', headers: Record<string, string> = {}, method = 'GET') =>
  send(`${proxy.origin}${path}`, { method, headers: { host, ...headers } });

for (const runtime of RUNTIMES) {
  describe(`security headers and CORS on ${runtime}`, () => {
    let proxy: ProxyHandle;
    let headersUp: Upstream;
    let corsUp: Upstream;
    let plainUp: Upstream;
    before(async () => {
      [headersUp, corsUp, plainUp] = await Promise.all([opinionatedUpstream(), opinionatedUpstream(), opinionatedUpstream()]);
      const down = `http://127.0.0.1:${await closedPort()}`;
      proxy = await startProxy(runtime, {
        routes: [
          { host: 'set.test', upstream: headersUp.origin, securityHeaders: { contentSecurityPolicy: CSP } },
          { host: 'keep.test', upstream: headersUp.origin, securityHeaders: { contentSecurityPolicy: CSP, overwrite: false } },
          { host: 'small.test', upstream: headersUp.origin, securityHeaders: true, maxBodyBytes: 1 },
          { host: 'down.test', upstream: down, securityHeaders: true, cors: { origin: APP }, timeoutMs: 2000 },
          {
            host: 'cors.test',
            upstream: corsUp.origin,
            cors: { origin: [APP, 'http://localhost:5173'], credentials: true, allowHeaders: ['X-Token'], exposeHeaders: ['X-App'], maxAgeSeconds: 600 },
            securityHeaders: true,
          },
          { host: 'star.test', upstream: corsUp.origin, cors: { origin: '*' } },
          { host: 'plain.test', upstream: plainUp.origin },
        ],
      });
    });
    after(async () => {
      await proxy?.stop();
      await Promise.all([headersUp, corsUp, plainUp].map((u) => u?.close()));
    });

    test("upstream answers: the route's headers replace the upstream's, once each; others pass", async () => {
      const r = await get(proxy, 'set.test', '/page');
      assert.equal(r.status, 200, r.body.toString());
      assert.deepEqual(headerValues(r.rawHeaders, 'x-frame-options'), ['SAMEORIGIN']);
      assert.deepEqual(headerValues(r.rawHeaders, 'content-security-policy'), [CSP]);
      assert.deepEqual(headerValues(r.rawHeaders, 'x-content-type-options'), ['nosniff']);
      assert.deepEqual(headerValues(r.rawHeaders, 'referrer-policy'), ['strict-origin-when-cross-origin']);
      assert.deepEqual(headerValues(r.rawHeaders, 'x-app'), ['kept']);
      // No cors on the route: the upstream's own CORS header is its business.
      assert.equal(r.headers['access-control-allow-origin'], '*');
    });

    test('overwrite: false keeps the upstream values and adds the missing ones', async () => {
      const r = await get(proxy, 'keep.test');
      assert.equal(r.status, 200);
      assert.deepEqual(headerValues(r.rawHeaders, 'x-frame-options'), ['DENY']);
      assert.deepEqual(headerValues(r.rawHeaders, 'content-security-policy'), ["default-src 'none'"]);
      assert.deepEqual(headerValues(r.rawHeaders, 'x-content-type-options'), ['nosniff']);
    });

    test("the proxy's own answers carry them: 502 for a dead upstream, 413 before any upstream", async () => {
      const bad = await get(proxy, 'down.test', '/', { origin: APP });
      assert.equal(bad.status, 502);
      assert.equal(bad.headers['x-content-type-options'], 'nosniff');
      assert.equal(bad.headers['x-frame-options'], 'SAMEORIGIN');
      assert.equal(bad.headers['access-control-allow-origin'], APP, 'a page can read the 502');
      const before = headersUp.requests.length;
      const big = await send(`${proxy.origin}/`, { method: 'POST', headers: { host: 'small.test', 'content-type': 'text/plain' }, body: 'abc' });
      assert.equal(big.status, 413);
      assert.equal(big.headers['x-content-type-options'], 'nosniff');
      assert.equal(big.headers['referrer-policy'], 'strict-origin-when-cross-origin');
      assert.equal(headersUp.requests.length, before, 'the 413 reached no upstream');
    });

    test('a preflight is answered by the proxy (204, the route settings) and never reaches the upstream', async () => {
      const before = corsUp.requests.length;
      const r = await get(
        proxy,
        'cors.test',
        '/api/items',
        { origin: APP, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'x-token' },
        'OPTIONS',
      );
      assert.equal(r.status, 204);
      assert.equal(r.body.length, 0);
      assert.equal(r.headers['access-control-allow-origin'], APP);
      assert.equal(r.headers['access-control-allow-credentials'], 'true');
      assert.equal(r.headers['access-control-allow-methods'], 'GET,HEAD,PUT,POST,DELETE,PATCH');
      assert.equal(r.headers['access-control-allow-headers'], 'X-Token');
      assert.equal(r.headers['access-control-max-age'], '600');
      assert.match(String(r.headers.vary), /^Origin\b/);
      assert.equal(r.headers['x-content-type-options'], 'nosniff', "the route's security headers go on the 204 too");
      // Not allowed: still answered here, without Allow-Origin, so the browser stops.
      const other = await get(proxy, 'cors.test', '/api/items', { origin: 'https://evil.test', 'access-control-request-method': 'DELETE' }, 'OPTIONS');
      assert.equal(other.status, 204);
      assert.equal(other.headers['access-control-allow-origin'], undefined);
      assert.equal(corsUp.requests.length, before, 'the upstream saw no preflight');
    });

    test('a preflight on the wire: 204 with no body and no Content-Length; the connection serves the next request', async () => {
      const before = corsUp.requests.length;
      const r = await rawRequest(
        proxy.port,
        'OPTIONS /x HTTP/1.1\r\nHost: cors.test\r\nOrigin: http://localhost:5173\r\nAccess-Control-Request-Method: PATCH\r\n\r\n' +
          'GET /after HTTP/1.1\r\nHost: cors.test\r\nOrigin: http://localhost:5173\r\nConnection: close\r\n\r\n',
      );
      const text = r.raw.toString('latin1');
      assert.equal(r.status, 204, text);
      assert.equal(
        r.headers.find(([name]) => name === 'content-length' || name === 'transfer-encoding'),
        undefined,
        'RFC 9110 §8.6: no Content-Length on a 204',
      );
      assert.match(text, /^HTTP\/1\.1 204 [^\r]*\r\n[\s\S]*?\r\n\r\nHTTP\/1\.1 200 /, text);
      assert.equal(corsUp.requests.length, before + 1);
      assert.equal(corsUp.requests.at(-1)?.url, '/after');
    });

    test('actual requests: forwarded with Origin; Allow-Origin for a listed origin only, the upstream one replaced; Vary: Origin', async () => {
      const before = corsUp.requests.length;
      const ok = await get(proxy, 'cors.test', '/api', { origin: APP });
      assert.equal(ok.status, 200);
      assert.deepEqual(JSON.parse(ok.body.toString()), { method: 'GET', url: '/api', origin: APP });
      assert.deepEqual(headerValues(ok.rawHeaders, 'access-control-allow-origin'), [APP]);
      assert.equal(ok.headers['access-control-allow-credentials'], 'true');
      assert.equal(ok.headers['access-control-expose-headers'], 'X-App');
      assert.equal(ok.headers.vary, 'Accept-Encoding, Origin');
      const other = await get(proxy, 'cors.test', '/api', { origin: 'https://evil.test' });
      assert.equal(other.status, 200);
      assert.equal(other.headers['access-control-allow-origin'], undefined, "the upstream's * does not slip through");
      assert.equal(other.headers.vary, 'Accept-Encoding, Origin');
      const post = await send(`${proxy.origin}/form`, {
        method: 'POST',
        headers: { host: 'cors.test', origin: 'http://localhost:5173', 'content-type': 'text/plain' },
        body: 'a=1',
      });
      assert.equal(post.status, 200);
      assert.equal(post.headers['access-control-allow-origin'], 'http://localhost:5173');
      assert.equal(corsUp.requests.length, before + 3);
      assert.equal(corsUp.requests.at(-1)?.bodyBytes, 3);
    });

    test('origin "*": Allow-Origin * and no Vary: Origin', async () => {
      const r = await get(proxy, 'star.test', '/', { origin: 'https://anyone.test' });
      assert.equal(r.status, 200);
      assert.deepEqual(headerValues(r.rawHeaders, 'access-control-allow-origin'), ['*']);
      assert.equal(r.headers.vary, 'Accept-Encoding');
      const pre = await get(proxy, 'star.test', '/', { origin: 'https://anyone.test', 'access-control-request-method': 'PUT' }, 'OPTIONS');
      assert.equal(pre.status, 204);
      assert.equal(pre.headers['access-control-allow-origin'], '*');
      assert.equal(pre.headers.vary, undefined);
    });

    test('a route without the settings: preflights forwarded, upstream headers exactly as sent', async () => {
      const before = plainUp.requests.length;
      const r = await get(proxy, 'plain.test', '/p', { origin: APP, 'access-control-request-method': 'PUT' }, 'OPTIONS');
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.body.toString()), { method: 'OPTIONS', url: '/p', origin: APP });
      assert.equal(plainUp.requests.length, before + 1);
      assert.deepEqual(headerValues(r.rawHeaders, 'x-frame-options'), ['DENY']);
      assert.deepEqual(headerValues(r.rawHeaders, 'content-security-policy'), ["default-src 'none'"]);
      assert.deepEqual(headerValues(r.rawHeaders, 'access-control-allow-origin'), ['*']);
      assert.equal(r.headers.vary, 'Accept-Encoding');
      assert.equal(r.headers['x-content-type-options'], undefined);
      assert.equal(r.headers['referrer-policy'], undefined);
    });
  });
}
