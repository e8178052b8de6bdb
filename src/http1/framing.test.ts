// Body framing decisions on their own (RFC 9112 §6.3), for requests and responses. Pure code,
// so it runs on every runtime.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type FramingFields, framingFields } from './fields.ts';
import {
  BAD_LENGTH,
  BODY_CHUNKED,
  BODY_LENGTH,
  BODY_NONE,
  BODY_UNTIL_CLOSE,
  BOTH_FRAMINGS,
  CHUNKED_NOT_LAST,
  CHUNKED_TWICE,
  type FramingRefusal,
  INVALID_CONTENT_LENGTH,
  isRefusal,
  requestFraming,
  responseFraming,
  TE_IN_HTTP10,
  UNKNOWN_CODING,
} from './framing.ts';

const fields = (set: Partial<FramingFields>): FramingFields => ({ ...framingFields(), ...set });

describe('request framing', () => {
  test('no framing fields, zero lengths: no body', () => {
    for (const f of [{}, { contentLength: '0' }, { contentLength: '000' }]) {
      assert.deepEqual(requestFraming(fields(f), false), { kind: BODY_NONE, length: 0 }, JSON.stringify(f));
    }
  });

  test('Content-Length and chunked', () => {
    assert.deepEqual(requestFraming(fields({ contentLength: '42' }), false), { kind: BODY_LENGTH, length: 42 });
    assert.deepEqual(requestFraming(fields({ contentLength: '042' }), false), { kind: BODY_LENGTH, length: 42 });
    assert.deepEqual(requestFraming(fields({ transferEncoding: ' Chunked ' }), false), { kind: BODY_CHUNKED, length: 0 });
  });

  test('framing in doubt is refused, never guessed at', () => {
    const cases: [Partial<FramingFields>, boolean, FramingRefusal][] = [
      [{ contentLength: '5, 5' }, false, BAD_LENGTH],
      [{ contentLength: '5, 6' }, false, BAD_LENGTH],
      [{ contentLength: '+5' }, false, BAD_LENGTH],
      [{ contentLength: '-1' }, false, BAD_LENGTH],
      [{ contentLength: '' }, false, BAD_LENGTH],
      [{ contentLength: '0x5' }, false, BAD_LENGTH],
      [{ contentLength: '5 5' }, false, BAD_LENGTH],
      [{ contentLength: '99999999999999999999' }, false, BAD_LENGTH],
      [{ contentLength: '5', transferEncoding: 'chunked' }, false, BOTH_FRAMINGS],
      [{ contentLength: '0', transferEncoding: 'identity' }, false, BOTH_FRAMINGS],
      [{ transferEncoding: 'chunked' }, true, TE_IN_HTTP10],
      [{ transferEncoding: 'gzip, chunked' }, false, UNKNOWN_CODING],
      [{ transferEncoding: 'chunked, chunked' }, false, CHUNKED_TWICE],
      [{ transferEncoding: 'chunked, gzip, chunked' }, false, CHUNKED_TWICE],
      [{ transferEncoding: 'chunked, gzip' }, false, CHUNKED_NOT_LAST],
      [{ transferEncoding: 'identity' }, false, CHUNKED_NOT_LAST],
      [{ transferEncoding: '' }, false, CHUNKED_NOT_LAST],
      [{ transferEncoding: 'chunked,' }, false, CHUNKED_NOT_LAST],
    ];
    for (const [f, http10, expected] of cases) {
      const got = requestFraming(fields(f), http10);
      assert.ok(isRefusal(got), JSON.stringify(f));
      assert.equal(got, expected, JSON.stringify(f));
    }
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
