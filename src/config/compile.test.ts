// The TLS parts of compileConfig (issue 7): HSTS values, redirect defaults, the TLS listener's
// settings, and upstream TLS options taken from the files read at load.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createApp } from '../app.ts';
import { createLogger } from '../log/logger.ts';
import { UpstreamError, type UpstreamTlsOptions } from '../transport/types.ts';
import { compileConfig, DEFAULT_TLS_LISTEN, HSTS_DEFAULT_MAX_AGE, hstsValue } from './compile.ts';
import { createConfigSource } from './source.ts';
import { NO_TLS_FILES, type TlsFiles } from './tls-files.ts';
import type { Config, Route, TlsConfig } from './types.ts';

const tls: TlsConfig = { certificates: [{ cert: 'certs/a.pem', key: 'certs/a.key' }] };
const route = (host: string, extra: Partial<Route> = {}): Route => ({ host, upstream: 'http://localhost:8080', ...extra });
const files = (over: Partial<TlsFiles>): TlsFiles => ({ ...NO_TLS_FILES, ...over });

test('hstsValue: true is one year, the object form sets each part, false and absent are null', () => {
  assert.equal(HSTS_DEFAULT_MAX_AGE, 31_536_000);
  assert.equal(hstsValue(undefined), null);
  assert.equal(hstsValue(false), null);
  assert.equal(hstsValue(true), 'max-age=31536000');
  assert.equal(hstsValue({}), 'max-age=31536000');
  assert.equal(hstsValue({ maxAge: 0 }), 'max-age=0');
  assert.equal(hstsValue({ maxAge: 60, includeSubDomains: true }), 'max-age=60; includeSubDomains');
  assert.equal(hstsValue({ preload: true }), 'max-age=31536000; preload');
  assert.equal(hstsValue({ maxAge: 63_072_000, includeSubDomains: true, preload: true }), 'max-age=63072000; includeSubDomains; preload');
  assert.equal(hstsValue({ includeSubDomains: false, preload: false }), 'max-age=31536000');
});

test('route.hsts: the header value with a tls listener, null without one whatever the route says', () => {
  const routes = [route('a.test', { hsts: true }), route('b.test', { hsts: { maxAge: 5, preload: true } }), route('c.test'), route('d.test', { hsts: false })];
  const withTls = compileConfig({ tls, routes });
  assert.deepEqual(
    withTls.routes.map((r) => r.hsts),
    ['max-age=31536000', 'max-age=5; preload', null, null],
  );
  // Validation refuses hsts without tls; compiled anyway, nothing would send it.
  const without = compileConfig({ routes });
  assert.deepEqual(
    without.routes.map((r) => r.hsts),
    [null, null, null, null],
  );
});

test('route.redirectHttp: on by default with tls, off with tls.redirectHttp: false, the route wins, never without tls', () => {
  const routes = [route('a.test'), route('b.test', { redirectHttp: true }), route('c.test', { redirectHttp: false })];
  const redirects = (config: Config) => compileConfig(config).routes.map((r) => r.redirectHttp);
  assert.deepEqual(redirects({ tls, routes }), [true, true, false]);
  assert.deepEqual(redirects({ tls: { ...tls, redirectHttp: true }, routes }), [true, true, false]);
  assert.deepEqual(redirects({ tls: { ...tls, redirectHttp: false }, routes }), [false, true, false]);
  assert.deepEqual(redirects({ routes }), [false, false, false]);
});

test('config.tls: null without tls; listen defaults to 0.0.0.0:443', () => {
  assert.equal(compileConfig({ routes: [route('a.test')] }).tls, null);
  assert.equal(DEFAULT_TLS_LISTEN, '0.0.0.0:443');
  assert.deepEqual(compileConfig({ tls, routes: [] }).tls, { listen: { hostname: '0.0.0.0', port: 443 }, clientAuth: null });
  assert.deepEqual(compileConfig({ tls: { ...tls, listen: '127.0.0.1:8443' }, routes: [] }).tls?.listen, { hostname: '127.0.0.1', port: 8443 });
  assert.deepEqual(compileConfig({ tls: { ...tls, listen: '[::1]:0' }, routes: [] }).tls?.listen, { hostname: '::1', port: 0 });
  assert.deepEqual(compileConfig({ tls: { ...tls, listen: ':4443' }, routes: [] }).tls?.listen, { hostname: '0.0.0.0', port: 4443 });
  // The plain listener keeps its own default.
  assert.deepEqual(compileConfig({ tls, routes: [] }).listen, { hostname: '0.0.0.0', port: 80 });
});

test('clientAuth: required by default, the header lowercased, the CA from the files read', () => {
  const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----';
  const plain = compileConfig({ tls: { ...tls, clientAuth: { ca: 'certs/root.pem' } }, routes: [] }, files({ clientCa: ca }));
  assert.deepEqual(plain.tls?.clientAuth, { ca, required: true, header: null });
  const full = compileConfig(
    { tls: { ...tls, clientAuth: { ca: 'certs/root.pem', required: false, header: 'X-Client-Subject' } }, routes: [] },
    files({ clientCa: ca }),
  );
  assert.deepEqual(full.tls?.clientAuth, { ca, required: false, header: 'x-client-subject' });
  assert.equal(compileConfig({ tls: { ...tls, clientAuth: { ca: 'x', required: true } }, routes: [] }).tls?.clientAuth?.required, true);
  // Compiled without the files (as the docs of compileConfig say): no CA.
  assert.equal(compileConfig({ tls: { ...tls, clientAuth: { ca: 'certs/root.pem' } }, routes: [] }).tls?.clientAuth?.ca, '');
});

