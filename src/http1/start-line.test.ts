// Request and status lines on their own: parts out, or the reason they are refused. Pure code,
// so it runs on every runtime.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MALFORMED_REQUEST_LINE, MALFORMED_STATUS_LINE, parseRequestLine, parseStatusLine, UNSUPPORTED_VERSION } from './start-line.ts';

const request = (line: string) => parseRequestLine(`${line}\r\nHost: h`, line.length);
const status = (line: string) => parseStatusLine(`${line}\r\nx: 1`, line.length);

describe('request line', () => {
  test('method, target and version exactly as sent', () => {
    assert.deepEqual(request('GET /a%2Fb/../c?q HTTP/1.1'), { method: 'GET', target: '/a%2Fb/../c?q', version: '1.1' });
    assert.deepEqual(request('purge http://x/p HTTP/1.0'), { method: 'purge', target: 'http://x/p', version: '1.0' });
    assert.deepEqual(request('OPTIONS * HTTP/1.1'), { method: 'OPTIONS', target: '*', version: '1.1' });
    assert.deepEqual(parseRequestLine('GET / HTTP/1.1', 14), { method: 'GET', target: '/', version: '1.1' });
  });

  test('refusals name their reason', () => {
    for (const line of ['GET /', 'GET  / HTTP/1.1', ' GET / HTTP/1.1', 'GE(T / HTTP/1.1', 'GET /a\tb HTTP/1.1', 'GET /caf\xe9 HTTP/1.1', 'hello']) {
      assert.equal(request(line), MALFORMED_REQUEST_LINE, JSON.stringify(line));
    }
    for (const line of ['GET / HTTP/2.0', 'GET / HTTP/1.2', 'GET / http/1.1', 'GET / HTTP/1.1 ']) {
      assert.equal(request(line), UNSUPPORTED_VERSION, JSON.stringify(line));
    }
  });
});

describe('status line', () => {
  test('version, status and reason', () => {
    assert.deepEqual(status('HTTP/1.1 200 OK'), { version: '1.1', status: 200, reason: 'OK' });
    assert.deepEqual(status('HTTP/1.0 404 Not  Found'), { version: '1.0', status: 404, reason: 'Not  Found' });
    assert.deepEqual(status('HTTP/1.1 204'), { version: '1.1', status: 204, reason: '' });
    assert.deepEqual(status('HTTP/1.1 200 '), { version: '1.1', status: 200, reason: '' });
    assert.deepEqual(status('HTTP/1.1 999 Odd'), { version: '1.1', status: 999, reason: 'Odd' }, "the range is the caller's rule");
  });

  test('a reason that is not plain visible ASCII is dropped, the status kept', () => {
    assert.deepEqual(status('HTTP/1.1 200 caf\xe9'), { version: '1.1', status: 200, reason: '' });
    assert.deepEqual(status('HTTP/1.1 200 a\x01b'), { version: '1.1', status: 200, reason: '' });
  });

  test('malformed lines', () => {
    for (const line of [
      'HTTX/1.1 200 OK',
      'HTTP/1.2 200 OK',
      'HTTP/2 200',
      'HTTP/1.1 20 OK',
      'HTTP/1.1 2000 OK',
      'HTTP/1.1  200 OK',
      'HTTP/1.1 2x0 OK',
      'HTTP/1.1',
      // A bare LF or CR would hide the next field line (found by the differential fuzzer).
      'HTTP/1.1 200 OK\nContent-Length: 2',
      'HTTP/1.1 200 OK\rContent-Length: 2',
      'HTTP/1.1 200\nContent-Length: 2',
      'HTTP/1.1 200 O\x00K',
    ]) {
      assert.equal(status(line), MALFORMED_STATUS_LINE, JSON.stringify(line));
    }
  });
});
