// The head reader on its own: where a head ends however it is split, the byte limit, bare LF,
// and the empty lines a server skips. Pure code, so it runs on every runtime.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { HeadReader, hasBareLf } from './head-reader.ts';

const bytes = (text: string) => Buffer.from(text, 'latin1');
const server = (maxBytes = 1024) => new HeadReader({ maxBytes, server: true });
const client = (maxBytes = 1024) => new HeadReader({ maxBytes, server: false });

describe('head reader', () => {
  test('a head in one read: head text without its empty line, the rest behind it', () => {
    const r = client();
    assert.equal(r.read(bytes('HTTP/1.1 200 OK\r\nx-a: 1\r\n\r\nbody')), 'complete');
    assert.equal(r.head, 'HTTP/1.1 200 OK\r\nx-a: 1');
    assert.equal(r.rest.toString('latin1'), 'body');
    assert.equal(r.pending, false);
  });

  test('every split point in two reads gives the same head and rest', () => {
    const text = 'GET / HTTP/1.1\r\nHost: h\r\n\r\nNEXT';
    for (let at = 1; at < text.length; at++) {
      const r = server();
      const first = r.read(bytes(text.slice(0, at)));
      if (first === 'complete') {
        assert.ok(at >= text.length - 4, `complete early at ${at}`);
        continue;
      }
      assert.equal(first, 'incomplete', `split at ${at}`);
      assert.equal(r.read(bytes(text.slice(at))), 'complete', `split at ${at}`);
      assert.equal(r.head, 'GET / HTTP/1.1\r\nHost: h', `split at ${at}`);
      assert.equal(r.rest.toString('latin1'), 'NEXT', `split at ${at}`);
      assert.equal(r.pending, false);
    }
  });

  test('a server skips empty lines before the request line, also split over reads; a client does not', () => {
    const r = server();
    assert.equal(r.read(bytes('\r\n\r\n')), 'incomplete');
    assert.equal(r.pending, false, 'nothing kept');
    assert.equal(r.read(bytes('\r')), 'incomplete');
    assert.equal(r.read(bytes('\nGET / HTTP/1.1\r\n\r\n')), 'complete');
    assert.equal(r.head, 'GET / HTTP/1.1');
    const c = client();
    assert.equal(c.read(bytes('\r\nHTTP/1.1 200 OK\r\n\r\n')), 'complete');
    assert.equal(c.head, '\r\nHTTP/1.1 200 OK');
  });

  test('limit: the empty line may start at maxBytes, not one byte later; pieces past it fail early', () => {
    const head = (n: number) => `GET / HTTP/1.1\r\nX: ${'a'.repeat(n - 'GET / HTTP/1.1\r\nX: '.length)}`;
    const ok = server(100);
    assert.equal(ok.read(bytes(`${head(100)}\r\n\r\n`)), 'complete');
    assert.equal(ok.head.length, 100);
    assert.equal(server(100).read(bytes(`${head(101)}\r\n\r\n`)), 'too-large');
    const pieces = server(100);
    assert.equal(pieces.read(bytes(head(60))), 'incomplete');
    assert.equal(pieces.read(bytes('a'.repeat(44))), 'too-large');
  });

  test('bare LF: refused at once on a server while the head is incomplete, in the first read or a later one', () => {
    assert.equal(server().read(bytes('GET / HTTP/1.1\nHost: h\r\n')), 'bare-lf');
    const later = server();
    assert.equal(later.read(bytes('GET / HTTP/1.1\r')), 'incomplete');
    assert.equal(later.read(bytes('\nHost: h\r\n')), 'incomplete', 'a CRLF split over reads is no bare LF');
    assert.equal(later.read(bytes('X: 1\nY')), 'bare-lf');
    assert.equal(client().read(bytes('HTTP/1.1 200 OK\nx')), 'incomplete', 'the client leaves it to the field parser');
  });

  test('hasBareLf looks at the byte before the read', () => {
    assert.equal(hasBareLf(bytes('\nabc'), 13), false);
    assert.equal(hasBareLf(bytes('\nabc'), -1), true);
    assert.equal(hasBareLf(bytes('a\r\nb'), -1), false);
    assert.equal(hasBareLf(bytes('a\r\nb\n'), -1), true);
  });

  test('a server notes the start line of an incomplete head once it has ended, in the first read or a later one', () => {
    const one = server();
    assert.equal(one.read(bytes('GET /\r\n')), 'incomplete');
    assert.equal(one.startLine, 'GET /');
    const split = server();
    assert.equal(split.read(bytes('GET /a HT')), 'incomplete');
    assert.equal(split.startLine, null, 'the line has not ended yet');
    assert.equal(split.read(bytes('TP/1.1\r\nHost: h\r\n')), 'incomplete');
    assert.equal(split.startLine, 'GET /a HTTP/1.1');
    assert.equal(split.read(bytes('\r\n')), 'complete');
    assert.equal(split.startLine, null, 'cleared once the head is complete');
    assert.equal(client().read(bytes('HTTP/1.1 200 OK\r\n')), 'incomplete');
  });

  test('the start line noted for an early check skips empty lines split over reads (found by the fuzzer)', () => {
    const reader = new HeadReader({ maxBytes: 1024, server: true });
    assert.equal(reader.read(Buffer.from('\r\n\r')), 'incomplete');
    assert.equal(reader.read(Buffer.from('\nSOURCE /x HTTP/1.1\r\nHost: h')), 'incomplete');
    assert.equal(reader.startLine, 'SOURCE /x HTTP/1.1');
  });
});
