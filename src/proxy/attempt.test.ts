import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Transport, UpstreamInit } from '../transport/types.ts';
import { UpstreamError } from '../transport/types.ts';
import { sendAttempt } from './attempt.ts';
import { ProxyError, statusFor } from './errors.ts';
import { mayRetry } from './retry.ts';

const upstream = { origin: 'http://127.0.0.1:9', hostPort: '127.0.0.1:9' };

function transportOf(fetch: Transport['fetch']): Transport {
  return {
    name: 'fake',
    fetch,
    upgrade: () => Promise.reject(new Error('not used')),
    close: async () => {},
  };
}

const init = (signal = new AbortController().signal): UpstreamInit => ({ method: 'GET', headers: new Headers({ host: 'a.test' }), body: null, signal });

test('a response comes back as it is, sent to origin + target', async () => {
  let seen = '';
  const res = new Response('ok');
  const out = await sendAttempt(
    transportOf(async (url) => {
      seen = url;
      return res;
    }),
    upstream,
    '/a?b',
    init(),
  );
  assert.equal(out, res);
  assert.equal(seen, 'http://127.0.0.1:9/a?b');
});

test('failures become typed ProxyErrors naming the upstream, never throws', async () => {
  const cases: [unknown, string, boolean, boolean][] = [
    // [thrown, kind, retryable, staleConnection]
    [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'connect', true, false],
    [new TypeError('fetch failed', { cause: { code: 'ENOTFOUND' } }), 'connect', true, false],
    [new UpstreamError('refused', 'ECONNREFUSED', { connectFailed: true, reusedConnection: false, responseStarted: false }), 'connect', true, false],
    [new UpstreamError('reset', 'ECONNRESET', { connectFailed: false, reusedConnection: true, responseStarted: false }), 'reset', false, true],
    [new UpstreamError('reset', 'ECONNRESET', { connectFailed: false, reusedConnection: true, responseStarted: true }), 'reset', false, false],
    [new UpstreamError('reset', 'ECONNRESET', { connectFailed: false, reusedConnection: false, responseStarted: false }), 'reset', false, false],
    [Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'reset', false, false],
    ['a string', 'reset', false, false],
  ];
  for (const [thrown, kind, retryable, stale] of cases) {
    const out = await sendAttempt(
      transportOf(async () => {
        throw thrown;
      }),
      upstream,
      '/',
      init(),
    );
    assert.ok(out instanceof ProxyError, String(thrown));
    assert.equal(out.kind, kind, String(thrown));
    assert.equal(out.retryable, retryable, String(thrown));
    assert.equal(out.staleConnection, stale, String(thrown));
    assert.equal(out.source, 'upstream');
    assert.equal(statusFor(out.kind), 502);
    assert.match(out.message, /upstream http:\/\/127\.0\.0\.1:9 /);
  }
});

test('a synchronous throw is caught too', async () => {
  const out = await sendAttempt(
    transportOf(() => {
      throw Object.assign(new Error('boom'), { code: 'ECONNREFUSED' });
    }),
    upstream,
    '/',
    init(),
  );
  assert.ok(out instanceof ProxyError);
  assert.equal(out.kind, 'connect');
});

test('an abort comes back as the signal reason when that is a ProxyError', async () => {
  const controller = new AbortController();
  const reason = new ProxyError('timeout', 'upstream', false, 'upstream http://127.0.0.1:9 sent no response head within 5 ms');
  controller.abort(reason);
  const out = await sendAttempt(
    transportOf((_url, i) => Promise.reject(i.signal.reason)),
    upstream,
    '/',
    init(controller.signal),
  );
  assert.equal(out, reason);
});

test('the transport facts, not the code, say whether the upstream can have seen the request', async () => {
  const classify = async (error: Error) =>
    (await sendAttempt(
      transportOf(() => Promise.reject(error)),
      upstream,
      '/',
      init(),
    )) as ProxyError;
  // A connect-phase code on an established, reused connection: no connect failure.
  const late = await classify(new UpstreamError('unreachable', 'EHOSTUNREACH', { connectFailed: false, reusedConnection: true, responseStarted: false }));
  assert.equal(late.retryable, false);
  assert.equal(statusFor(late.kind), 502);
  const early = await classify(new UpstreamError('refused', 'ECONNREFUSED', { connectFailed: true, reusedConnection: false, responseStarted: false }));
  assert.equal(early.retryable, true);
  // No code of its own: the cause's code names the failure in the log.
  const nested = await classify(
    new UpstreamError(
      'socket hang up',
      undefined,
      { connectFailed: false, reusedConnection: false, responseStarted: false },
      { cause: Object.assign(new Error('x'), { code: 'ECONNRESET' }) },
    ),
  );
  assert.match(nested.message, /\(ECONNRESET\)/);
});

