// httpsPolicy through the real app (src/app.ts) with a fake transport: plain-HTTP requests
// redirected to https:// where the route says so, HSTS on every answer over HTTPS, never on
// plain HTTP.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createApp } from '../app.ts';
import type { Bindings, ConnInfo } from '../app-env.ts';
import { compileConfig } from '../config/compile.ts';
import { createConfigSource } from '../config/source.ts';
import type { Config } from '../config/types.ts';
import { createLogger } from '../log/logger.ts';
import type { Transport } from '../transport/types.ts';
import { httpsLocation } from './https.ts';

const plain: ConnInfo = { remoteAddr: '192.0.2.1', proto: 'http', listener: 'http' };
const secure: ConnInfo = {
  remoteAddr: '192.0.2.1',
  proto: 'https',
  listener: 'https',
  tls: { serverName: 'a.test', alpn: 'h2', protocol: 'TLSv1.3', clientCertificate: null },
};

const config: Config = {
  tls: { certificates: [{ cert: 'certs/a.pem', key: 'certs/a.key' }] },
  routes: [
    { host: 'a.test', upstream: 'http://localhost:8080', hsts: true },
    { host: 'both.test', upstream: 'http://localhost:8081', redirectHttp: false, hsts: { maxAge: 60, includeSubDomains: true } },
    { host: 'nohsts.test', upstream: 'http://localhost:8082' },
  ],
};

interface Setup {
  readonly config?: Config;
  readonly fetch?: Transport['fetch'];
  readonly httpsPort?: () => number | null;
}

const ok: Transport['fetch'] = async () => new Response('ok', { headers: { 'content-length': '2' } });

function setup({ config: cfg = config, fetch = ok, httpsPort = () => 8443 }: Setup = {}) {
  const forwarded: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    write: (text) =>
      lines.push(
        ...text
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l)),
      ),
  });
  const transport: Transport = {
    name: 'fake',
    fetch: (url, init) => {
      forwarded.push(`${init.method} ${url}`);
      return fetch(url, init);
    },
    upgrade: () => Promise.reject(new Error('no upgrades here')),
    close: async () => {},
  };
  const app = createApp({ config: createConfigSource(compileConfig(cfg)), transport, logger, httpsPort });
  const request = async (url: string, conn: ConnInfo, init: RequestInit = {}, line?: Bindings['line']) => {
    const headers = new Headers(init.headers);
    if (!headers.has('host')) headers.set('host', new URL(url).host);
    const env: Bindings = line === undefined ? { conn } : { conn, line };
    const res = await app.request(url, { ...init, headers }, env);
    logger.flush();
    return res;
  };
  return { request, forwarded, access: () => lines.filter((l) => l.msg === 'access') };
}

test('httpsLocation omits the port for 443 only', () => {
  assert.equal(httpsLocation('a.test', 443, '/p?q'), 'https://a.test/p?q');
  assert.equal(httpsLocation('a.test', 8443, '/'), 'https://a.test:8443/');
  assert.equal(httpsLocation('a.test', 80, '/'), 'https://a.test:80/');
});

test('plain HTTP on a redirecting route: 308 to the same path and query on https://, nothing forwarded', async () => {
  const { request, forwarded, access } = setup();
  const res = await request('http://a.test/p/a%2Fb?x=1&y', plain);
  assert.equal(res.status, 308);
  assert.equal(res.headers.get('location'), 'https://a.test:8443/p/a%2Fb?x=1&y');
  assert.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8');
  assert.equal(await res.text(), 'redirecting to https://a.test:8443/p/a%2Fb?x=1&y\n');
  assert.equal(res.headers.get('strict-transport-security'), null, 'never HSTS over plain HTTP');
  assert.deepEqual(forwarded, []);
  assert.equal(access()[0]?.status, 308);
});

test('the redirect: the TLS port replaces the Host port, the host is normalised, the target goes byte for byte, the method is kept', async () => {
  const { request, forwarded } = setup();
  const withPort = await request('http://a.test:8080/x', plain);
  assert.equal(withPort.headers.get('location'), 'https://a.test:8443/x');
  const upper = await request('http://a.test/x', plain, { headers: { host: 'A.Test.' } });
  assert.equal(upper.headers.get('location'), 'https://a.test:8443/x');
  // The request line as the listener read it: dot segments and odd bytes are not touched.
  const raw = await request('http://a.test/b', plain, {}, { method: 'GET', target: '/a/../b?q=%zz', version: '1.1' });
  assert.equal(raw.headers.get('location'), 'https://a.test:8443/a/../b?q=%zz');
  // 308, unlike 301, keeps the method and body: a POST is redirected too, and not forwarded.
  const post = await request('http://a.test/form', plain, { method: 'POST', body: 'a=1', headers: { 'content-length': '3' } });
  assert.equal(post.status, 308);
  assert.equal(post.headers.get('location'), 'https://a.test:8443/form');
  assert.deepEqual(forwarded, []);
});

test('the TLS listener on 443: no port in Location', async () => {
  const { request } = setup({ httpsPort: () => 443 });
  const res = await request('http://a.test/p/a%2Fb?x=1&y', plain);
  assert.equal(res.status, 308);
  assert.equal(res.headers.get('location'), 'https://a.test/p/a%2Fb?x=1&y');
});

