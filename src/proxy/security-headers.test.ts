// securityHeaders: what the config compiles to, and the headers on every answer of a route
// through the real app (src/app.ts) with a fake transport: the upstream's answers, the proxy's
// own, the overwrite rule, and a route without the setting left as it was.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createApp } from '../app.ts';
import type { ConnInfo } from '../app-env.ts';
import { compileConfig } from '../config/compile.ts';
import { createConfigSource } from '../config/source.ts';
import type { Config } from '../config/types.ts';
import { createLogger } from '../log/logger.ts';
import type { Transport } from '../transport/types.ts';
import { compileSecurityHeaders } from './security-headers.ts';

const conn: ConnInfo = { remoteAddr: '192.0.2.1', proto: 'http', listener: 'http' };

const DEFAULT_SET = [
  ['x-content-type-options', 'nosniff'],
  ['x-frame-options', 'SAMEORIGIN'],
  ['referrer-policy', 'strict-origin-when-cross-origin'],
];

test('compile: true is the default set; the object form starts from it; false drops a header', () => {
  assert.equal(compileSecurityHeaders(undefined), null);
  assert.equal(compileSecurityHeaders(false), null);
  assert.deepEqual(compileSecurityHeaders(true), { pairs: DEFAULT_SET, overwrite: true });
  assert.deepEqual(compileSecurityHeaders({}), { pairs: DEFAULT_SET, overwrite: true });
  assert.deepEqual(
    compileSecurityHeaders({
      frameOptions: 'DENY',
      referrerPolicy: 'no-referrer',
      contentSecurityPolicy: "default-src 'self'",
      contentSecurityPolicyReportOnly: "script-src 'none'",
      permissionsPolicy: 'camera=()',
      overwrite: false,
    }),
    {
      pairs: [
        ['x-content-type-options', 'nosniff'],
        ['x-frame-options', 'DENY'],
        ['referrer-policy', 'no-referrer'],
        ['content-security-policy', "default-src 'self'"],
        ['content-security-policy-report-only', "script-src 'none'"],
        ['permissions-policy', 'camera=()'],
      ],
      overwrite: false,
    },
  );
  assert.deepEqual(compileSecurityHeaders({ contentTypeOptions: false, frameOptions: false, contentSecurityPolicy: "frame-ancestors 'none'" }), {
    pairs: [
      ['referrer-policy', 'strict-origin-when-cross-origin'],
      ['content-security-policy', "frame-ancestors 'none'"],
    ],
    overwrite: true,
  });
  // Everything turned off adds nothing: the route takes the plain path.
  assert.equal(compileSecurityHeaders({ contentTypeOptions: false, frameOptions: false, referrerPolicy: false }), null);
});

test('compileConfig: only routes with the setting carry pairs', () => {
  const c = compileConfig({
    routes: [
      { host: 'a.test', upstream: 'http://localhost:1', securityHeaders: true },
      { host: 'b.test', upstream: 'http://localhost:2' },
    ],
  });
  assert.deepEqual(c.routes[0]?.securityHeaders?.pairs, DEFAULT_SET);
  assert.equal(c.routes[1]?.securityHeaders, null);
});

function setup(config: Config, fetch: Transport['fetch']) {
  const forwarded: string[] = [];
  const transport: Transport = {
    name: 'fake',
    fetch: (url, init) => {
      forwarded.push(`${init.method} ${url}`);
      return fetch(url, init);
    },
    upgrade: () => Promise.reject(new Error('no upgrades here')),
    close: async () => {},
  };
  const app = createApp({ config: createConfigSource(compileConfig(config)), transport, logger: createLogger({ write: () => {} }) });
  const request = (url: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    headers.set('host', new URL(url).host);
    return app.request(url, { ...init, headers }, { conn });
  };
  return { request, forwarded };
}

