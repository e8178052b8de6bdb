// The chunked request-body decoder on its own: exact data out, exact leftovers, strict errors.
// Pure code, so it runs on every runtime.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { ChunkedDecoder, ChunkedError } from './chunked.ts';

interface Decoded {
  data: string;
  /** What the decoder handed back after the last piece: a partial line, or what follows the body. */
  rest: string;
  done: boolean;
  /** How many times onData was called. */
  calls: number;
}

/** Feeds the pieces in turn the way the server does: what is handed back is prepended to the next. */
function decode(pieces: (string | Buffer)[], decoder = new ChunkedDecoder()): Decoded {
  const out: Buffer[] = [];
  let carry: Buffer = Buffer.alloc(0);
  for (const piece of pieces) {
    const input = Buffer.concat([carry, typeof piece === 'string' ? Buffer.from(piece, 'latin1') : piece]);
    carry = decoder.decode(input, (data) => out.push(Buffer.from(data)));
  }
  return { data: Buffer.concat(out).toString('latin1'), rest: carry.toString('latin1'), done: decoder.done, calls: out.length };
}

const BODY = '5;name=value;q="a;b"\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0;last\r\nx-sum: 42\r\nx-other: y\r\n\r\n';
const DATA = 'helloabcdefghijklmnopqrstuvwxyz';

const throwsChunked = (pieces: (string | Buffer)[], message?: RegExp) =>
  assert.throws(
    () => decode(pieces),
    (error: unknown) => {
      assert.ok(error instanceof ChunkedError, `expected a ChunkedError, got ${String(error)}`);
      assert.equal(error.name, 'ChunkedError');
      if (message !== undefined) assert.match(error.message, message);
      return true;
    },
  );

