// CORS per route through the real app (src/app.ts) with a fake transport: preflights answered
// by the proxy and never forwarded, actual requests forwarded with the route's headers (the
// upstream's own replaced), Vary: Origin, and a route without `cors` left as it was.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createApp } from '../app.ts';
import type { Bindings, ConnInfo } from '../app-env.ts';
import { compileConfig } from '../config/compile.ts';
import { createConfigSource } from '../config/source.ts';
import type { Config } from '../config/types.ts';
import { createLogger } from '../log/logger.ts';
import type { Transport } from '../transport/types.ts';
import { compileCors } from './cors.ts';

const conn: ConnInfo = { remoteAddr: '192.0.2.1', proto: 'http', listener: 'http' };
const APP = 'https://app.test';

const config: Config = {
  routes: [
    { host: 'any.test', upstream: 'http://localhost:1', cors: { origin: '*', exposeHeaders: ['X-Total'] } },
    {
      host: 'list.test',
      upstream: 'http://localhost:2',
      cors: { origin: [APP, 'http://localhost:5173'], credentials: true, allowMethods: ['GET', 'PUT'], allowHeaders: ['X-Token'], maxAgeSeconds: 600 },
      securityHeaders: true,
    },
    { host: 'one.test', upstream: 'http://localhost:3', cors: { origin: APP } },
    { host: 'plain.test', upstream: 'http://localhost:4' },
  ],
};

function setup(fetch: Transport['fetch'] = async () => new Response('ok', { headers: { 'content-length': '2' } })) {
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
  const app = createApp({ config: createConfigSource(compileConfig(config)), transport, logger });
  const request = async (url: string, init: RequestInit = {}, line?: Bindings['line']) => {
    const headers = new Headers(init.headers);
    headers.set('host', new URL(url).host);
    const res = await app.request(url, { ...init, headers }, line === undefined ? { conn } : { conn, line });
    logger.flush();
    return res;
  };
  return { request, forwarded, access: () => lines.filter((l) => l.msg === 'access') };
}

const preflight = (origin: string, extra: Record<string, string> = {}): RequestInit => ({
  method: 'OPTIONS',
  headers: { origin, 'access-control-request-method': 'PUT', ...extra },
});

/** The Access-Control-* and Vary fields of an answer, sorted. */
const corsFields = (res: Response) => [...res.headers].filter(([name]) => name.startsWith('access-control-') || name === 'vary').sort();

test('compile: "*" stays a wildcard, a string or list becomes a set of origins', () => {
  assert.equal(compileCors({ origin: '*' }).origins, '*');
  assert.deepEqual([...(compileCors({ origin: APP }).origins as Set<string>)], [APP]);
  assert.deepEqual([...(compileCors({ origin: [APP, 'http://b.test'] }).origins as Set<string>)], [APP, 'http://b.test']);
  const c = compileConfig(config);
  assert.notEqual(c.routes[0]?.cors, null);
  assert.equal(c.routes[3]?.cors, null);
  // Built once per load: the same handler for every request of the route.
  assert.equal(c.routes[0]?.cors, c.routes[0]?.cors);
});

test('a preflight is answered 204 by the proxy with the route settings; nothing is forwarded', async () => {
  const { request, forwarded, access } = setup();
  const res = await request('http://list.test/api', preflight(APP, { 'access-control-request-headers': 'x-token' }));
  assert.equal(res.status, 204);
  assert.equal(await res.text(), '');
  assert.deepEqual(corsFields(res), [
    ['access-control-allow-credentials', 'true'],
    ['access-control-allow-headers', 'X-Token'],
    ['access-control-allow-methods', 'GET,PUT'],
    ['access-control-allow-origin', APP],
    ['access-control-max-age', '600'],
    // Hono names Access-Control-Request-Headers in Vary whenever it sends Allow-Headers, listed or reflected.
    ['vary', 'Origin, Access-Control-Request-Headers'],
  ]);
  // Security headers of the route go on the proxy's own 204 too.
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.deepEqual(forwarded, []);
  assert.equal(access()[0]?.status, 204);
});

test('a preflight from an origin not listed: 204 without Allow-Origin, still not forwarded', async () => {
  const { request, forwarded } = setup();
  const res = await request('http://list.test/api', preflight('https://evil.test'));
  assert.equal(res.status, 204);
  assert.equal(res.headers.get('access-control-allow-origin'), null);
  assert.equal(res.headers.get('vary'), 'Origin, Access-Control-Request-Headers');
  assert.deepEqual(forwarded, []);
});