const upstreamOwn: Transport['fetch'] = async () =>
  new Response('ok', {
    headers: { 'content-length': '2', 'x-frame-options': 'DENY', 'content-security-policy': "default-src 'none'", 'x-app': '1' },
  });

const config: Config = {
  routes: [
    { host: 'set.test', upstream: 'http://localhost:1', securityHeaders: { contentSecurityPolicy: "default-src 'self'" } },
    { host: 'keep.test', upstream: 'http://localhost:2', securityHeaders: { contentSecurityPolicy: "default-src 'self'", overwrite: false } },
    { host: 'plain.test', upstream: 'http://localhost:3', maxBodyBytes: 1 },
    { host: 'small.test', upstream: 'http://localhost:4', securityHeaders: true, maxBodyBytes: 1 },
  ],
};

test("upstream answers: the route's values replace the upstream's by default; its other headers pass", async () => {
  const { request } = setup(config, upstreamOwn);
  const res = await request('http://set.test/p');
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'ok');
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(res.headers.get('x-frame-options'), 'SAMEORIGIN');
  assert.equal(res.headers.get('referrer-policy'), 'strict-origin-when-cross-origin');
  assert.equal(res.headers.get('content-security-policy'), "default-src 'self'");
  assert.equal(res.headers.get('x-app'), '1');
});

test('overwrite: false keeps what the upstream sent and fills in the rest', async () => {
  const { request } = setup(config, upstreamOwn);
  const res = await request('http://keep.test/p');
  assert.equal(res.headers.get('x-frame-options'), 'DENY');
  assert.equal(res.headers.get('content-security-policy'), "default-src 'none'");
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(res.headers.get('referrer-policy'), 'strict-origin-when-cross-origin');
});

test("the proxy's own answers on the route carry them too (502, 413, 500)", async () => {
  const refused = setup(config, async () => {
    throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  });
  const bad = await refused.request('http://small.test/');
  assert.equal(bad.status, 502);
  assert.deepEqual(
    DEFAULT_SET.map(([name]) => [name, bad.headers.get(name as string)]),
    DEFAULT_SET,
  );
  const big = await refused.request('http://small.test/', { method: 'POST', body: 'abc', headers: { 'content-length': '3' } });
  assert.equal(big.status, 413);
  assert.equal(big.headers.get('x-content-type-options'), 'nosniff');
  assert.deepEqual(refused.forwarded, ['GET http://localhost:4/'], 'the 413 reached no upstream');
  const broken = setup(config, async () => null as unknown as Response);
  const internal = await broken.request('http://small.test/');
  assert.equal(internal.status, 500);
  assert.equal(internal.headers.get('x-frame-options'), 'SAMEORIGIN');
});

test('streamed answers and answers with immutable headers get them too', async () => {
  const streamed = setup(config, async () => new Response(new Blob(['abc', 'def']).stream()));
  const res = await streamed.request('http://small.test/s');
  assert.equal(await res.text(), 'abcdef');
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  // Response.redirect's headers are immutable on undici and Deno: the answer is copied once.
  const redirected = setup(config, async () => Response.redirect('http://elsewhere.test/', 302));
  const moved = await redirected.request('http://small.test/old');
  assert.equal(moved.status, 302);
  assert.equal(moved.headers.get('location'), 'http://elsewhere.test/');
  assert.equal(moved.headers.get('referrer-policy'), 'strict-origin-when-cross-origin');
});

test('a route without the setting: the answer is the upstream Response itself, headers untouched', async () => {
  const sent = new Response('ok', { headers: { 'content-length': '2', 'x-frame-options': 'DENY' } });
  const before = [...sent.headers];
  const { request } = setup(config, async () => sent);
  const res = await request('http://plain.test/p');
  assert.equal(res, sent);
  assert.deepEqual([...res.headers], before);
  const big = await request('http://plain.test/', { method: 'POST', body: 'abc', headers: { 'content-length': '3' } });
  assert.equal(big.status, 413);
  assert.equal(big.headers.get('x-content-type-options'), null);
});