describe('chunked decoder', () => {
  test('whole body in one buffer: data exact, done, nothing left, data passed as views of the input', () => {
    const input = Buffer.from('5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n', 'latin1');
    const views: Buffer[] = [];
    const decoder = new ChunkedDecoder();
    const rest = decoder.decode(input, (data) => views.push(data));
    assert.equal(decoder.done, true);
    assert.equal(rest.byteLength, 0);
    assert.deepEqual(
      views.map((v) => v.toString('latin1')),
      ['hello', ' world'],
    );
    for (const view of views) assert.equal(view.buffer, input.buffer); // no copies
  });

  test('byte by byte: same data, done only after the very last byte', () => {
    const decoder = new ChunkedDecoder();
    const out: string[] = [];
    let carry: Buffer = Buffer.alloc(0);
    for (let i = 0; i < BODY.length; i++) {
      assert.equal(decoder.done, false, `done too early, before byte ${i}`);
      carry = decoder.decode(Buffer.concat([carry, Buffer.from(BODY[i] as string, 'latin1')]), (data) => out.push(data.toString('latin1')));
    }
    assert.equal(decoder.done, true);
    assert.equal(carry.byteLength, 0);
    assert.equal(out.join(''), DATA);
  });

  test('every split point in two pieces gives the same result', () => {
    for (let i = 0; i <= BODY.length; i++) {
      const got = decode([BODY.slice(0, i), BODY.slice(i)]);
      assert.deepEqual({ data: got.data, rest: got.rest, done: got.done }, { data: DATA, rest: '', done: true }, `split at ${i}`);
    }
  });

  test('hex sizes: upper and lower case, leading zeros', () => {
    const data = 'x'.repeat(0xab);
    assert.equal(decode([`aB\r\n${data}\r\n00005\r\nhello\r\n000\r\n\r\n`]).data, `${data}hello`);
    // 13 hex digits is the largest size taken (2^52 - 1 fits a double exactly): it waits for data.
    const big = decode(['fffffffffffff\r\nabc']);
    assert.deepEqual(big, { data: 'abc', rest: '', done: false, calls: 1 });
  });

  test('chunk extensions are skipped, whitespace before them tolerated', () => {
    assert.equal(decode(['3;a=1;b="x;y"\r\nabc\r\n2 ;c\r\nde\r\n1\t;d\r\nf\r\n0;end=1\r\n\r\n']).data, 'abcdef');
  });

  test('trailers are read and dropped; the body ends at the empty line after them', () => {
    const got = decode(['1\r\na\r\n0\r\nx-sum: 42\r\n', 'x-more: 1\r\n']);
    assert.deepEqual(got, { data: 'a', rest: '', done: false, calls: 1 });
    assert.deepEqual(decode(['1\r\na\r\n0\r\nx-sum: 42\r\n', 'x-more: 1\r\n', '\r\n']), { data: 'a', rest: '', done: true, calls: 1 });
  });

  test('not done until the final CRLF', () => {
    assert.equal(decode(['0\r\n']).done, false);
    assert.equal(decode(['0\r\n\r']).done, false);
    assert.equal(decode(['0\r\n\r', '\n']).done, true);
    // A partial size line is handed back for the next read.
    assert.deepEqual(decode(['5\r\nhello\r\n1']), { data: 'hello', rest: '1', done: false, calls: 1 });
  });

  test('bytes after the last chunk are returned untouched (a pipelined request)', () => {
    const next = 'GET /next HTTP/1.1\r\nHost: h\r\n\r\n';
    assert.deepEqual(decode([`2\r\nab\r\n0\r\n\r\n${next}`]), { data: 'ab', rest: next, done: true, calls: 1 });
    assert.deepEqual(decode([`2\r\nab\r\n0\r\nx-t: 1\r\n\r\n${next}`]), { data: 'ab', rest: next, done: true, calls: 1 });
    // Once done, later input is not decoded at all.
    const decoder = new ChunkedDecoder();
    decoder.decode(Buffer.from('0\r\n\r\n'), () => assert.fail('no data expected'));
    const more = Buffer.from('5\r\nhello\r\n');
    assert.equal(
      decoder.decode(more, () => assert.fail('decoded after done')),
      more,
    );
  });

  test('invalid chunk sizes throw ChunkedError', () => {
    for (const line of ['zz', '', '-1', '+1', '0x5', ' 5', '5 ', '5\x00', '1'.repeat(14), '0000000000000005', 'g']) {
      throwsChunked([`${line}\r\nhello\r\n0\r\n\r\n`], /invalid chunk size/);
    }
    // A bare LF does not end the size line: it becomes part of it and the size is invalid.
    throwsChunked(['5\nhello\r\n0\r\n\r\n'], /invalid chunk size/);
    // Split: the error comes when the line is complete.
    throwsChunked(['z', 'z', '\r', '\n']);
  });

  test('chunk data not followed by CRLF throws', () => {
    throwsChunked(['5\r\nhelloX\r\n0\r\n\r\n'], /CRLF/);
    throwsChunked(['5\r\nhello\n0\r\n\r\n'], /CRLF/);
    throwsChunked(['5\r\nhello\rX0\r\n\r\n'], /CRLF/);
    throwsChunked(['5\r\nhello', '\r', 'X'], /CRLF/);
    // A too-long chunk is the same thing: more data than the size said.
    throwsChunked(['3\r\nhello\r\n0\r\n\r\n'], /CRLF/);
  });

  test('overlong size line throws, whether or not its CRLF has arrived', () => {
    throwsChunked([`1;${'e'.repeat(5000)}\r\na\r\n0\r\n\r\n`], /too long/);
    throwsChunked([`1;${'e'.repeat(4100)}`], /too long/);
    // In small pieces, so the bound holds for what is carried from read to read.
    throwsChunked(['1;', ...Array.from({ length: 50 }, () => 'e'.repeat(100))], /too long/);
    // Up to the limit is fine.
    assert.equal(decode([`1;${'e'.repeat(4000)}\r\na\r\n0\r\n\r\n`]).data, 'a');
  });

  test('a control character in a chunk extension throws (a bare CR or LF is a line end to some parsers)', () => {
    for (const ext of [';a\rb', ';a\nb', ';a=\x00', ';a=b\x7f']) throwsChunked([`5${ext}\r\nhello\r\n0\r\n\r\n`], /chunk extension/);
    assert.equal(decode(['5;a=b;c="d e"\t\r\nhello\r\n0\r\n\r\n']).data, 'hello');
  });

  test('a trailer line that is not a field line throws (a pipelined request must not pass as trailers)', () => {
    for (const line of ['GET /smuggled HTTP/1.1', 'x: y\nGET /smuggled HTTP/1.1', ' x: y', 'x : y', 'x: a\rb', ': y', 'x: \x00']) {
      throwsChunked([`0\r\n${line}\r\n\r\n`], /trailer/);
    }
    assert.equal(decode(['0\r\nx-t: 1\r\ny:\r\n\r\n']).done, true);
  });

  test('overlong trailers throw', () => {
    const field = `x-pad: ${'b'.repeat(1000)}\r\n`;
    throwsChunked([`0\r\n${field.repeat(70)}\r\n`], /trailer/);
    throwsChunked(['0\r\n', ...Array.from({ length: 70 }, () => field)], /trailer/);
    // One endless trailer line without its CRLF.
    throwsChunked(['0\r\n', `x-pad: ${'b'.repeat(5000)}`], /too long/);
    assert.equal(decode([`0\r\n${field.repeat(60)}\r\n`]).done, true);
  });
});
