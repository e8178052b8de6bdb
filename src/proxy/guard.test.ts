import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requestTarget } from './guard.ts';

test('origin-form targets pass through raw', () => {
  assert.equal(requestTarget('http://a.com/x', '//a%2Fb/../c?q=%7e', 'a.com', 'a.com'), '//a%2Fb/../c?q=%7e');
  assert.equal(requestTarget('http://a.com//x?y', undefined, 'a.com', 'a.com'), '//x?y');
});

test('absolute-form: same authority is fine, another is refused', () => {
  assert.equal(requestTarget('http://a.com/p', 'http://A.com:80/p?q', 'a.com', 'a.com'), '/p?q');
  assert.equal(requestTarget('http://a.com/p', 'http://a.com', 'a.com', 'a.com'), '/');
  assert.equal(requestTarget('http://a.com/p', 'http://a.com?x', 'a.com', 'a.com'), '/?x');
  assert.equal(requestTarget('http://a.com/p', 'http://other.com/p', 'a.com', 'a.com'), null);
  assert.equal(requestTarget('http://other.com/p', undefined, 'a.com', 'a.com'), null);
  assert.equal(requestTarget('http://a.com/p', '*', 'a.com', 'a.com'), null);
});

test('URLs built from Host (lowercased, default port dropped) still match', () => {
  assert.equal(requestTarget('http://a.com./p', undefined, 'A.com.:80', 'a.com'), '/p');
});