test('upstream.tls is the object the files hold for that route index, the same one every time', () => {
  const options: UpstreamTlsOptions = Object.freeze({ ca: 'PEM', serverName: 'api.internal', cert: undefined, key: undefined, insecure: false });
  const other: UpstreamTlsOptions = Object.freeze({ insecure: true });
  const read = files({
    upstreamTls: new Map([
      [1, options],
      [2, other],
    ]),
  });
  const config: Config = {
    routes: [
      route('a.test'),
      route('b.test', { upstream: 'https://localhost:8443', upstreamTls: { ca: 'certs/root.pem', serverName: 'api.internal' } }),
      route('c.test', { upstream: 'https://localhost:9443', upstreamTls: { insecure: true } }),
    ],
  };
  const first = compileConfig(config, read);
  assert.equal(first.routes[0]?.upstream.tls, undefined);
  assert.equal(first.routes[1]?.upstream.tls, options);
  assert.equal(first.routes[2]?.upstream.tls, other);
  assert.deepEqual(first.routes[1]?.upstream, { origin: 'https://localhost:8443', hostPort: 'localhost:8443', tls: options });
  // What the request path reaches through the table is the same route, hence the same object.
  assert.equal(first.table.match('b.test', '/x')?.upstream.tls, options);
  assert.equal(first.table.match('b.test', '/y')?.upstream.tls, options);
  // A second compile with the same files (a reload of the routes alone) keeps the identity the transport pools by.
  const second = compileConfig(config, read);
  assert.notEqual(second.routes[1], first.routes[1]);
  assert.equal(second.routes[1]?.upstream.tls, options);
  // Without files nothing is invented.
  assert.equal(compileConfig(config).routes[1]?.upstream.tls, undefined);
});

test('the transport gets that object on every request to the route, a retry included', async () => {
  const options: UpstreamTlsOptions = Object.freeze({ ca: 'PEM', insecure: false });
  const config: Config = { routes: [route('b.test', { upstream: 'https://localhost:8443', upstreamTls: { ca: 'certs/root.pem' } }), route('a.test')] };
  const seen: (UpstreamTlsOptions | undefined)[] = [];
  let calls = 0;
  const app = createApp({
    config: createConfigSource(compileConfig(config, files({ upstreamTls: new Map([[0, options]]) }))),
    transport: {
      name: 'fake',
      fetch: async (_url, init) => {
        seen.push(init.tls);
        // The first attempt fails as a stale pooled connection does: one retry follows.
        if (++calls === 1) throw new UpstreamError('socket closed', 'ECONNRESET', { connectFailed: false, reusedConnection: true, responseStarted: false });
        return new Response('ok', { headers: { 'content-length': '2' } });
      },
      upgrade: () => Promise.reject(new Error('no upgrades here')),
      close: async () => {},
    },
    logger: createLogger({ write: () => {} }),
  });
  const conn = { remoteAddr: '192.0.2.1', proto: 'http' as const, listener: 'http' };
  for (const host of ['b.test', 'b.test', 'a.test']) {
    const res = await app.request(`http://${host}/`, { headers: { host } }, { conn });
    assert.equal(res.status, 200, host);
  }
  assert.equal(seen.length, 4);
  assert.equal(seen[0], options);
  assert.equal(seen[1], options, 'the retry');
  assert.equal(seen[2], options);
  assert.equal(seen[3], undefined, 'a route without upstreamTls');
});

test('allow / deny compile to one test: deny wins, an allow list admits only its networks, none at all is null', () => {
  const refuses = (extra: object) => compileConfig({ routes: [{ host: 'a.test', upstream: 'http://127.0.0.1:1', ...extra }] }).routes[0]?.refusesClient ?? null;
  assert.equal(refuses({}), null);
  assert.equal(refuses({ deny: [] }), null);
  const allowOnly = refuses({ allow: ['10.0.0.0/8', '::1'] });
  assert.ok(allowOnly);
  assert.equal(allowOnly('10.1.2.3'), false);
  assert.equal(allowOnly('::ffff:10.1.2.3'), false, 'an IPv4-mapped client matches its IPv4 range');
  assert.equal(allowOnly('::1'), false);
  assert.equal(allowOnly('192.0.2.1'), true);
  const both = refuses({ allow: ['10.0.0.0/8'], deny: ['10.0.0.5'] });
  assert.equal(both?.('10.0.0.5'), true);
  assert.equal(both?.('10.0.0.6'), false);
  const denyOnly = refuses({ deny: ['2001:db8::/32'] });
  assert.equal(denyOnly?.('2001:db8::1'), true);
  assert.equal(denyOnly?.('127.0.0.1'), false);
});