test('defaults: any origin, Hono default methods, the requested headers reflected, no Vary', async () => {
  const { request } = setup();
  const res = await request('http://any.test/', preflight('https://x.test', { 'access-control-request-headers': 'X-A, content-type' }));
  assert.equal(res.status, 204);
  assert.deepEqual(corsFields(res), [
    ['access-control-allow-headers', 'X-A,content-type'],
    ['access-control-allow-methods', 'GET,HEAD,PUT,POST,DELETE,PATCH'],
    ['access-control-allow-origin', '*'],
    ['access-control-expose-headers', 'X-Total'],
    ['vary', 'Access-Control-Request-Headers'],
  ]);
});

test('an OPTIONS that is not a preflight is forwarded: no Origin, no Request-Method, or lowercase options', async () => {
  const { request, forwarded } = setup();
  const noOrigin = await request('http://list.test/a', { method: 'OPTIONS', headers: { 'access-control-request-method': 'PUT' } });
  assert.equal(noOrigin.status, 200);
  const actual = await request('http://list.test/b', { method: 'OPTIONS', headers: { origin: APP } });
  assert.equal(actual.status, 200);
  assert.equal(actual.headers.get('access-control-allow-origin'), APP, 'the actual OPTIONS after a preflight gets CORS headers');
  // RFC 9110 §9.1: methods are case-sensitive; the listener's exact method decides, not the Request's.
  const lower = await request('http://list.test/c', preflight(APP), { method: 'options', target: '/c', version: '1.1' });
  assert.equal(lower.status, 200);
  assert.deepEqual(forwarded, ['OPTIONS http://localhost:2/a', 'OPTIONS http://localhost:2/b', 'options http://localhost:2/c']);
});

test("actual requests: forwarded, with the route's headers replacing the upstream's, Vary: Origin appended", async () => {
  const { request, forwarded } = setup(
    async () =>
      new Response('ok', {
        headers: {
          'content-length': '2',
          'access-control-allow-origin': '*',
          'access-control-allow-credentials': 'false',
          'access-control-expose-headers': 'X-Secret',
          vary: 'Accept-Encoding',
        },
      }),
  );
  const res = await request('http://list.test/x', { method: 'PUT', body: 'a', headers: { origin: APP, 'content-length': '1' } });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'ok');
  assert.deepEqual(corsFields(res), [
    ['access-control-allow-credentials', 'true'],
    ['access-control-allow-origin', APP],
    ['vary', 'Accept-Encoding, Origin'],
  ]);
  // Not allowed: the upstream's own Allow-Origin does not slip through.
  const other = await request('http://list.test/y', { headers: { origin: 'https://evil.test' } });
  assert.equal(other.headers.get('access-control-allow-origin'), null);
  assert.equal(other.headers.get('access-control-expose-headers'), null);
  // No Origin at all (a same-origin or non-browser client): still Vary, for caches.
  const none = await request('http://list.test/z');
  assert.equal(none.headers.get('access-control-allow-origin'), null);
  assert.equal(none.headers.get('vary'), 'Accept-Encoding, Origin');
  assert.deepEqual(forwarded, ['PUT http://localhost:2/x', 'GET http://localhost:2/y', 'GET http://localhost:2/z']);
});

test('origin "*": every answer says * and carries no Vary: Origin; an existing Vary: Origin is not repeated', async () => {
  const { request } = setup(async () => new Response('ok', { headers: { 'content-length': '2', vary: 'origin' } }));
  const any = await request('http://any.test/', { headers: { origin: 'https://x.test' } });
  assert.equal(any.headers.get('access-control-allow-origin'), '*');
  assert.equal(any.headers.get('access-control-expose-headers'), 'X-Total');
  assert.equal(any.headers.get('vary'), 'origin');
  const one = await request('http://one.test/', { headers: { origin: APP } });
  assert.equal(one.headers.get('access-control-allow-origin'), APP);
  assert.equal(one.headers.get('vary'), 'origin');
});

test("the proxy's own error answers on the route carry CORS headers, so a page can read the status", async () => {
  const { request } = setup(async () => {
    throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  });
  const res = await request('http://list.test/', { headers: { origin: APP } });
  assert.equal(res.status, 502);
  assert.equal(res.headers.get('access-control-allow-origin'), APP);
  assert.equal(res.headers.get('vary'), 'Origin');
});

test('a route without cors: preflights are forwarded and answers keep the upstream headers', async () => {
  const sent = new Response('ok', { headers: { 'content-length': '2', 'access-control-allow-origin': '*' } });
  const { request, forwarded } = setup(async () => sent);
  const res = await request('http://plain.test/', preflight(APP));
  assert.equal(res, sent);
  assert.equal(res.headers.get('vary'), null);
  assert.deepEqual(forwarded, ['OPTIONS http://localhost:4/']);
});
