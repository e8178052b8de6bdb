// Basic and Bearer auth (issue 11) on their own: bcrypt hashes, constant-time token digests,
// the success cache, and the combinations.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import bcrypt from 'bcryptjs';
import { compileAuth } from './auth.ts';

const hash = bcrypt.hashSync('s3cret pass', 4);
const basic = (user: string, password: string) => new Headers({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
const bearer = (token: string) => new Headers({ authorization: `Bearer ${token}` });
const TOKEN = 'tok_0123456789abcdefXYZ';

test('basic: the right password passes; a wrong one, an unknown user, other schemes and junk do not', async () => {
  const auth = compileAuth({ basic: { users: { alice: hash } } });
  assert.ok(auth);
  assert.deepEqual(await auth.check(basic('alice', 's3cret pass')), { ok: true, user: 'alice' });
  assert.deepEqual(await auth.check(basic('alice', 'nope')), { ok: false, reason: 'wrong password', user: 'alice' });
  assert.deepEqual(await auth.check(basic('mallory', 's3cret pass')), { ok: false, reason: 'unknown user', user: 'mallory' });
  assert.equal((await auth.check(new Headers())).ok, false);
  assert.equal((await auth.check(bearer(TOKEN))).ok, false);
  assert.equal((await auth.check(new Headers({ authorization: 'Basic !!!notbase64' }))).ok, false);
  // The scheme is case-insensitive (RFC 9110 §11.1); a password may hold ':'.
  const colon = compileAuth({ basic: { users: { bob: bcrypt.hashSync('a:b', 4) } } });
  assert.equal((await colon?.check(new Headers({ authorization: `bAsIc ${Buffer.from('bob:a:b').toString('base64')}` })))?.ok, true);
  assert.deepEqual(auth.challenges, ['Basic realm="switchyard", charset="UTF-8"']);
  assert.deepEqual(auth.consumes, ['authorization']);
});

test('basic: a successful check is remembered (no second bcrypt), a changed password is not taken from the cache', async () => {
  const auth = compileAuth({ basic: { users: { alice: bcrypt.hashSync('pw', 4) } } });
  const original = bcrypt.compare;
  let compares = 0;
  bcrypt.compare = ((...args: Parameters<typeof original>) => {
    compares++;
    return original(...args);
  }) as typeof original;
  try {
    assert.equal((await auth?.check(basic('alice', 'pw')))?.ok, true);
    for (let i = 0; i < 20; i++) assert.equal((await auth?.check(basic('alice', 'pw')))?.ok, true);
    assert.equal(compares, 1, 'one bcrypt check for 21 requests');
    assert.equal((await auth?.check(basic('alice', 'pw2')))?.ok, false);
    assert.equal((await auth?.check(basic('alice', 'pw2')))?.ok, false);
    assert.equal(compares, 3, 'failures are never cached');
  } finally {
    bcrypt.compare = original;
  }
});

test('bearer: plain tokens and sha256: digests; nothing else passes', async () => {
  const digest = `sha256:${createHash('sha256').update('other_token_0123456789').digest('hex')}`;
  const auth = compileAuth({ bearer: { tokens: [TOKEN, digest], realm: 'api' } });
  assert.equal((await auth?.check(bearer(TOKEN)))?.ok, true);
  assert.equal((await auth?.check(bearer('other_token_0123456789')))?.ok, true);
  assert.equal((await auth?.check(bearer(digest)))?.ok, false, 'the digest itself is not a token');
  assert.equal((await auth?.check(bearer(`${TOKEN}x`)))?.ok, false);
  assert.equal((await auth?.check(basic('a', TOKEN)))?.ok, false);
  assert.deepEqual(auth?.challenges, ['Bearer realm="api"']);
});

test('anyOf passes with any kind and challenges with all; allOf needs each', async () => {
  const any = compileAuth({ anyOf: [{ basic: { users: { alice: hash } } }, { bearer: { tokens: [TOKEN] } }] });
  assert.equal((await any?.check(basic('alice', 's3cret pass')))?.ok, true);
  assert.equal((await any?.check(bearer(TOKEN)))?.ok, true);
  const failed = await any?.check(basic('alice', 'wrong'));
  assert.deepEqual(failed, { ok: false, reason: 'wrong password', user: 'alice' }, 'the reason is the kind that got credentials');
  assert.deepEqual(any?.challenges, ['Basic realm="switchyard", charset="UTF-8"', 'Bearer realm="switchyard"']);
  const all = compileAuth({ allOf: [{ bearer: { tokens: [TOKEN] } }] });
  assert.equal((await all?.check(bearer(TOKEN)))?.ok, true);
  assert.equal((await all?.check(new Headers()))?.ok, false);
  assert.equal(compileAuth(undefined), null);
});
