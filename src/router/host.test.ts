import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hostPatternProblem, normalizeHost } from './host.ts';

test('normalizeHost lowercases and drops port and trailing dot', () => {
  assert.equal(normalizeHost('Sub1.XYZ.com'), 'sub1.xyz.com');
  assert.equal(normalizeHost('sub1.xyz.com:4433'), 'sub1.xyz.com');
  assert.equal(normalizeHost('sub1.xyz.com.'), 'sub1.xyz.com');
  assert.equal(normalizeHost('sub1.xyz.com.:80'), 'sub1.xyz.com');
  assert.equal(normalizeHost('[::1]:8080'), '[::1]');
  assert.equal(normalizeHost('127.0.0.1:80'), '127.0.0.1');
});

test('normalizeHost refuses what no host is', () => {
  for (const bad of ['', 'a.com, b.com', 'a b', 'a.com:x', '[::1', '[::1]x', 'a/b', ':80', 'a@b', '.a.com', 'a..com', '..']) {
    assert.equal(normalizeHost(bad), null, bad);
  }
});

test('hostPatternProblem accepts names, wildcards, catch-all, IPs', () => {
  for (const ok of ['*', 'a.com', '*.a.com', 'localhost', 'xn--bcher-kva.example', '127.0.0.1', '[::1]', 'a.com.']) {
    assert.equal(hostPatternProblem(ok), null, ok);
  }
});

test('hostPatternProblem names the mistake', () => {
  assert.match(hostPatternProblem('a.*.com') ?? '', /wildcard/);
  assert.match(hostPatternProblem('*a.com') ?? '', /wildcard/);
  assert.match(hostPatternProblem('a.com:80') ?? '', /port/);
  assert.match(hostPatternProblem('a..com') ?? '', /invalid host name/);
  assert.match(hostPatternProblem('-a.com') ?? '', /invalid host name/);
  assert.match(hostPatternProblem('') ?? '', /invalid host name/);
});
