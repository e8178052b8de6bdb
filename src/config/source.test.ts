import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileConfig, routeKey } from './compile.ts';
import { createConfigSource } from './source.ts';
import type { Route } from './types.ts';

test('route keys come from what a route matches: hosts lowercased and sorted, then the prefix', () => {
  assert.equal(routeKey(['sub1.xyz.com'], '/'), 'sub1.xyz.com/');
  assert.equal(routeKey(['*.xyz.com'], '/api'), '*.xyz.com/api');
  assert.equal(routeKey(['B.test', 'a.test'], '/x'), 'a.test,b.test/x');
  const { routes } = compileConfig({ routes: [{ host: 'Sub1.XYZ.com', path: '/api/', upstream: 'http://localhost:1' }] });
  assert.equal(routes[0]?.key, 'sub1.xyz.com/api');
  assert.equal(routes[0]?.id, 'routes[0]');
});

test('inserting a route shifts ids, never keys', () => {
  const base: Route[] = [
    { host: 'sub1.xyz.com', upstream: 'http://localhost:8080' },
    { host: '*.xyz.com', path: '/api', upstream: 'http://localhost:8181' },
    { host: ['b.test', 'a.test'], upstream: 'http://localhost:8282' },
  ];
  const before = compileConfig({ routes: base }).routes;
  const after = compileConfig({ routes: [{ host: 'new.test', upstream: 'http://localhost:9' }, ...base] }).routes;
  assert.deepEqual(
    before.map((r) => r.key),
    ['sub1.xyz.com/', '*.xyz.com/api', 'a.test,b.test/'],
  );
  assert.deepEqual(
    after.slice(1).map((r) => r.key),
    before.map((r) => r.key),
  );
  assert.notDeepEqual(
    after.slice(1).map((r) => r.id),
    before.map((r) => r.id),
  );
  assert.equal(new Set(after.map((r) => r.key)).size, after.length);
});

test('swap makes the next config current and returns the one it replaced', () => {
  const a = compileConfig({ routes: [{ host: 'a.test', upstream: 'http://localhost:1' }] });
  const b = compileConfig({ routes: [{ host: 'b.test', upstream: 'http://localhost:2' }] });
  const source = createConfigSource(a);
  assert.equal(source.current, a);
  assert.equal(source.swap(b), a);
  assert.equal(source.current, b);
});
