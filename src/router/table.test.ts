import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileRouteTable, prefixMatches } from './table.ts';

const route = (name: string, hosts: string[], prefix = '/') => ({ name, hosts, prefix });

// Written least specific first: order must not matter.
const table = compileRouteTable([
  route('any', ['*']),
  route('wild', ['*.xyz.com']),
  route('deep', ['*.b.xyz.com']),
  route('sub1', ['sub1.xyz.com']),
  route('api', ['api.test'], '/api'),
  route('api-v2', ['api.test'], '/api/v2'),
  route('any-static', ['*'], '/static'),
]);
const pick = (host: string, target = '/') => table.match(host, target)?.name;

test('exact beats wildcard beats catch-all', () => {
  assert.equal(pick('sub1.xyz.com'), 'sub1');
  assert.equal(pick('sub2.xyz.com'), 'wild');
  assert.equal(pick('other.example'), 'any');
});

test('wildcards take one or more labels, longest suffix first, never the bare domain', () => {
  assert.equal(pick('a.b.xyz.com'), 'deep');
  assert.equal(pick('x.a.b.xyz.com'), 'deep');
  assert.equal(pick('a.c.xyz.com'), 'wild');
  assert.equal(pick('b.xyz.com'), 'wild');
  assert.equal(pick('xyz.com'), 'any');
});

test('path prefixes: segment boundary, longest first', () => {
  assert.equal(pick('api.test', '/api'), 'api');
  assert.equal(pick('api.test', '/api/x?q=1'), 'api');
  assert.equal(pick('api.test', '/api?q=1'), 'api');
  assert.equal(pick('api.test', '/api/v2/users'), 'api-v2');
  assert.equal(pick('api.test', '/apix'), 'any');
});

test('a host with no matching path falls back to less specific hosts', () => {
  assert.equal(pick('api.test', '/static/a.css'), 'any-static');
  assert.equal(pick('sub1.xyz.com', '/static/a.css'), 'sub1');
});

test('no catch-all: a miss is undefined', () => {
  const t = compileRouteTable([route('only', ['a.test'])]);
  assert.equal(t.match('b.test', '/'), undefined);
  assert.equal(t.match('a.test', '/'), t.match('a.test', '/x'));
});

test('patterns are normalised: case and trailing dot', () => {
  const t = compileRouteTable([route('x', ['Sub.Example.COM.']), route('w', ['*.Wild.Test'])]);
  assert.equal(t.match('sub.example.com', '/')?.name, 'x');
  assert.equal(t.match('a.wild.test', '/')?.name, 'w');
});

test('10,000 exact hosts route by lookup', () => {
  const routes = Array.from({ length: 10_000 }, (_, i) => route(`r${i}`, [`host${i}.example`]));
  const t = compileRouteTable(routes);
  assert.equal(t.match('host0.example', '/')?.name, 'r0');
  assert.equal(t.match('host9999.example', '/')?.name, 'r9999');
  assert.equal(t.match('host10000.example', '/'), undefined);
});

test('paths decide on a host when a reachable route has a path, the catch-all of that host included', () => {
  const decides = (host: string) => table.forHost(host)?.pathsDecide;
  assert.equal(decides('api.test'), true, 'own path routes');
  assert.equal(decides('other.example'), true, '* has /static');
  assert.equal(decides('sub1.xyz.com'), false, "its own / shadows *'s /static");
  const plain = compileRouteTable([route('a', ['a.test']), route('any', ['*'])]);
  assert.equal(plain.forHost('a.test')?.pathsDecide, false);
  assert.equal(plain.forHost('b.test')?.pathsDecide, false);
  const only = compileRouteTable([route('p', ['p.test'], '/only')]);
  assert.equal(only.forHost('p.test')?.pathsDecide, true);
  assert.equal(only.forHost('q.test'), undefined);
});

test('path prefixes ignore ASCII case, on both sides', () => {
  assert.equal(pick('api.test', '/API/x'), 'api');
  assert.equal(pick('api.test', '/Api/V2?q'), 'api-v2');
  const upper = compileRouteTable([route('admin', ['a.test'], '/Admin'), route('any', ['a.test'])]);
  assert.equal(upper.match('a.test', '/admin/x')?.name, 'admin');
  assert.equal(upper.match('a.test', '/ADMINX')?.name, 'any');
});

test('prefixMatches', () => {
  assert.equal(prefixMatches('/', '/anything'), true);
  assert.equal(prefixMatches('/api', '/api'), true);
  assert.equal(prefixMatches('/api', '/api/'), true);
  assert.equal(prefixMatches('/api', '/api?x'), true);
  assert.equal(prefixMatches('/api', '/apix'), false);
  assert.equal(prefixMatches('/api', '/ap'), false);
  assert.equal(prefixMatches('/api', '/APi/x'), true);
  assert.equal(prefixMatches('/caf%c3%a9', '/caf%C3%A9'), true);
  assert.equal(prefixMatches('/a-b', '/a_b'), false, 'only letters fold');
  assert.equal(prefixMatches('/a@', '/a`'), false, 'only A-Z fold to a-z');
});
