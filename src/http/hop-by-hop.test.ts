import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectionTokens, HOP_BY_HOP, headersWithoutHopByHop } from './hop-by-hop.ts';

test('the list holds the RFC 9110 §7.6.1 fields and the old spellings', () => {
  assert.deepEqual([...HOP_BY_HOP].sort(), ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
});

test('connectionTokens: lowercased, trimmed, empty tokens dropped', () => {
  assert.deepEqual([...connectionTokens(' Keep-Alive ,, X-Secret,close ')], ['keep-alive', 'x-secret', 'close']);
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
  for (const name of HOP_BY_HOP) assert.equal(out.has(name), false, name);
});
