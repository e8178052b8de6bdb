import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { TYPES_SOURCE } from '../cli/types-source.ts';
import { VERSION } from '../version.ts';
import { compileConfig, parseListen } from './compile.ts';
import { listenProblem, upstreamProblem, validateConfig } from './schema.ts';

const seed = {
  routes: [
    { host: 'sub1.xyz.com', upstream: 'http://localhost:8080' },
    { host: '*.xyz.com', upstream: 'http://localhost:8181' },
    { host: '*', upstream: 'http://localhost:8888' },
  ],
};

const problems = (input: unknown) => {
  const r = validateConfig(input);
  return r.ok ? [] : r.problems;
};

test('the seed config is valid', () => {
  assert.deepEqual(problems(seed), []);
});

test('mistakes are reported with their path, all at once', () => {
  const got = problems({
    listen: 'nope',
    routes: [
      { host: 'a.com', upstream: 'http://localhost:8080' },
      { host: 'b.com', upstreem: 'http://x' },
      { host: 'c.com', upstream: 'not a url' },
      { host: 'a.*.com', upstream: 'ftp://x', timeoutMs: -1 },
    ],
    trustedProxies: ['10.0.0.0/99'],
    limits: { maxHeaderBytes: 1_000_000 },
  });
  assert.ok(got.includes('routes[1].upstreem: unknown key'), got.join('\n'));
  assert.ok(got.includes('routes[2].upstream: invalid URL'), got.join('\n'));
  assert.ok(
    got.some((p) => p.startsWith('routes[1].upstream: ')),
    got.join('\n'),
  );
  assert.ok(
    got.some((p) => p.startsWith('routes[3].host: ')),
    got.join('\n'),
  );
  assert.ok(
    got.some((p) => p.startsWith('routes[3].upstream: unsupported scheme ftp:')),
    got.join('\n'),
  );
  assert.ok(
    got.some((p) => p.startsWith('routes[3].timeoutMs: ')),
    got.join('\n'),
  );
  assert.ok(
    got.some((p) => p.startsWith('listen: ')),
    got.join('\n'),
  );
  assert.ok(
    got.some((p) => p.startsWith('trustedProxies[0]: invalid CIDR')),
    got.join('\n'),
  );
  assert.ok(got.includes('limits.maxHeaderBytes: must be at most 16384'), got.join('\n'));
});

test('wrong shapes and unknown top-level keys', () => {
  assert.deepEqual(problems(null), ['(config): must be an object']);
  assert.deepEqual(problems({}), ['routes: is required']);
  assert.deepEqual(problems({ routes: {} }), ['routes: must be an array of routes']);
  assert.deepEqual(problems({ routes: [{ host: 'a.com' }] }), ['routes[0].upstream: is required']);
  assert.deepEqual(problems({ routes: [], rotues: [] }), ['rotues: unknown key']);
});

test('duplicate host and path is an error naming both routes', () => {
  const got = problems({
    routes: [
      { host: 'a.com', upstream: 'http://x:1' },
      { host: ['b.com', 'A.com.'], path: '/', upstream: 'http://x:2' },
    ],
  });
  assert.deepEqual(got, ['routes[1].host: A.com. with path / is already routed by routes[0]']);
});

test('upstream must be a bare origin', () => {
  assert.equal(upstreamProblem('http://localhost:8080'), null);
  assert.equal(upstreamProblem('https://[::1]:8443/'), null);
  assert.match(upstreamProblem('http://localhost:8080/base') ?? '', /origin/);
  assert.match(upstreamProblem('http://localhost:8080?x') ?? '', /origin/);
  assert.match(upstreamProblem('http://u:p@localhost') ?? '', /credentials/);
});

test('listen addresses', () => {
  assert.equal(listenProblem('127.0.0.1:0'), null);
  assert.equal(listenProblem(':80'), null);
  assert.equal(listenProblem('[::1]:4433'), null);
  assert.match(listenProblem('127.0.0.1') ?? '', /HOST:PORT/);
  assert.match(listenProblem('h:70000') ?? '', /0-65535/);
  assert.deepEqual(parseListen(':80'), { hostname: '0.0.0.0', port: 80 });
  assert.deepEqual(parseListen('[::1]:4433'), { hostname: '::1', port: 4433 });
});

test('compileConfig applies defaults and per-route overrides', () => {
  const c = compileConfig({
    routes: [
      { host: 'a.com', path: '/api/', stripPrefix: true, upstream: 'http://localhost:8080', hostHeader: 'upstream', timeoutMs: 5, maxBodyBytes: null },
      { host: '*', upstream: 'https://b.example' },
    ],
    limits: { maxBodyBytes: 1000 },
  });
  const [a, b] = c.routes;
  assert.equal(a?.prefix, '/api');
  assert.equal(a?.stripLength, 4);
  assert.equal(a?.upstream.origin, 'http://localhost:8080');
  assert.equal(a?.upstream.hostPort, 'localhost:8080');
  assert.equal(a?.sendUpstreamHost, true);
  assert.equal(a?.timeoutMs, 5);
  assert.equal(a?.maxBodyBytes, null);
  assert.equal(b?.timeoutMs, 30_000);
  assert.equal(b?.maxBodyBytes, 1000);
  assert.equal(b?.upstream.origin, 'https://b.example');
  assert.deepEqual(c.listen, { hostname: '0.0.0.0', port: 80 });
  assert.equal(c.table.match('a.com', '/api/x'), a);
  assert.equal(c.table.match('a.com', '/x'), b);
});

test('init copies the current types (run `make gen` after editing types.ts)', () => {
  assert.equal(TYPES_SOURCE, readFileSync(new URL('./types.ts', import.meta.url), 'utf8'));
});

test('VERSION matches package.json', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  assert.equal(VERSION, pkg.version);
});
