// The chunk encoder on its own: the bytes RFC 9112 §7.1 asks for, decodable by our decoder.
// Pure code, so it runs on every runtime.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { encodeChunk, LAST_CHUNK } from './chunk-encoder.ts';
import { ChunkedDecoder } from './chunked.ts';

describe('chunk encoder', () => {
  test('hex size, CRLF, data, CRLF; last chunk', () => {
    assert.equal(encodeChunk(Buffer.from('hello')).toString('latin1'), '5\r\nhello\r\n');
    assert.equal(encodeChunk(new Uint8Array(300).fill(97)).toString('latin1'), `12c\r\n${'a'.repeat(300)}\r\n`);
    assert.equal(LAST_CHUNK.toString('latin1'), '0\r\n\r\n');
  });

  test('round trip through the decoder', () => {
    const parts = [Buffer.from('a'), Buffer.alloc(4096, 1), Buffer.from('end')];
    const wire = Buffer.concat([...parts.map(encodeChunk), LAST_CHUNK]);
    const out: Buffer[] = [];
    const decoder = new ChunkedDecoder();
    assert.equal(decoder.decode(wire, (d) => out.push(Buffer.from(d))).byteLength, 0);
    assert.ok(decoder.done);
    assert.ok(Buffer.concat(out).equals(Buffer.concat(parts)));
  });
});
