import assert from 'node:assert/strict';
import { test } from 'node:test';
import { removeDotSegments, routingTarget } from './path.ts';

test('removeDotSegments (RFC 3986 §5.2.4 examples and edges)', () => {
  assert.equal(removeDotSegments('/a/b/c/./../../g'), '/a/g');
  assert.equal(removeDotSegments('/a/../b'), '/b');
  assert.equal(removeDotSegments('/api/../admin'), '/admin');
  assert.equal(removeDotSegments('/../../x'), '/x');
  assert.equal(removeDotSegments('/a/.'), '/a/');
  assert.equal(removeDotSegments('/a/b/..'), '/a/');
  assert.equal(removeDotSegments('//x'), '//x');
  assert.equal(removeDotSegments('/'), '/');
});

test('routingTarget decodes unreserved escapes only, keeps the query, leaves plain targets alone', () => {
  const plain = '/api/x?q=1';
  assert.equal(routingTarget(plain), plain);
  assert.equal(routingTarget('/%61pi/x'), '/api/x');
  assert.equal(routingTarget('/api/%2e%2E/admin?x=/../y'), '/admin?x=/../y');
  assert.equal(routingTarget('/a%2Fb'), '/a%2Fb');
  assert.equal(routingTarget('/a%20b/./c'), '/a%20b/c');
  assert.equal(routingTarget('/x.y/..z'), '/x.y/..z');
});
