// Field lines on their own: framing fields noted, hop-by-hop fields dropped on request (the list
// from http/hop-by-hop.ts), malformed lines refused. Pure code, so it runs on every runtime.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HOP_BY_HOP } from '../http/hop-by-hop.ts';
import { FIELDS_MALFORMED, FIELDS_OK, FIELDS_TOO_MANY, framingFields, hasToken, MAX_FIELDS, parseFields } from './fields.ts';

const parse = (lines: string, drop = false) => {
  const head = `HTTP/1.1 200 OK\r\n${lines}`;
  const headers = new Headers();
  const fields = framingFields();
  const result = parseFields(head, 17, headers, drop, fields);
  return { result, headers: [...headers], fields };
};

describe('field lines', () => {
  test('values trimmed, repeated framing fields joined', () => {
    const { result, headers, fields } = parse('Host: h\r\nContent-Length: 1\r\ncontent-length:  1 \r\nX-A:\tv\t\r\nExpect: 100-continue');
    assert.equal(result, FIELDS_OK);
    assert.equal(fields.contentLength, '1, 1');
    assert.equal(fields.host, 'h');
    assert.equal(fields.expect, '100-continue');
    assert.deepEqual(headers, [
      ['content-length', '1, 1'],
      ['expect', '100-continue'],
      ['host', 'h'],
      ['x-a', 'v'],
    ]);
  });

  test('dropHopByHop: every field of the shared list and those Connection names go; framing still noted', () => {
    const hop = [...HOP_BY_HOP].map((name) => `${name.toUpperCase()}: x`).join('\r\n');
    const { headers, fields } = parse(`${hop}\r\nConnection: X-Private\r\nX-Private: 1\r\nX-Kept: 2`, true);
    assert.deepEqual(headers, [['x-kept', '2']]);
    assert.equal(fields.transferEncoding, 'x');
    assert.equal(fields.connection, 'x, X-Private');
    const kept = parse('Upgrade: h2c\r\nConnection: upgrade', false);
    assert.deepEqual(kept.headers, [
      ['connection', 'upgrade'],
      ['upgrade', 'h2c'],
    ]);
  });

  test('malformed lines and too many lines', () => {
    for (const line of ['X-A : 1', 'NoColon', ': v', 'X-A: 1\r\n folded', 'X-A: a\x00b', 'X(A): 1'])
      assert.equal(parse(line).result, FIELDS_MALFORMED, JSON.stringify(line));
    assert.equal(parse(Array.from({ length: MAX_FIELDS }, (_, i) => `x-${i}: v`).join('\r\n')).result, FIELDS_OK);
    assert.equal(parse(Array.from({ length: MAX_FIELDS + 1 }, (_, i) => `x-${i}: v`).join('\r\n')).result, FIELDS_TOO_MANY);
  });

  test('hasToken', () => {
    assert.equal(hasToken('Keep-Alive, Upgrade', 'upgrade'), true);
    assert.equal(hasToken('close', 'close'), true);
    assert.equal(hasToken('closed', 'close'), false);
    assert.equal(hasToken(null, 'close'), false);
  });
});
