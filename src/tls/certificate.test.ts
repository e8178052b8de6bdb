import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { chmodSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { createTlsFixtures, type TlsFixtures } from '../../tests/support/tls-fixtures.ts';
import { type CertificatePairResult, type LoadCertificateOptions, loadCertificatePair, parseCertificatePair, x509Time } from './certificate.ts';

let fx: TlsFixtures;
before(() => {
  fx = createTlsFixtures();
});
after(() => fx.cleanup());

const load = (cert: string, key: string, options: LoadCertificateOptions = {}): Promise<CertificatePairResult> =>
  loadCertificatePair({ cert: fx.path(cert), key: fx.path(key) }, { relativeTo: fx.dir, ...options });

function pairOf(result: CertificatePairResult) {
  if (!result.ok) assert.fail(`expected a pair, got: ${result.problems.join('; ')}`);
  return result;
}

function problemsOf(result: CertificatePairResult): readonly string[] {
  if (result.ok) assert.fail(`expected problems, got the pair ${result.pair.id}`);
  return result.problems;
}

/** The leaf's notAfter as openssl prints it, read back independently of the code under test. */
const leafOf = (file: string) => new X509Certificate(readFileSync(fx.path(file)));

describe('a good pair', () => {
  test('loads with its SAN names (wildcards included), dates and the file names as shown', async () => {
    const { pair, warnings } = pairOf(await load('a.pem', 'a.key'));
    assert.deepEqual(pair.names, ['a.test', '*.a.test']);
    assert.equal(pair.id, 'certs/a.pem');
    assert.equal(pair.certFile, 'certs/a.pem');
    assert.equal(pair.keyFile, 'certs/a.key');
    assert.equal(pair.chainLength, 1);
    assert.equal(pair.subject, 'CN=a.test');
    assert.equal(pair.issuer, 'CN=switchyard test intermediate');
    assert.equal(pair.notAfterMs - pair.notBeforeMs, 30 * 86_400_000);
    assert.equal(pair.notAfterMs, Date.parse(leafOf('a.pem').validTo));
    assert.equal(pair.fingerprint256, leafOf('a.pem').fingerprint256);
    assert.match(pair.keyPem, /^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
    assert.deepEqual(warnings, []);
  });

  test('an RSA pair loads as well as an EC one', async () => {
    const { pair } = pairOf(await load('b.pem', 'b.key'));
    assert.deepEqual(pair.names, ['b.test']);
  });

  test('a chain file is kept whole, leaf first, with no warning when each certificate issued the one before', async () => {
    const { pair, warnings } = pairOf(await load('a-chain.pem', 'a.key'));
    assert.equal(pair.chainLength, 2);
    assert.equal(pair.chainPem.match(/-----BEGIN CERTIFICATE-----/g)?.length, 2);
    assert.equal(new X509Certificate(pair.chainPem).subject, 'CN=a.test');
    assert.ok(pair.chainPem.endsWith(`${readFileSync(fx.path('inter.pem'), 'utf8').trim()}\n`));
    assert.deepEqual(pair.names, ['a.test', '*.a.test']);
    assert.deepEqual(warnings, []);
  });

  test('a chain whose second certificate did not issue the first loads with a warning naming the file', async () => {
    const { warnings } = pairOf(await load('misordered.pem', 'a.key'));
    assert.deepEqual(warnings, ['certs/misordered.pem: certificate 2 (CN=b.test) did not issue certificate 1']);
  });

  test('the CN serves only when there is no SAN', async () => {
    assert.deepEqual(pairOf(await load('cn.pem', 'cn.key')).pair.names, ['cn.test']);
    assert.deepEqual(pairOf(await load('a2.pem', 'a2.key')).pair.names, ['a.test']);
  });

  test('without relativeTo, messages name the absolute path; an id can be given', async () => {
    const { pair } = pairOf(await loadCertificatePair({ cert: fx.path('b.pem'), key: fx.path('b.key') }, { id: 'site-b' }));
    assert.equal(pair.certFile, fx.path('b.pem'));
    assert.equal(pair.id, 'site-b');
  });

  test('PEM text in memory (as ACME will hand it over) parses the same, CRLF line ends included', () => {
    const certPem = readFileSync(fx.path('a-chain.pem'), 'utf8').replaceAll('\n', '\r\n');
    const keyPem = `# a comment before the block\n${readFileSync(fx.path('a.key'), 'utf8')}`;
    const { pair } = pairOf(parseCertificatePair({ certPem, keyPem, certFile: 'acme:a.test', keyFile: 'acme:a.test key', id: 'acme:a.test' }));
    assert.equal(pair.id, 'acme:a.test');
    assert.equal(pair.chainLength, 2);
    assert.ok(!pair.chainPem.includes('\r'));
    assert.ok(pair.keyPem.startsWith('-----BEGIN PRIVATE KEY-----'));
  });
});

describe('each problem names its file', () => {
  test('a missing certificate or key file', async () => {
    assert.deepEqual(problemsOf(await load('nope.pem', 'a.key')), ['certs/nope.pem: file not found']);
    assert.deepEqual(problemsOf(await load('a.pem', 'nope.key')), ['certs/nope.key: file not found']);
    assert.deepEqual(problemsOf(await load('nope.pem', 'nope.key')), ['certs/nope.pem: file not found', 'certs/nope.key: file not found']);
  });

  test('a refused result carries the id the pair would have had', async () => {
    const result = await load('nope.pem', 'a.key', { id: 'site-a' });
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.id, 'site-a');
  });

  test('a key path that is a directory is unreadable', async () => {
    const result = await loadCertificatePair({ cert: fx.path('a.pem'), key: fx.dir }, { relativeTo: fx.dir });
    assert.deepEqual(problemsOf(result), [`${fx.dir}: is a directory, not a file`]);
  });

  const root = process.getuid?.() === 0;
  test('a key file without read permission', { skip: root ? 'root reads any file whatever its mode (issue 7)' : false }, async () => {
    chmodSync(fx.path('b.key'), 0o000);
    try {
      assert.deepEqual(problemsOf(await load('b.pem', 'b.key')), ['certs/b.key: cannot read file (permission denied)']);
    } finally {
      chmodSync(fx.path('b.key'), 0o600);
    }
  });

  test('a key file with no PEM key, a malformed key, an encrypted key', async () => {
    assert.deepEqual(problemsOf(await load('a.pem', 'garbage.key')), ['certs/garbage.key: no PEM private key found']);
    assert.deepEqual(problemsOf(await load('a.pem', 'broken.key')), ['certs/broken.key: malformed private key']);
    assert.deepEqual(problemsOf(await load('a.pem', 'enc.key')), ['certs/enc.key: private key is encrypted; switchyard reads unencrypted keys only']);
  });

  test('cert and key swapped: both files are named', async () => {
    assert.deepEqual(problemsOf(await load('a.key', 'a.pem')), [
      'certs/a.key: holds a private key, not a certificate (cert and key swapped?)',
      'certs/a.pem: holds a certificate, not a private key (cert and key swapped?)',
    ]);
  });

  test('a malformed certificate, alone and as the second of a chain', async () => {
    assert.deepEqual(problemsOf(await load('broken.pem', 'a.key')), ['certs/broken.pem: malformed certificate']);
    const certPem = readFileSync(fx.path('a.pem'), 'utf8') + readFileSync(fx.path('broken.pem'), 'utf8');
    const result = parseCertificatePair({ certPem, keyPem: readFileSync(fx.path('a.key'), 'utf8'), certFile: 'certs/two.pem', keyFile: 'certs/a.key' });
    assert.deepEqual(problemsOf(result), ['certs/two.pem: certificate 2 of 2 is malformed']);
  });

  test('a key that does not match the certificate, of the same type and of another', async () => {
    assert.deepEqual(problemsOf(await load('a.pem', 'other.key')), ['certs/other.key: key does not match certs/a.pem']);
    assert.deepEqual(problemsOf(await load('b.pem', 'a.key')), ['certs/a.key: key does not match certs/b.pem']);
  });

  test('a key that matches an intermediate but not the leaf does not match', async () => {
    assert.deepEqual(problemsOf(await load('a-chain.pem', 'inter.key')), ['certs/inter.key: key does not match certs/a-chain.pem']);
  });

  test('an expired certificate, by the real clock', async () => {
    assert.deepEqual(problemsOf(await load('old.pem', 'old.key')), ['certs/old.pem: certificate expired at 2020-01-02T00:00:00.000Z']);
  });

  test('the same pair is valid inside its window, by an injected clock', async () => {
    const { pair } = pairOf(await load('old.pem', 'old.key', { now: () => Date.UTC(2020, 0, 1, 12) }));
    assert.deepEqual(pair.names, ['old.test']);
  });

  test('validity is inclusive at both ends; a millisecond outside is a problem', async () => {
    const { pair } = pairOf(await load('day.pem', 'day.key'));
    const at = (ms: number) => load('day.pem', 'day.key', { now: () => ms });
    assert.equal((await at(pair.notBeforeMs)).ok, true);
    assert.equal((await at(pair.notAfterMs)).ok, true);
    assert.deepEqual(problemsOf(await at(pair.notAfterMs + 1)), [`certs/day.pem: certificate expired at ${new Date(pair.notAfterMs).toISOString()}`]);
    assert.deepEqual(problemsOf(await at(pair.notBeforeMs - 1)), [
      `certs/day.pem: certificate is not valid before ${new Date(pair.notBeforeMs).toISOString()}`,
    ]);
  });

  test('every problem of a pair is reported, not just the first', async () => {
    const problems = problemsOf(await load('old.pem', 'other.key'));
    assert.deepEqual(problems, ['certs/other.key: key does not match certs/old.pem', 'certs/old.pem: certificate expired at 2020-01-02T00:00:00.000Z']);
  });
});

describe('x509Time', () => {
  test('reads OpenSSL text dates as UTC', () => {
    assert.equal(x509Time('Dec  1 21:04:33 2026 GMT'), Date.UTC(2026, 11, 1, 21, 4, 33));
    assert.equal(x509Time('Jan 12 00:00:00 2020 GMT'), Date.UTC(2020, 0, 12));
  });
  test('anything else is unreadable', () => {
    assert.equal(x509Time('2026-12-01T21:04:33Z'), undefined);
    assert.equal(x509Time('Foo  1 21:04:33 2026 GMT'), undefined);
  });
});