test('a failed TLS handshake is a 502 that says why, never retried, whatever the facts', async () => {
  const tlsUpstream = { origin: 'https://127.0.0.1:8443', hostPort: '127.0.0.1:8443' };
  const classify = async (error: unknown) =>
    (await sendAttempt(
      transportOf(() => Promise.reject(error)),
      tlsUpstream,
      '/',
      init(),
    )) as ProxyError;
  const connectFailed = { connectFailed: true, reusedConnection: false, responseStarted: false };
  // [thrown, the log line]
  const cases: [unknown, string][] = [
    [
      new UpstreamError('self-signed certificate in certificate chain', 'SELF_SIGNED_CERT_IN_CHAIN', connectFailed),
      'upstream https://127.0.0.1:8443 failed TLS verification: self-signed certificate in chain (SELF_SIGNED_CERT_IN_CHAIN)',
    ],
    [
      new UpstreamError('unable to verify the first certificate', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', connectFailed),
      'upstream https://127.0.0.1:8443 failed TLS verification: certificate not issued by a trusted CA, or chain incomplete (UNABLE_TO_VERIFY_LEAF_SIGNATURE)',
    ],
    [
      new UpstreamError('self-signed certificate', 'DEPTH_ZERO_SELF_SIGNED_CERT', connectFailed),
      'upstream https://127.0.0.1:8443 failed TLS verification: self-signed certificate (DEPTH_ZERO_SELF_SIGNED_CERT)',
    ],
    // A bare error with the code (no facts) and a code only on the cause are classified the same.
    [
      Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED' }),
      'upstream https://127.0.0.1:8443 failed TLS verification: certificate has expired (CERT_HAS_EXPIRED)',
    ],
    [
      new UpstreamError('tls', undefined, connectFailed, { cause: Object.assign(new Error('x'), { code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' }) }),
      'upstream https://127.0.0.1:8443 failed TLS verification: certificate not issued by a trusted CA (UNABLE_TO_GET_ISSUER_CERT_LOCALLY)',
    ],
    // node:tls names the name it checked (`host`) on a mismatch, on every runtime.
    [
      new UpstreamError("Hostname/IP does not match certificate's altnames", 'ERR_TLS_CERT_ALTNAME_INVALID', connectFailed, {
        cause: Object.assign(new Error('x'), { code: 'ERR_TLS_CERT_ALTNAME_INVALID', host: 'b.test' }),
      }),
      'upstream https://127.0.0.1:8443 failed TLS verification: certificate does not name the host b.test (ERR_TLS_CERT_ALTNAME_INVALID)',
    ],
    [
      new UpstreamError('x', 'ERR_TLS_CERT_ALTNAME_INVALID', connectFailed),
      'upstream https://127.0.0.1:8443 failed TLS verification: certificate does not name the host (ERR_TLS_CERT_ALTNAME_INVALID)',
    ],
    // Facts that would make a reset a stale connection do not make a verification failure one.
    [
      new UpstreamError('x', 'CERT_HAS_EXPIRED', { connectFailed: false, reusedConnection: true, responseStarted: false }),
      'upstream https://127.0.0.1:8443 failed TLS verification: certificate has expired (CERT_HAS_EXPIRED)',
    ],
    // The upstream refused the handshake (our client certificate, TLS 1.2) before any request.
    [
      new UpstreamError('alert', 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', connectFailed),
      'upstream https://127.0.0.1:8443 failed the TLS handshake (ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE)',
    ],
  ];
  for (const [thrown, message] of cases) {
    const out = await classify(thrown);
    assert.ok(out instanceof ProxyError, String(thrown));
    assert.equal(out.kind, 'tls', message);
    assert.equal(out.source, 'upstream');
    assert.equal(statusFor(out.kind), 502);
    assert.equal(out.message, message);
    assert.equal(out.retryable, false, message);
    assert.equal(out.staleConnection, false, message);
    for (const method of ['GET', 'HEAD', 'PUT']) assert.equal(mayRetry(out, method, false, 1), false, `${method} after ${message}`);
  }
  // An ERR_SSL_ code on an established connection is a broken connection, not a handshake.
  const late = await classify(
    new UpstreamError('bad record mac', 'ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC', {
      connectFailed: false,
      reusedConnection: false,
      responseStarted: true,
    }),
  );
  assert.equal(late.kind, 'reset');
  // A refused connection stays a connect failure.
  const refused = await classify(new UpstreamError('refused', 'ECONNREFUSED', connectFailed));
  assert.equal(refused.kind, 'connect');
});
