import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { certificateNames, normaliseName, sanEntries, wildcardParent } from './names.ts';

describe('normaliseName', () => {
  test('lowercases and drops one trailing dot', () => {
    assert.equal(normaliseName('A.Test'), 'a.test');
    assert.equal(normaliseName('x.A.TEST.'), 'x.a.test');
    assert.equal(normaliseName('a.test'), 'a.test');
  });
});

describe('wildcardParent (RFC 6125 §6.4.3: one label)', () => {
  test('strips exactly the first label', () => {
    assert.equal(wildcardParent('x.a.test'), 'a.test');
    assert.equal(wildcardParent('x.y.a.test'), 'y.a.test');
    assert.equal(wildcardParent('a.test'), 'test');
  });
  test('a single label or an empty first label has no parent', () => {
    assert.equal(wildcardParent('localhost'), undefined);
    assert.equal(wildcardParent('.a.test'), undefined);
    assert.equal(wildcardParent('a.'), undefined);
  });
});

describe('sanEntries', () => {
  test('splits node:crypto subjectAltName text into typed entries', () => {
    assert.deepEqual(sanEntries('DNS:a.test, DNS:*.a.test, IP Address:127.0.0.1'), [
      { type: 'DNS', value: 'a.test' },
      { type: 'DNS', value: '*.a.test' },
      { type: 'IP Address', value: '127.0.0.1' },
    ]);
    assert.deepEqual(sanEntries(''), []);
  });
  test('a quoted value is one entry, so a comma inside it cannot smuggle a DNS name (CVE-2021-44532)', () => {
    assert.deepEqual(sanEntries('URI:"http://x/, DNS:evil.test", DNS:a.test'), [
      { type: 'URI', value: 'http://x/, DNS:evil.test' },
      { type: 'DNS', value: 'a.test' },
    ]);
  });
});

describe('certificateNames', () => {
  test('SAN DNS names, normalised and deduplicated, wildcards kept; the CN is ignored when SANs exist', () => {
    const { names, ignored } = certificateNames('DNS:A.test, DNS:*.a.test, DNS:a.test.', 'CN=other.test');
    assert.deepEqual(names, ['a.test', '*.a.test']);
    assert.deepEqual(ignored, []);
  });
  test('the CN counts when there is no SAN, or only IP SANs; the last CN wins', () => {
    assert.deepEqual(certificateNames(undefined, 'O=x\nCN=cn.test').names, ['cn.test']);
    assert.deepEqual(certificateNames('IP Address:10.0.0.1', 'CN=cn.test').names, ['cn.test']);
    assert.deepEqual(certificateNames(undefined, 'CN=first.test\nCN=last.test').names, ['last.test']);
  });
  test('a URI SAN rules the CN out (RFC 6125 §6.4.4)', () => {
    assert.deepEqual(certificateNames('URI:spiffe://x/y', 'CN=cn.test').names, []);
  });
  test('partial and nested wildcards, and names that are not hosts, are ignored with a reason', () => {
    const { names, ignored } = certificateNames('DNS:f*.a.test, DNS:*.*.a.test, DNS:*, DNS:a..test, DNS:ok.test', 'CN=x');
    assert.deepEqual(names, ['ok.test']);
    assert.equal(ignored.length, 4);
    assert.match(ignored[0]!, /^SAN DNS name "f\*\.a\.test" is not a host name or a one-label wildcard$/);
  });
  test('a CN that is not a host name serves nothing', () => {
    const { names, ignored } = certificateNames(undefined, 'CN=switchyard test root');
    assert.deepEqual(names, []);
    assert.match(ignored[0]!, /^subject CN "switchyard test root"/);
  });
});
