// The head buffer on its own: null until the empty line is complete, however the head is split,
// then every byte buffered (what follows the head included), and empty again. Pure code, so it
// runs on every runtime.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { HeadBuffer } from './head-buffer.ts';

const HEAD = 'HTTP/1.1 200 OK\r\nx-a: 1\r\n\r\n';
const bytes = (text: string) => Buffer.from(text, 'latin1');

/** Pushes the pieces in turn; returns what each push gave back (latin1, or null). */
function pushAll(buffer: HeadBuffer, pieces: string[]): (string | null)[] {
  return pieces.map((piece) => {
    const out = buffer.push(bytes(piece));
    return out === null ? null : out.toString('latin1');
  });
}

/** The head cut at `cuts` (sorted offsets), as pieces; empty pieces are kept. */
const cut = (text: string, cuts: number[]) => [0, ...cuts].map((from, i) => text.slice(from, i < cuts.length ? cuts[i] : text.length));

describe('head buffer', () => {
  test('a head in one piece comes back at once, the same bytes; the buffer is empty after', () => {
    const buffer = new HeadBuffer();
    const piece = bytes(HEAD);
    const out = buffer.push(piece);
    assert.ok(out !== null);
    assert.equal(out.toString('latin1'), HEAD);
    assert.equal(buffer.size, 0);
    assert.equal(buffer.lastByte, -1);
  });

  test('a fresh buffer is empty', () => {
    const buffer = new HeadBuffer();
    assert.equal(buffer.size, 0);
    assert.equal(buffer.lastByte, -1);
  });

  test('every split point in two pieces: null first, then the whole head', () => {
    for (let at = 0; at <= HEAD.length; at++) {
      const buffer = new HeadBuffer();
      const [first, second] = cut(HEAD, [at]) as [string, string];
      const out = pushAll(buffer, [first, second]);
      if (at === HEAD.length) {
        // The first piece holds the whole head already.
        assert.deepEqual(out, [HEAD, null], `split at ${at}`);
        assert.equal(buffer.size, 0, `split at ${at}: the empty second piece is not kept`);
        continue;
      }
      assert.deepEqual(out, [null, HEAD], `split at ${at}`);
      assert.equal(buffer.size, 0, `split at ${at}: empty after`);
      assert.equal(buffer.lastByte, -1, `split at ${at}: no last byte after`);
    }
  });

  test('every pair of split points in three pieces', () => {
    for (let a = 0; a <= HEAD.length; a++) {
      for (let b = a; b <= HEAD.length; b++) {
        const buffer = new HeadBuffer();
        const pieces = cut(HEAD, [a, b]);
        const out = pushAll(buffer, pieces);
        // The head comes back from the push that completes CRLFCRLF, and from no other.
        const completing = b === HEAD.length ? (a === HEAD.length ? 0 : 1) : 2;
        assert.deepEqual(
          out,
          out.map((_, i) => (i === completing ? HEAD : null)),
          `cuts ${a}, ${b}`,
        );
        assert.equal(buffer.size, 0, `cuts ${a}, ${b}`);
      }
    }
  });

  test('byte by byte: null until the last byte; size and lastByte follow every push', () => {
    const buffer = new HeadBuffer();
    for (let i = 0; i < HEAD.length - 1; i++) {
      assert.equal(buffer.push(bytes(HEAD[i] as string)), null, `byte ${i}`);
      assert.equal(buffer.size, i + 1);
      assert.equal(buffer.lastByte, HEAD.charCodeAt(i), `lastByte after byte ${i}`);
    }
    assert.equal(buffer.push(bytes('\n'))?.toString('latin1'), HEAD);
    assert.equal(buffer.size, 0);
    assert.equal(buffer.lastByte, -1);
  });

  test('CRLFCRLF split across pieces in every way, with other bytes around it', () => {
    for (const pieces of [
      ['x\r', '\n\r\n'],
      ['x\r\n', '\r\n'],
      ['x\r\n\r', '\n'],
      ['x\r', '\n', '\r', '\n'],
      ['x', '\r', '\n\r', '\ny'],
      ['x\r', '', '\n', '', '\r\n'],
    ]) {
      const buffer = new HeadBuffer();
      // Each time the last piece completes the end: only it returns, and with every byte.
      const expected: (string | null)[] = pieces.map(() => null);
      expected[pieces.length - 1] = pieces.join('');
      assert.deepEqual(pushAll(buffer, pieces), expected, JSON.stringify(pieces));
      assert.equal(buffer.size, 0);
    }
  });

  test('near misses are not an end: CR LF CR, LF LF, CR CR LF LF, LF CR LF, CRLF LF CRLF', () => {
    for (const pieces of [
      ['a\r\n\r', 'b'],
      ['a\n', '\n'],
      ['a\r\r', '\n\n'],
      ['a\n\r', '\n'],
      ['a\r\n', '\n\r\n'],
      ['\r\n', 'x', '\r\n'],
    ]) {
      const buffer = new HeadBuffer();
      assert.deepEqual(
        pushAll(buffer, pieces),
        pieces.map(() => null),
        JSON.stringify(pieces),
      );
      assert.equal(buffer.size, pieces.join('').length);
    }
  });

  test('bytes after the head come back with it: a body start, the next head, in the completing piece', () => {
    const buffer = new HeadBuffer();
    const after = 'hello\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n';
    const out = pushAll(buffer, ['HTTP/1.1 200 OK\r\ncontent-length: 5\r', `\n\r\n${after}`]);
    assert.deepEqual(out, [null, `HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n${after}`]);
    assert.equal(buffer.size, 0);
  });

  test('size counts bytes, not characters; lastByte is the last byte of the last piece', () => {
    const buffer = new HeadBuffer();
    buffer.push(Buffer.from([0x48, 0xe9, 0xff]));
    assert.equal(buffer.size, 3);
    assert.equal(buffer.lastByte, 0xff);
    buffer.push(Buffer.from('é', 'utf8')); // two bytes
    assert.equal(buffer.size, 5);
    assert.equal(buffer.lastByte, 0xa9);
    buffer.push(Buffer.alloc(0));
    assert.equal(buffer.size, 5);
    assert.equal(buffer.lastByte, 0xa9, 'an empty piece changes nothing');
    buffer.push(Buffer.from('\r\n'));
    assert.equal(buffer.lastByte, 10);
    const out = buffer.push(Buffer.from('\r\n'));
    assert.deepEqual(out, Buffer.from([0x48, 0xe9, 0xff, 0xc3, 0xa9, 13, 10, 13, 10]));
  });

  test('reusable: several heads in turn, each split differently, each returned alone', () => {
    const buffer = new HeadBuffer();
    const heads = ['GET /1 HTTP/1.1\r\nHost: a\r\n\r\n', 'GET /2 HTTP/1.1\r\n\r\n', 'HTTP/1.1 100 Continue\r\n\r\n'];
    for (const [k, head] of heads.entries()) {
      for (let at = 1; at < head.length; at += k + 3) {
        assert.equal(buffer.push(bytes(head.slice(0, at))), null);
        assert.equal(buffer.push(bytes(head.slice(at)))?.toString('latin1'), head, `head ${k} split at ${at}`);
        assert.equal(buffer.size, 0);
        assert.equal(buffer.lastByte, -1);
      }
    }
  });

  test('a long head in small pieces: null all the way, size exact, then all of it', () => {
    const head = `HTTP/1.1 200 OK\r\n${Array.from({ length: 200 }, (_, i) => `x-h${i}: ${'v'.repeat(i % 50)}\r\n`).join('')}\r\nbody`;
    const buffer = new HeadBuffer();
    let size = 0;
    let got: Buffer | null = null;
    for (let at = 0; at < head.length; at += 7) {
      const piece = bytes(head.slice(at, at + 7));
      const out = buffer.push(piece);
      size += piece.byteLength;
      if (out !== null) {
        got = out;
        break;
      }
      assert.equal(buffer.size, size);
    }
    assert.ok(got !== null);
    // The piece that completed the head may carry body bytes; all of them come back.
    assert.equal(got.toString('latin1'), head.slice(0, size));
    assert.ok(size >= head.indexOf('\r\n\r\n') + 4 && size < head.indexOf('\r\n\r\n') + 4 + 7);
  });
});
