import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CompiledRetry } from '../config/compile.ts';
import { ProxyError } from './errors.ts';
import { type BodyState, countsAgainst, MAX_ATTEMPTS, mayRetry, mayRetryStatus, mayTryNext } from './retry.ts';

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

// ---- a group's next try ---------------------------------------------------------------------

const RETRY: CompiledRetry = { tries: 3, tryDurationMs: 30_000, statuses: new Set([503]), onTimeout: true, replayBodyBytes: 65_536 };
const refused = new ProxyError('connect', 'upstream', true, 'refused');
const connectTimeout = new ProxyError('timeout', 'upstream', true, 'connect timed out');
const reset = new ProxyError('reset', 'upstream', false, 'reset');
const headTimeout = new ProxyError('timeout', 'upstream', false, 'no head');
const tlsFailed = new ProxyError('tls', 'upstream', false, 'bad cert');
const clientGone = new ProxyError('client-closed', 'client', false, 'client left');
const bodyTooSlow = new ProxyError('body-timeout', 'client', false, 'slow body');

test('the next upstream: nothing sent is retried for every method; sent, only idempotent ones with a replayable body', () => {
  // [failure, method, body, expected]
  const table: [ProxyError, string, BodyState, boolean][] = [
    [refused, 'GET', 'none', true],
    [refused, 'POST', 'none', true],
    [refused, 'POST', 'kept', true],
    [refused, 'POST', 'untouched', true],
    [refused, 'POST', 'sent', false],
    [connectTimeout, 'PATCH', 'kept', true],
    [reset, 'GET', 'none', true],
    [reset, 'PUT', 'kept', true],
    [reset, 'POST', 'none', false],
    [reset, 'POST', 'kept', false],
    [reset, 'PUT', 'sent', false],
    [reset, 'get', 'none', false],
    [headTimeout, 'GET', 'none', true],
    [headTimeout, 'POST', 'kept', false],
    [tlsFailed, 'GET', 'none', false],
    [clientGone, 'GET', 'none', false],
    [bodyTooSlow, 'PUT', 'kept', false],
  ];
  for (const [failure, method, body, expected] of table) {
    assert.equal(mayTryNext(failure, method, body, RETRY), expected, `${failure.kind} ${method} body ${body}`);
  }
  assert.equal(mayTryNext(headTimeout, 'GET', 'none', { ...RETRY, onTimeout: false }), false, 'onTimeout: false');
});

test('retry statuses: idempotent requests with a replayable body only', () => {
  assert.equal(mayRetryStatus(503, 'GET', 'none', RETRY), true);
  assert.equal(mayRetryStatus(503, 'PUT', 'kept', RETRY), true);
  assert.equal(mayRetryStatus(503, 'PUT', 'sent', RETRY), false);
  assert.equal(mayRetryStatus(503, 'POST', 'none', RETRY), false);
  assert.equal(mayRetryStatus(502, 'GET', 'none', RETRY), false);
});

test('passive health counts the upstream failures, never a client that left or the stale keep-alive race', () => {
  for (const failure of [refused, connectTimeout, reset, headTimeout, tlsFailed]) assert.equal(countsAgainst(failure), true, failure.kind);
  assert.equal(countsAgainst(clientGone), false);
  assert.equal(countsAgainst(bodyTooSlow), false);
  assert.equal(countsAgainst(new ProxyError('reset', 'upstream', false, 'stale', { staleConnection: true })), false);
});
