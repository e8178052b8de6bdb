import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Hono } from 'hono';
import type { AppEnv, Bindings, RequestFacts } from '../app-env.ts';
import { compileConfig } from '../config/compile.ts';
import { createConfigSource } from '../config/source.ts';
import { factsFromRequest, requestFacts } from './facts.ts';

const conn = { remoteAddr: '192.0.2.7', proto: 'http', listener: 'http' } as const;

function probe() {
  const source = createConfigSource(compileConfig({ routes: [{ host: '*', upstream: 'http://localhost:1' }] }));
  const seen: { facts?: RequestFacts; config?: unknown } = {};
  const app = new Hono<AppEnv>();
  app.use(requestFacts(source));
  app.all('*', (c) => {
    seen.facts = c.get('facts');
    seen.config = c.get('config');
    return c.body(null, 204);
  });
  return { app, source, seen };
}

test('from the request line: method, target and version exactly as received', async () => {
  const { app, source, seen } = probe();
  // Bun's Request would have turned `PURGE-ALL` into GET, and URL parsing resolves `..`.
  const env: Bindings = { conn, line: { method: 'PURGE-ALL', target: '/a/../b?x=%7e', version: '1.0' } };
  await app.request('http://a.test/b', { headers: { host: 'a.test' } }, env);
  assert.deepEqual(seen.facts, { method: 'PURGE-ALL', rawTarget: '/a/../b?x=%7e', httpVersion: '1.0', conn, peerTrusted: false, client: '192.0.2.7' });
  assert.equal(seen.facts?.conn, conn);
  assert.equal(seen.config, source.current);
});

test('from the Request when the listener has no line (Deno): URL as given, version unknown', async () => {
  const { app, seen } = probe();
  await app.request('http://a.test/p?q', { method: 'PATCH', headers: { host: 'a.test' } }, { conn });
  assert.deepEqual(seen.facts, { method: 'PATCH', rawTarget: 'http://a.test/p?q', httpVersion: null, conn, peerTrusted: false, client: '192.0.2.7' });
  assert.deepEqual(factsFromRequest(new Request('http://other.test/x'), conn), {
    method: 'GET',
    rawTarget: 'http://other.test/x',
    httpVersion: null,
    conn,
    peerTrusted: false,
    client: '192.0.2.7',
  });
});

test('the config snapshot is taken once, at the start of the request', async () => {
  const { app, source, seen } = probe();
  const first = source.current;
  await app.request('http://a.test/', {}, { conn });
  assert.equal(seen.config, first);
  const next = compileConfig({ routes: [{ host: 'b.test', upstream: 'http://localhost:2' }] });
  source.swap(next);
  await app.request('http://a.test/', {}, { conn });
  assert.equal(seen.config, next);
});

test('the client: spoofed forwarding headers from an untrusted peer change nothing; a trusted peer forwards for someone', async () => {
  const source = createConfigSource(compileConfig({ routes: [{ host: '*', upstream: 'http://localhost:1' }], trustedProxies: ['192.0.2.0/24'] }));
  let facts: RequestFacts | undefined;
  const app = new Hono<AppEnv>();
  app.use(requestFacts(source));
  app.all('*', (c) => {
    facts = c.get('facts');
    return c.body(null, 204);
  });
  const spoof = { 'x-forwarded-for': '6.6.6.6', 'x-real-ip': '6.6.6.6', 'true-client-ip': '6.6.6.6', forwarded: 'for=6.6.6.6' };
  await app.request('http://a.test/', { headers: spoof }, { conn: { ...conn, remoteAddr: '198.51.100.9' } });
  assert.equal(facts?.client, '198.51.100.9');
  assert.equal(facts?.peerTrusted, false);
  await app.request('http://a.test/', { headers: spoof }, { conn });
  assert.equal(facts?.client, '6.6.6.6');
  assert.equal(facts?.peerTrusted, true);
  await app.request('http://a.test/', { headers: { 'x-real-ip': '6.6.6.6' } }, { conn });
  assert.equal(facts?.client, '192.0.2.7', 'X-Real-IP is never read');
});
