// Response heads our server writes, on their own: status line and reason rule, framing fields
// decided here, Date, the 101 head. Pure code over Response objects, so it runs on every runtime.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { closingAnswer, endOfHead, responseHead, statusLine, switchingHead } from './response-head.ts';

const DATE = 'date: Thu, 01 Jan 2026 00:00:00 GMT\r\n';

describe('response head', () => {
  test('status line: the app reason when plain, else the standard one', () => {
    assert.equal(statusLine(201, 'Made It'), 'HTTP/1.1 201 Made It\r\n');
    assert.equal(statusLine(404, ''), 'HTTP/1.1 404 Not Found\r\n');
    assert.equal(statusLine(200, 'x\r\nset-cookie: a=b'), 'HTTP/1.1 200 OK\r\n');
    assert.equal(statusLine(599, ''), 'HTTP/1.1 599 \r\n');
  });

  test('a length-framed body: the app fields as given, Date added, framing fields dropped', () => {
    const res = new Response(new TextEncoder().encode('hello'), {
      headers: { 'content-length': '5', connection: 'close', 'transfer-encoding': 'chunked', 'keep-alive': 'x', 'x-a': '1' },
    });
    const head = responseHead('GET', false, res, DATE);
    assert.equal(head.text, `HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: 1\r\n${DATE}`);
    assert.equal(head.length, '5');
    assert.equal(head.chunked, false);
    assert.equal(head.untilClose, false);
    assert.ok(head.body !== null);
  });

  test('no length: chunked for 1.1, close-delimited for 1.0', () => {
    const body = () => new ReadableStream<Uint8Array>();
    const h11 = responseHead('GET', false, new Response(body()), DATE);
    assert.ok(h11.text.endsWith('transfer-encoding: chunked\r\n'));
    assert.equal(h11.chunked, true);
    const h10 = responseHead('GET', true, new Response(body()), DATE);
    assert.ok(!h10.text.includes('transfer-encoding'));
    assert.equal(h10.untilClose, true);
  });

  test('HEAD and 304 keep the Content-Length and send no body; 204 gets none; empty bodies say 0', () => {
    const head = responseHead('HEAD', false, new Response('abc', { headers: { 'content-length': '3' } }), DATE);
    assert.equal(head.body, null);
    assert.match(head.text, /content-length: 3\r\n/);
    const notModified = responseHead('GET', false, new Response(null, { status: 304, headers: { 'content-length': '9', etag: '"x"' } }), DATE);
    assert.match(notModified.text, /content-length: 9\r\n/);
    const noContent = responseHead('GET', false, new Response(null, { status: 204 }), DATE);
    assert.ok(!noContent.text.includes('content-length'));
    const empty = responseHead('GET', false, new Response(null, { status: 200 }), DATE);
    assert.match(empty.text, /content-length: 0\r\n/);
  });

  test('an app Date is kept alone', () => {
    const head = responseHead('GET', false, new Response(null, { headers: { date: 'Wed, 01 Jan 2020 00:00:00 GMT' } }), DATE);
    assert.equal(head.text.match(/date:/g)?.length, 1);
    assert.match(head.text, /date: Wed, 01 Jan 2020/);
  });

  test('end of head, our own closing answers, the 101 head', () => {
    assert.equal(endOfHead(false, false), '\r\n');
    assert.equal(endOfHead(false, true), 'connection: keep-alive\r\n\r\n');
    assert.equal(endOfHead(true, true), 'connection: close\r\n\r\n');
    assert.equal(
      closingAnswer(431, 'too large', DATE),
      `HTTP/1.1 431 Request Header Fields Too Large\r\n${DATE}content-type: text/plain; charset=utf-8\r\ncontent-length: 10\r\nconnection: close\r\n\r\ntoo large\n`,
    );
    assert.equal(
      switchingHead(new Headers({ upgrade: 'websocket', connection: 'Upgrade' })),
      'HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n',
    );
  });
});
