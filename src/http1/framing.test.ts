// Body framing decisions on their own (RFC 9112 §6.3), for requests and responses. Pure code,
// so it runs on every runtime.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type FramingFields, framingFields } from './fields.ts';
import { BODY_CHUNKED, BODY_LENGTH, BODY_NONE, BODY_UNTIL_CLOSE, INVALID_CONTENT_LENGTH, requestFraming, responseFraming } from './framing.ts';

const fields = (set: Partial<FramingFields>): FramingFields => ({ ...framingFields(), ...set });

describe('request framing', () => {
  test('no framing fields, zero lengths: no body, keep-alive', () => {
    for (const f of [{}, { contentLength: '0' }, { contentLength: '000' }]) {
      assert.deepEqual(requestFraming(fields(f), false), { kind: BODY_NONE, length: 0, close: false }, JSON.stringify(f));
    }
  });

  test('Content-Length and chunked', () => {
    assert.deepEqual(requestFraming(fields({ contentLength: '42' }), false), { kind: BODY_LENGTH, length: 42, close: false });
    assert.deepEqual(requestFraming(fields({ transferEncoding: ' Chunked ' }), false), { kind: BODY_CHUNKED, length: 0, close: false });
    // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is decoded but the connection closes after it.
    assert.deepEqual(requestFraming(fields({ transferEncoding: 'chunked' }), true), { kind: BODY_CHUNKED, length: 0, close: true });
  });

  test('what cannot be framed: no body and close', () => {
    const bad: Partial<FramingFields>[] = [
      { contentLength: '5, 5' },
      { contentLength: '+5' },
      { contentLength: '-1' },
      { contentLength: '' },
      { contentLength: '0x5' },
      { contentLength: '5', transferEncoding: 'chunked' },
      { transferEncoding: 'gzip, chunked' },
      { transferEncoding: 'chunked, chunked' },
      { transferEncoding: 'identity' },
    ];
    for (const f of bad) assert.deepEqual(requestFraming(fields(f), false), { kind: BODY_NONE, length: 0, close: true }, JSON.stringify(f));
  });
});

describe('response framing', () => {
  test('Content-Length: one value, or a list of equal ones folded', () => {
    assert.deepEqual(responseFraming('GET', 200, false, fields({ contentLength: '5' })), { kind: BODY_LENGTH, length: 5, contentLength: '5', keepAlive: true });
    assert.deepEqual(responseFraming('GET', 200, false, fields({ contentLength: '5, 5' })), {
      kind: BODY_LENGTH,
      length: 5,
      contentLength: '5',
      keepAlive: true,
    });
    for (const cl of ['5, 6', '-5', '', 'x']) assert.equal(responseFraming('GET', 200, false, fields({ contentLength: cl })), INVALID_CONTENT_LENGTH, cl);
  });

  test('chunked; with Content-Length or in 1.0 it is not reused and the length does not travel', () => {
    assert.deepEqual(responseFraming('GET', 200, false, fields({ transferEncoding: 'chunked' })), {
      kind: BODY_CHUNKED,
      length: 0,
      contentLength: null,
      keepAlive: true,
    });
    assert.deepEqual(responseFraming('GET', 200, false, fields({ transferEncoding: 'chunked', contentLength: '3' })), {
      kind: BODY_CHUNKED,
      length: 0,
      contentLength: null,
      keepAlive: false,
    });
    assert.deepEqual(responseFraming('GET', 200, true, fields({ transferEncoding: 'chunked', connection: 'keep-alive' })), {
      kind: BODY_CHUNKED,
      length: 0,
      contentLength: null,
      keepAlive: false,
    });
    for (const te of ['gzip', 'gzip, chunked', 'chunked, gzip'])
      assert.equal(responseFraming('GET', 200, false, fields({ transferEncoding: te })), `unsupported transfer coding "${te}"`);
  });

  test('HEAD, 204 and 304 end at the head, their Content-Length kept; 205 does not', () => {
    for (const [method, status] of [
      ['HEAD', 200],
      ['GET', 204],
      ['GET', 304],
    ] as const) {
      assert.deepEqual(responseFraming(method, status, false, fields({ contentLength: '10', transferEncoding: 'chunked' })), {
        kind: BODY_NONE,
        length: 0,
        contentLength: '10',
        keepAlive: true,
      });
    }
    assert.equal((responseFraming('GET', 205, false, fields({ contentLength: '3' })) as { kind: number }).kind, BODY_LENGTH);
  });

  test('no length: close-delimited and never reused; keep-alive by version and Connection', () => {
    assert.deepEqual(responseFraming('GET', 200, false, fields({})), { kind: BODY_UNTIL_CLOSE, length: 0, contentLength: null, keepAlive: false });
    const keep = (http10: boolean, connection: string | null) =>
      (responseFraming('GET', 200, http10, fields({ contentLength: '1', connection })) as { keepAlive: boolean }).keepAlive;
    assert.equal(keep(false, null), true);
    assert.equal(keep(false, 'Close'), false);
    assert.equal(keep(true, null), false);
    assert.equal(keep(true, 'Keep-Alive'), true);
  });
});
