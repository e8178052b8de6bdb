import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requestTarget } from './guard.ts';

test('origin-form targets pass through raw', () => {
  assert.equal(requestTarget('//a%2Fb/../c?q=%7e', 'a.com', 'a.com'), '//a%2Fb/../c?q=%7e');
});

test('a URL built from Host (no request line) gives its path and query', () => {
  assert.equal(requestTarget('http://a.com//x?y', 'a.com', 'a.com'), '//x?y');
});

test('absolute-form: same authority is fine, another is refused', () => {
  assert.equal(requestTarget('http://A.com:80/p?q', 'a.com', 'a.com'), '/p?q');
  assert.equal(requestTarget('http://a.com', 'a.com', 'a.com'), '/');
  assert.equal(requestTarget('http://a.com?x', 'a.com', 'a.com'), '/?x');
  assert.equal(requestTarget('http://other.com/p', 'a.com', 'a.com'), null);
  assert.equal(requestTarget('evil://a.com/p', 'a.com', 'a.com'), null);
  assert.equal(requestTarget('*', 'a.com', 'a.com'), null);
});

test('URLs built from Host (lowercased, default port dropped) still match', () => {
  assert.equal(requestTarget('http://a.com./p', 'A.com.:80', 'a.com'), '/p');
});
