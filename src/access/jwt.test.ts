// JWT auth (issue 11) with jose, on its own: static keys (PEM, JWK, HS secret), pinned
// algorithms (no `none`, no RS -> HS confusion), claims, clock skew, and claims as fields.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { test } from 'node:test';
import { SignJWT } from 'jose';
import { compileAuth } from './auth.ts';
import { impliedAlgorithm } from './jwt.ts';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = generateKeyPairSync('ed25519');
const pem = (key: KeyObject) => key.export({ type: 'spki', format: 'pem' }).toString();
const bearer = (token: string) => new Headers({ authorization: `Bearer ${token}` });
const now = () => Math.floor(Date.now() / 1000);

const sign = (claims: Record<string, unknown>, key: unknown, alg: string, header: Record<string, unknown> = {}) =>
  new SignJWT(claims as never).setProtectedHeader({ alg, ...header }).sign(key as never);

test('the algorithm a key implies', () => {
  assert.equal(impliedAlgorithm(pem(rsa.publicKey)), 'RS256');
  assert.equal(impliedAlgorithm(pem(ec.publicKey)), 'ES256');
  assert.equal(impliedAlgorithm(pem(ed.publicKey)), 'EdDSA');
  assert.equal(impliedAlgorithm(JSON.stringify(ec.publicKey.export({ format: 'jwk' }))), 'ES256');
  assert.throws(() => impliedAlgorithm('not a key'));
});

test('a PEM key: a good token passes with its claims as fields; wrong key, expired, not yet valid, wrong audience or issuer do not', async () => {
  const auth = compileAuth({ jwt: { key: 'k.pem', issuer: 'https://auth.test', audience: 'api', claimsToHeaders: { sub: 'x-user', roles: 'x-roles' } } }, [
    pem(rsa.publicKey),
  ]);
  assert.ok(auth);
  const base = { iss: 'https://auth.test', aud: 'api', sub: 'alice', roles: ['admin'], exp: now() + 60 };
  const ok = await auth.check(bearer(await sign(base, rsa.privateKey, 'RS256')));
  assert.deepEqual(ok, {
    ok: true,
    user: 'alice',
    fields: [
      ['x-user', 'alice'],
      ['x-roles', '["admin"]'],
    ],
    claims: base,
  });
  assert.deepEqual(auth.setsFields, ['x-user', 'x-roles']);
  const reason = async (claims: object, key: unknown = rsa.privateKey, alg = 'RS256') => {
    const r = await auth.check(bearer(await sign(claims as Record<string, unknown>, key, alg)));
    return r.ok ? 'ok' : r.reason;
  };
  assert.equal(await reason(base, other.privateKey), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  assert.equal(await reason({ ...base, exp: now() - 120 }), 'ERR_JWT_EXPIRED: exp');
  assert.equal(await reason({ ...base, exp: now() - 10 }), 'ok', 'within the 30 s clock skew');
  assert.equal(await reason({ ...base, nbf: now() + 120 }), 'ERR_JWT_CLAIM_VALIDATION_FAILED: nbf');
  assert.equal(await reason({ ...base, aud: 'other' }), 'ERR_JWT_CLAIM_VALIDATION_FAILED: aud');
  assert.equal(await reason({ ...base, iss: 'https://evil.test' }), 'ERR_JWT_CLAIM_VALIDATION_FAILED: iss');
  assert.equal(await reason(base, ec.privateKey, 'ES256'), 'ERR_JOSE_ALG_NOT_ALLOWED', 'the algorithm is pinned to the key type');
});

test('alg none and the RS -> HS confusion never verify', async () => {
  const publicPem = pem(rsa.publicKey);
  const auth = compileAuth({ jwt: { key: 'k.pem' } }, [publicPem]);
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'mallory', exp: now() + 60 })}.`;
  assert.equal((await auth?.check(bearer(none)))?.ok, false);
  // An HS256 token whose secret is the public key's PEM: a library that let the token pick the
  // algorithm would verify it.
  const confused = await sign({ sub: 'mallory', exp: now() + 60 }, new TextEncoder().encode(publicPem), 'HS256');
  const r = await auth?.check(bearer(confused));
  assert.equal(r?.ok, false);
  assert.equal(r?.ok === false && r.reason, 'ERR_JOSE_ALG_NOT_ALLOWED');
});

test('an HS secret, an Ed25519 JWK, a token in a cookie', async () => {
  const secret = 'a-secret-of-at-least-32-characters!!';
  const hs = compileAuth({ jwt: { secret } });
  assert.equal((await hs?.check(bearer(await sign({ sub: 's', exp: now() + 60 }, new TextEncoder().encode(secret), 'HS256'))))?.ok, true);
  assert.equal((await hs?.check(bearer(await sign({ sub: 's', exp: now() + 60 }, new TextEncoder().encode(`${secret}x`), 'HS256'))))?.ok, false);
  const jwk = JSON.stringify(ed.publicKey.export({ format: 'jwk' }));
  const cookie = compileAuth({ jwt: { key: 'k.json', cookie: 'session' } }, [jwk]);
  const token = await sign({ sub: 'c', exp: now() + 60 }, ed.privateKey, 'EdDSA');
  assert.equal((await cookie?.check(new Headers({ cookie: `a=1; session=${token}` })))?.ok, true);
  assert.equal((await cookie?.check(bearer(token)))?.ok, false, 'the cookie route reads the cookie only');
  assert.deepEqual(cookie?.consumes, []);
  assert.deepEqual(cookie?.consumesCookies, ['session'], 'the cookie is what it consumes (removed before forwarding)');
});
