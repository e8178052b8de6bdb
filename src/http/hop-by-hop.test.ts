import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectionTokens, HOP_BY_HOP, headersWithoutHopByHop, withoutHopByHop } from './hop-by-hop.ts';

test('the list holds the RFC 9110 §7.6.1 fields and the old spellings', () => {
  assert.deepEqual([...HOP_BY_HOP].sort(), ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
});

test('connectionTokens: lowercased, trimmed, empty tokens dropped', () => {
  assert.deepEqual([...connectionTokens(' Keep-Alive ,, X-Secret,close ')], ['keep-alive', 'x-secret', 'close']);
});

test('withoutHopByHop: untouched when clean, filtered copy otherwise, cookies separate', () => {
  const clean = new Headers({ 'content-type': 'text/plain' });
  assert.equal(withoutHopByHop(clean), clean);
  const dirty = new Headers([
    ['connection', 'x-private'],
    ['x-private', '1'],
    ['keep-alive', 'timeout=5'],
    ['set-cookie', 'a=1'],
    ['set-cookie', 'b=2'],
    ['content-length', '3'],
  ]);
  const out = withoutHopByHop(dirty);
  assert.notEqual(out, dirty);
  assert.deepEqual(out.getSetCookie(), ['a=1', 'b=2']);
  assert.equal(out.get('x-private'), null);
  assert.equal(out.get('keep-alive'), null);
  assert.equal(out.get('connection'), null);
  assert.equal(out.get('content-length'), '3');
  // A hop-by-hop field without Connection is found too.
  assert.equal(withoutHopByHop(new Headers({ 'transfer-encoding': 'chunked', a: '1' })).has('transfer-encoding'), false);
});

test('headersWithoutHopByHop: filters while copying, honours every Connection line', () => {
  const out = headersWithoutHopByHop({
    connection: ['keep-alive, x-a', 'x-b'],
    'x-a': '1',
    'x-b': '2',
    'keep-alive': 'timeout=5',
    'transfer-encoding': 'chunked',
    'set-cookie': ['a=1', 'b=2'],
    'x-keep': 'k',
    'x-absent': undefined,
  });
  assert.deepEqual([...new Set(out.keys())].sort(), ['set-cookie', 'x-keep']);
  assert.deepEqual(out.getSetCookie(), ['a=1', 'b=2']);
  assert.equal(withoutHopByHop(out), out);
});
