import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fetchKeepsRequest } from './bun.ts';

const browserish = new Headers({ 'user-agent': 'x', accept: '*/*' });

test('plain targets from clients with User-Agent and Accept may use fetch', () => {
  for (const t of ['/', '/a/b?c=d&e=%7E', '/a%2Fb', '/x.y/z', '/a/b/?q=../x', '/~user/.well-known/x']) assert.equal(fetchKeepsRequest(t, browserish), true, t);
});

test('anything fetch would alter goes the exact way', () => {
  for (const t of ['//x', '/a//b', '/a/../b', '/a/./b', '/a/..', '/a/%2e%2E/b', "/q?x='", '/a b', '/a"b', '/ä', '/a\\b', '/{x}'])
    assert.equal(fetchKeepsRequest(t, browserish), false, t);
  assert.equal(fetchKeepsRequest('/', new Headers({ accept: '*/*' })), false);
  assert.equal(fetchKeepsRequest('/', new Headers({ 'user-agent': 'x' })), false);
});
