// The body decoder on its own, for each framing: bytes out, what follows handed back, the end
// of a close-delimited body. Pure code, so it runs on every runtime.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { BODY_QUEUE } from '../http/buffering.ts';
import { BodyDecoder } from './body-decoder.ts';
import { ChunkedError } from './chunked.ts';
import { BODY_CHUNKED, BODY_LENGTH, BODY_NONE, BODY_UNTIL_CLOSE } from './framing.ts';

const bytes = (text: string) => Buffer.from(text, 'latin1');

/** Feeds pieces as a socket glue does (what comes back is prepended to the next piece). */
function run(decoder: BodyDecoder, pieces: string[]): { data: string; rest: string } {
  const out: string[] = [];
  let carry: Buffer = Buffer.alloc(0);
  for (const piece of pieces) carry = decoder.decode(Buffer.concat([carry, bytes(piece)]), (d) => out.push(d.toString('latin1')));
  return { data: out.join(''), rest: carry.toString('latin1') };
}

describe('body decoder', () => {
  test('Content-Length: exact bytes over several reads, the rest handed back', () => {
    const d = new BodyDecoder();
    d.start(BODY_LENGTH, 5);
    assert.equal(d.done, false);
    assert.deepEqual(run(d, ['he', 'l', 'loGET /']), { data: 'hello', rest: 'GET /' });
    assert.equal(d.done, true);
    assert.equal(d.end(), true);
  });

  test('Content-Length cut short: end() says the body is incomplete', () => {
    const d = new BodyDecoder();
    d.start(BODY_LENGTH, 5);
    run(d, ['he']);
    assert.equal(d.end(), false);
  });

  test('chunked: data joined, a partial size line handed back, restartable for the next body', () => {
    const d = new BodyDecoder();
    d.start(BODY_CHUNKED);
    assert.deepEqual(run(d, ['5\r\nhel', 'lo\r\n1', '\r\n!\r\n0\r\n\r\nNEXT']), { data: 'hello!', rest: 'NEXT' });
    assert.equal(d.done, true);
    d.start(BODY_CHUNKED);
    assert.equal(d.done, false, 'a restarted decoder starts a new body');
    assert.deepEqual(run(d, ['2\r\nok\r\n0\r\n\r\n']), { data: 'ok', rest: '' });
    d.start(BODY_CHUNKED);
    assert.throws(() => run(d, ['zz\r\n']), ChunkedError);
  });

  test('close-delimited: everything is body until end()', () => {
    const d = new BodyDecoder();
    d.start(BODY_UNTIL_CLOSE);
    assert.deepEqual(run(d, ['a', 'b\r\n\r\nc']), { data: 'ab\r\n\r\nc', rest: '' });
    assert.equal(d.done, false);
    assert.equal(d.end(), true);
    assert.equal(d.done, true);
  });

  test('no body: done at once, input handed back untouched', () => {
    const d = new BodyDecoder();
    d.start(BODY_NONE);
    assert.equal(d.done, true);
    assert.deepEqual(run(d, ['GET']), { data: '', rest: 'GET' });
  });

  test('the queueing strategy counts a per-chunk overhead', () => {
    assert.equal(BODY_QUEUE.highWaterMark, 64 * 1024);
    assert.equal(BODY_QUEUE.size?.(new Uint8Array(10)), 266);
  });
});