test('ACME HTTP-01 challenges are forwarded over plain HTTP, never redirected', async () => {
  const { request, forwarded } = setup();
  const res = await request('http://a.test/.well-known/acme-challenge/x', plain);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'ok');
  assert.deepEqual(forwarded, ['GET http://localhost:8080/.well-known/acme-challenge/x']);
  // Only the challenge folder: its parent is redirected like any path.
  assert.equal((await request('http://a.test/.well-known/other', plain)).status, 308);
});

test('redirectHttp: false keeps the route on plain HTTP, without HSTS', async () => {
  const { request, forwarded } = setup();
  const res = await request('http://both.test/p?q', plain);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('strict-transport-security'), null);
  assert.deepEqual(forwarded, ['GET http://localhost:8081/p?q']);
  const off = setup({ config: { ...config, tls: { ...config.tls!, redirectHttp: false } } });
  assert.equal((await off.request('http://a.test/', plain)).status, 200);
  assert.deepEqual(off.forwarded, ['GET http://localhost:8080/']);
});

test('no TLS listener bound (no port yet) or no tls in the config: plain HTTP is forwarded', async () => {
  const unbound = setup({ httpsPort: () => null });
  assert.equal((await unbound.request('http://a.test/', plain)).status, 200);
  assert.deepEqual(unbound.forwarded, ['GET http://localhost:8080/']);
  const none = setup({ config: { routes: [{ host: 'a.test', upstream: 'http://localhost:8080' }] } });
  const res = await none.request('http://a.test/', plain);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('strict-transport-security'), null);
});

test('HTTPS: the route HSTS value on forwarded answers, replacing an upstream one; no redirect', async () => {
  const { request, forwarded } = setup({
    fetch: async () => new Response('ok', { headers: { 'content-length': '2', 'strict-transport-security': 'max-age=5' } }),
  });
  const res = await request('https://a.test/p', secure);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'ok');
  assert.equal(res.headers.get('strict-transport-security'), 'max-age=31536000');
  const both = await request('https://both.test/p', secure);
  assert.equal(both.headers.get('strict-transport-security'), 'max-age=60; includeSubDomains');
  assert.deepEqual(forwarded, ['GET http://localhost:8080/p', 'GET http://localhost:8081/p']);
  // A route without hsts leaves the upstream's own header alone.
  const none = await request('https://nohsts.test/p', secure);
  assert.equal(none.headers.get('strict-transport-security'), 'max-age=5');
});

test('HTTPS: HSTS on streamed answers and on responses with immutable headers too', async () => {
  const streamed = setup({ fetch: async () => new Response(new Blob(['abc', 'def']).stream()) });
  const res = await streamed.request('https://a.test/s', secure);
  assert.equal(await res.text(), 'abcdef');
  assert.equal(res.headers.get('strict-transport-security'), 'max-age=31536000');
  // Response.redirect's headers are immutable on undici and Deno: the policy copies the response.
  const redirected = setup({ fetch: async () => Response.redirect('http://elsewhere.test/', 302) });
  const moved = await redirected.request('https://a.test/old', secure);
  assert.equal(moved.status, 302);
  assert.equal(moved.headers.get('location'), 'http://elsewhere.test/');
  assert.equal(moved.headers.get('strict-transport-security'), 'max-age=31536000');
});

test("HTTPS: the proxy's own answers for the route carry HSTS too (502, 413, 500)", async () => {
  const refused = setup({
    fetch: async () => {
      throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    },
  });
  const bad = await refused.request('https://a.test/', secure);
  assert.equal(bad.status, 502);
  assert.equal(await bad.text(), 'bad gateway\n');
  assert.equal(bad.headers.get('strict-transport-security'), 'max-age=31536000');
  assert.equal(refused.access()[0]?.status, 502);
  // The same failure over plain HTTP on a non-redirecting route: no HSTS.
  const overHttp = await refused.request('http://both.test/', plain);
  assert.equal(overHttp.status, 502);
  assert.equal(overHttp.headers.get('strict-transport-security'), null);

  const limited = setup({ config: { ...config, routes: [{ host: 'a.test', upstream: 'http://localhost:8080', hsts: true, maxBodyBytes: 1 }] } });
  const big = await limited.request('https://a.test/', secure, { method: 'POST', body: 'abc', headers: { 'content-length': '3' } });
  assert.equal(big.status, 413);
  assert.equal(big.headers.get('strict-transport-security'), 'max-age=31536000');

  // A transport breaking its contract is answered by the app's error handler.
  const broken = setup({ fetch: async () => null as unknown as Response });
  const internal = await broken.request('https://a.test/', secure);
  assert.equal(internal.status, 500);
  assert.equal(internal.headers.get('strict-transport-security'), 'max-age=31536000');
});

test('answers made before a route is known (no route: 421) carry no HSTS, HTTPS or not', async () => {
  const { request } = setup();
  const miss = await request('https://nowhere.test/', secure);
  assert.equal(miss.status, 421);
  assert.equal(miss.headers.get('strict-transport-security'), null);
  const missPlain = await request('http://nowhere.test/', plain);
  assert.equal(missPlain.status, 421);
  assert.equal(missPlain.headers.get('location'), null);
});
