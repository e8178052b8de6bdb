import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_ATTEMPTS, mayRetry } from './retry.ts';

const connectFailed = { retryable: true, staleConnection: false };
const stale = { retryable: false, staleConnection: true };
const broken = { retryable: false, staleConnection: false };

test('the policy table', () => {
  // [failure, method, hasBody, attempts made, expected]
  const table: [typeof connectFailed, string, boolean, number, boolean][] = [
    // The same upstream just refused: no retry against it (the next candidate is issue 9's).
    [connectFailed, 'GET', false, 1, false],
    [connectFailed, 'POST', false, 1, false],
    [connectFailed, 'POST', true, 1, false],
    [stale, 'GET', false, 1, true],
    [stale, 'HEAD', false, 1, true],
    [stale, 'OPTIONS', false, 1, true],
    [stale, 'TRACE', false, 1, true],
    [stale, 'PUT', false, 1, true],
    [stale, 'DELETE', false, 1, true],
    [stale, 'POST', false, 1, false], // not idempotent (RFC 9110 §9.2.2)
    [stale, 'PATCH', false, 1, false],
    [stale, 'get', false, 1, false], // methods are case-sensitive: `get` is not GET
    [stale, 'PUT', true, 1, false],
    [stale, 'GET', false, 2, false],
    [broken, 'GET', false, 1, false], // the upstream may have acted on it
    [broken, 'POST', false, 1, false],
  ];
  for (const [failure, method, hasBody, attempts, expected] of table) {
    assert.equal(mayRetry(failure, method, hasBody, attempts), expected, `${JSON.stringify(failure)} ${method} body=${hasBody} attempts=${attempts}`);
  }
  assert.equal(MAX_ATTEMPTS, 2);
});
