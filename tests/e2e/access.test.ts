// Access control (issue 11), part one: who the client is, and a route's allow / deny, on all
// three runtimes. Clients connect from several loopback addresses (127.0.0.10-39: Linux routes
// all of 127.0.0.0/8 to lo), and one of them acts as a trusted front proxy.
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import bcrypt from 'bcryptjs';
import { SignJWT } from 'jose';
import { type ProxyHandle, RUNTIMES, startProxy, startUpstream, type Upstream, writeRoutes } from './harness.ts';

/** One GET from `from` (a loopback address) with `headers`; status, body and the upstream's view. */
function get(
  port: number,
  host: string,
  from: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders; raw: string[] }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, localAddress: from, path: '/who', headers: { host, connection: 'close', ...headers }, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('latin1');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, raw: res.rawHeaders }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const SPOOF = {
  'x-forwarded-for': '127.0.0.10',
  'x-real-ip': '127.0.0.10',
  'true-client-ip': '127.0.0.10',
  'cf-connecting-ip': '127.0.0.10',
  forwarded: 'for=127.0.0.10',
};

for (const runtime of RUNTIMES) {
  describe(`allow / deny and the client identity on ${runtime}`, () => {
    let upstream: Upstream;
    let proxy: ProxyHandle;
    before(async () => {
      upstream = await startUpstream();
      proxy = await startProxy(runtime, {
        trustedProxies: ['127.0.0.30'],
        routes: [
          { host: 'allow.test', upstream: upstream.origin, allow: ['127.0.0.10/31', '127.0.0.30'] },
          { host: 'deny.test', upstream: upstream.origin, allow: ['127.0.0.0/8'], deny: ['127.0.0.20'] },
          { host: 'open.test', upstream: upstream.origin },
        ],
      });
    });
    after(async () => {
      await proxy?.stop();
      await upstream?.close();
    });

    /** The requests the upstream received during `run`. */
    const seenDuring = async <T>(run: () => Promise<T>): Promise<{ result: T; seen: number }> => {
      const from = upstream.requests.length;
      const result = await run();
      return { result, seen: upstream.requests.length - from };
    };

    test('an address in allow passes; one outside gets 403 with a short body and reaches no upstream', async () => {
      for (const from of ['127.0.0.10', '127.0.0.11']) {
        const { result, seen } = await seenDuring(() => get(proxy.port, 'allow.test', from));
        assert.equal(result.status, 200, from);
        assert.equal(seen, 1);
      }
      const { result, seen } = await seenDuring(() => get(proxy.port, 'allow.test', '127.0.0.12'));
      assert.equal(result.status, 403);
      assert.equal(result.body, 'forbidden\n');
      assert.equal(seen, 0);
    });

    test('deny wins over allow', async () => {
      assert.equal((await get(proxy.port, 'deny.test', '127.0.0.21')).status, 200);
      const { result, seen } = await seenDuring(() => get(proxy.port, 'deny.test', '127.0.0.20'));
      assert.equal(result.status, 403);
      assert.equal(seen, 0);
    });

    test('X-Forwarded-For, X-Real-IP, True-Client-IP, CF-Connecting-IP and Forwarded from an untrusted peer change nothing', async () => {
      const { result, seen } = await seenDuring(() => get(proxy.port, 'allow.test', '127.0.0.12', SPOOF));
      assert.equal(result.status, 403);
      assert.equal(seen, 0);
      // And the denied address cannot hide behind them either.
      assert.equal((await get(proxy.port, 'deny.test', '127.0.0.20', { ...SPOOF, 'x-forwarded-for': '127.0.0.21' })).status, 403);
    });

    test('behind a trusted proxy the client is the address it forwarded for; a spoofed left-hand entry is not believed', async () => {
      // The front proxy (127.0.0.30) forwards for 127.0.0.11: allowed.
      assert.equal((await get(proxy.port, 'allow.test', '127.0.0.30', { 'x-forwarded-for': '127.0.0.11' })).status, 200);
      // It forwards for 127.0.0.12: refused, though 127.0.0.30 itself is in allow.
      assert.equal((await get(proxy.port, 'allow.test', '127.0.0.30', { 'x-forwarded-for': '127.0.0.12' })).status, 403);
      // 127.0.0.12 sent X-Forwarded-For: 127.0.0.10 to the front proxy, which appended it: the
      // rightmost untrusted hop is still 127.0.0.12.
      assert.equal((await get(proxy.port, 'allow.test', '127.0.0.30', { 'x-forwarded-for': '127.0.0.10, 127.0.0.12' })).status, 403);
      // Forwarded, when there is no X-Forwarded-For.
      assert.equal((await get(proxy.port, 'allow.test', '127.0.0.30', { forwarded: 'for=127.0.0.11;proto=https' })).status, 200);
      // X-Real-IP is never read, not even from a trusted peer.
      assert.equal((await get(proxy.port, 'deny.test', '127.0.0.30', { 'x-real-ip': '127.0.0.20' })).status, 200);
    });

    test('the access line names the client, and the peer when a trusted proxy forwarded for someone', async () => {
      await get(proxy.port, 'open.test', '127.0.0.30', { 'x-forwarded-for': '127.0.0.15', 'x-request-id': 'who-behind' });
      const behind = await proxy.waitForLine((l) => l.msg === 'access' && l.request_id === 'who-behind');
      assert.equal(behind.client, '127.0.0.15');
      assert.equal(behind.peer, '127.0.0.30');
      await get(proxy.port, 'open.test', '127.0.0.16', { 'x-forwarded-for': '127.0.0.99' });
      const direct = await proxy.waitForLine((l) => l.msg === 'access' && l.client === '127.0.0.16');
      assert.equal(direct.peer, undefined);
    });

    test('the upstream still gets X-Forwarded-For built from the real peer', async () => {
      const from = upstream.requests.length;
      await get(proxy.port, 'open.test', '127.0.0.17', SPOOF);
      const xff = upstream.requests[from]?.headers['x-forwarded-for'];
      assert.equal(xff, '127.0.0.17');
      await get(proxy.port, 'open.test', '127.0.0.30', { 'x-forwarded-for': '127.0.0.18' });
      assert.equal(upstream.requests[from + 1]?.headers['x-forwarded-for'], '127.0.0.18, 127.0.0.30');
    });
  });
}

const PASSWORD = 'correct horse battery';
const HASH = bcrypt.hashSync(PASSWORD, 8);
const TOKEN = 'tok_live_0123456789abcdef';
const basicOf = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

for (const runtime of RUNTIMES) {
  describe(`basic and bearer auth on ${runtime}`, () => {
    let upstream: Upstream;
    let proxy: ProxyHandle;
    before(async () => {
      upstream = await startUpstream();
      const digest = `sha256:${createHash('sha256').update(TOKEN).digest('hex')}`;
      proxy = await startProxy(runtime, {
        routes: [
          { host: 'basic.test', upstream: upstream.origin, auth: { basic: { users: { alice: HASH }, realm: 'Admin area' } } },
          { host: 'bearer.test', upstream: upstream.origin, auth: { bearer: { tokens: [digest] } } },
          { host: 'either.test', upstream: upstream.origin, auth: { anyOf: [{ basic: { users: { alice: HASH } } }, { bearer: { tokens: [TOKEN] } }] } },
          { host: 'pass.test', upstream: upstream.origin, auth: { bearer: { tokens: [TOKEN] } }, passCredentials: true },
          { host: 'both.test', upstream: upstream.origin, allow: ['127.0.0.40'], auth: { bearer: { tokens: [TOKEN] } } },
        ],
      });
    });
    after(async () => {
      await proxy?.stop();
      await upstream?.close();
    });

    test('basic: no credentials or wrong ones get 401 with the realm and reach no upstream; the right ones pass, Authorization stripped', async () => {
      const from = upstream.requests.length;
      const none = await get(proxy.port, 'basic.test', '127.0.0.41');
      assert.equal(none.status, 401);
      assert.equal(none.body, 'unauthorized\n');
      assert.equal(none.headers['www-authenticate'], 'Basic realm="Admin area", charset="UTF-8"');
      assert.equal((await get(proxy.port, 'basic.test', '127.0.0.41', { authorization: basicOf('alice', 'wrong') })).status, 401);
      assert.equal((await get(proxy.port, 'basic.test', '127.0.0.41', { authorization: basicOf('mallory', PASSWORD) })).status, 401);
      assert.equal((await get(proxy.port, 'basic.test', '127.0.0.41', { authorization: `Bearer ${TOKEN}` })).status, 401);
      assert.equal(upstream.requests.length, from, 'nothing was forwarded');
      const ok = await get(proxy.port, 'basic.test', '127.0.0.41', { authorization: basicOf('alice', PASSWORD), cookie: 'keep=1' });
      assert.equal(ok.status, 200);
      const seen = upstream.requests.at(-1);
      assert.equal(seen?.headers.authorization, undefined, 'credentials the route consumed do not reach the upstream');
      assert.equal(seen?.headers.cookie, 'keep=1');
    });

    test('a failed attempt is logged with the user and reason, never the password', async () => {
      await get(proxy.port, 'basic.test', '127.0.0.42', { authorization: basicOf('alice', 'Tr0ub4dor&3') });
      const line = await proxy.waitForLine((l) => l.msg === 'auth failed' && l.client === '127.0.0.42');
      assert.equal(line.user, 'alice');
      assert.equal(line.reason, 'wrong password');
      const all = proxy.lines.map((l) => JSON.stringify(l)).join('\n');
      assert.ok(!all.includes('Tr0ub4dor') && !all.includes(Buffer.from('alice:Tr0ub4dor&3').toString('base64')), 'the password is in no log line');
      const access = await proxy.waitForLine((l) => l.msg === 'access' && l.client === '127.0.0.42');
      assert.equal(access.status, 401);
    });

    test('bearer: a token whose sha256 is configured passes; the digest itself and other tokens do not', async () => {
      const ok = await get(proxy.port, 'bearer.test', '127.0.0.43', { authorization: `Bearer ${TOKEN}` });
      assert.equal(ok.status, 200);
      assert.equal(upstream.requests.at(-1)?.headers.authorization, undefined);
      const digest = `sha256:${createHash('sha256').update(TOKEN).digest('hex')}`;
      const bad = await get(proxy.port, 'bearer.test', '127.0.0.43', { authorization: `Bearer ${digest}` });
      assert.equal(bad.status, 401);
      assert.equal(bad.headers['www-authenticate'], 'Bearer realm="switchyard"');
      assert.equal((await get(proxy.port, 'bearer.test', '127.0.0.43', { authorization: `Bearer ${TOKEN}0` })).status, 401);
    });

    test('anyOf: either kind passes; a 401 carries both challenges', async () => {
      assert.equal((await get(proxy.port, 'either.test', '127.0.0.44', { authorization: basicOf('alice', PASSWORD) })).status, 200);
      assert.equal((await get(proxy.port, 'either.test', '127.0.0.44', { authorization: `bearer ${TOKEN}` })).status, 200);
      const none = await get(proxy.port, 'either.test', '127.0.0.44');
      assert.equal(none.status, 401);
      const challenges: string[] = [];
      for (let i = 0; i < none.raw.length; i += 2) if (none.raw[i]?.toLowerCase() === 'www-authenticate') challenges.push(none.raw[i + 1] as string);
      // Fetch's Headers joins repeated fields, so the challenges travel as one list (RFC 9110 §11.6.1 allows it).
      assert.deepEqual(challenges, ['Basic realm="switchyard", charset="UTF-8", Bearer realm="switchyard"']);
    });

    test('passCredentials forwards Authorization; allow is checked before auth (403 without a challenge)', async () => {
      assert.equal((await get(proxy.port, 'pass.test', '127.0.0.45', { authorization: `Bearer ${TOKEN}` })).status, 200);
      assert.equal(upstream.requests.at(-1)?.headers.authorization, `Bearer ${TOKEN}`);
      const denied = await get(proxy.port, 'both.test', '127.0.0.45', { authorization: `Bearer ${TOKEN}` });
      assert.equal(denied.status, 403);
      assert.equal(denied.headers['www-authenticate'], undefined);
      assert.equal((await get(proxy.port, 'both.test', '127.0.0.40', { authorization: `Bearer ${TOKEN}` })).status, 200);
    });
  });
}

/** A JWKS server on loopback whose key set the test can change (key rotation). */
async function jwksServer(): Promise<{ url: string; set(keys: object[]): void; fetches: () => number; close(): Promise<void> }> {
  let keys: object[] = [];
  let fetches = 0;
  const server = http.createServer((_req, res) => {
    fetches++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    set: (next) => {
      keys = next;
    },
    fetches: () => fetches,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const keyA = generateKeyPairSync('rsa', { modulusLength: 2048 });
const keyB = generateKeyPairSync('rsa', { modulusLength: 2048 });
const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwkOf = (key: KeyObject, kid: string) => ({ ...key.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' });
const nowSeconds = () => Math.floor(Date.now() / 1000);
const signed = (claims: Record<string, unknown>, key: KeyObject | Uint8Array, header: Record<string, unknown>) =>
  new SignJWT(claims as never).setProtectedHeader(header as never).sign(key as never);
const CLAIMS = { iss: 'https://auth.test', aud: 'api', sub: 'alice' };
const HS_SECRET = 'an HS256 secret of more than 32 bytes, for tests';

for (const runtime of RUNTIMES) {
  describe(`JWT auth on ${runtime}`, () => {
    let upstream: Upstream;
    let jwks: Awaited<ReturnType<typeof jwksServer>>;
    let proxy: ProxyHandle;
    before(async () => {
      upstream = await startUpstream();
      jwks = await jwksServer();
      jwks.set([jwkOf(keyA.publicKey, 'a')]);
      const folder = writeRoutes({
        routes: [
          {
            host: 'api.test',
            upstream: upstream.origin,
            auth: { jwt: { jwksUrl: jwks.url, issuer: 'https://auth.test', audience: 'api', claimsToHeaders: { sub: 'x-user' } } },
          },
          { host: 'hooks.test', upstream: upstream.origin, auth: { jwt: { key: 'keys/hooks-public.pem', audience: 'hooks' } } },
          {
            host: 'claim.test',
            upstream: upstream.origin,
            auth: { jwt: { secret: HS_SECRET, clockSkewSeconds: 0 } },
            rateLimit: { requests: 2, windowSeconds: 60, key: { claim: 'sub' } },
          },
          { host: 'htpasswd.test', upstream: upstream.origin, auth: { basic: { file: 'users.htpasswd' } } },
          { host: 'cookie.test', upstream: upstream.origin, auth: { jwt: { secret: HS_SECRET, cookie: 'session' } } },
        ],
      });
      writeFileSync(join(folder.dir, 'users.htpasswd'), `# made with htpasswd -B\nalice:${HASH}\n\nbob:${bcrypt.hashSync('bobs secret', 8)}\n`);
      mkdirSync(join(folder.dir, 'keys'));
      writeFileSync(join(folder.dir, 'keys/hooks-public.pem'), keyA.publicKey.export({ type: 'spki', format: 'pem' }).toString());
      proxy = await startProxy(runtime, '', { folder });
    });
    after(async () => {
      await proxy?.stop();
      await upstream?.close();
      await jwks?.close();
    });

    const call = (host: string, token: string, extra: Record<string, string> = {}) =>
      get(proxy.port, host, '127.0.0.50', { authorization: `Bearer ${token}`, ...extra });

    test('JWKS: a good token passes; its sub travels as x-user (a client-sent x-user never does) and Authorization stays here', async () => {
      const token = await signed({ ...CLAIMS, exp: nowSeconds() + 60 }, keyA.privateKey, { alg: 'RS256', kid: 'a' });
      assert.equal((await call('api.test', token, { 'x-user': 'root' })).status, 200);
      const seen = upstream.requests.at(-1);
      assert.equal(seen?.headers['x-user'], 'alice');
      assert.equal(seen?.headers.authorization, undefined);
      // Without a token, a client's own x-user gets a 401, and is never forwarded.
      assert.equal((await get(proxy.port, 'api.test', '127.0.0.50', { 'x-user': 'root' })).status, 401);
    });

    test('a wrong key, alg none, an expired token and a wrong audience get 401 and reach no upstream', async () => {
      const from = upstream.requests.length;
      const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const cases: [string, string][] = [
        ['wrong key', await signed({ ...CLAIMS, exp: nowSeconds() + 60 }, stranger.privateKey, { alg: 'RS256', kid: 'a' })],
        ['alg none', `${b64({ alg: 'none', kid: 'a' })}.${b64({ ...CLAIMS, exp: nowSeconds() + 60 })}.`],
        ['expired', await signed({ ...CLAIMS, exp: nowSeconds() - 600 }, keyA.privateKey, { alg: 'RS256', kid: 'a' })],
        ['wrong audience', await signed({ ...CLAIMS, aud: 'other', exp: nowSeconds() + 60 }, keyA.privateKey, { alg: 'RS256', kid: 'a' })],
        ['garbage', 'not.a.jwt'],
      ];
      for (const [name, token] of cases) {
        const r = await call('api.test', token);
        assert.equal(r.status, 401, name);
        assert.equal(r.headers['www-authenticate'], 'Bearer realm="switchyard"', name);
      }
      assert.equal(upstream.requests.length, from);
    });

    test('an unknown kid is refused; once the JWKS is rotated to hold it, the same kind of token passes without a restart', async () => {
      const tokenB = await signed({ ...CLAIMS, exp: nowSeconds() + 60 }, keyB.privateKey, { alg: 'RS256', kid: 'b' });
      assert.equal((await call('api.test', tokenB)).status, 401);
      jwks.set([jwkOf(keyA.publicKey, 'a'), jwkOf(keyB.publicKey, 'b')]);
      await sleep(1_100); // the refetch cooldown after the last fetch
      const before = jwks.fetches();
      assert.equal((await call('api.test', tokenB)).status, 200);
      assert.equal(jwks.fetches(), before + 1, 'the unknown kid fetched the set once');
      // Many made-up kids cost at most one fetch a second.
      const made = await signed({ ...CLAIMS, exp: nowSeconds() + 60 }, keyB.privateKey, { alg: 'RS256', kid: 'zz' });
      for (let i = 0; i < 10; i++) assert.equal((await call('api.test', made)).status, 401);
      assert.ok(jwks.fetches() <= before + 2, `fetches: ${jwks.fetches() - before}`);
    });

    test('a PEM key file: a good token passes; an HS256 token signed with the public key as its secret does not', async () => {
      const good = await signed({ aud: 'hooks', exp: nowSeconds() + 60 }, keyA.privateKey, { alg: 'RS256' });
      assert.equal((await call('hooks.test', good)).status, 200);
      const pem = keyA.publicKey.export({ type: 'spki', format: 'pem' }).toString();
      const confused = await signed({ aud: 'hooks', exp: nowSeconds() + 60 }, new TextEncoder().encode(pem), { alg: 'HS256' });
      assert.equal((await call('hooks.test', confused)).status, 401);
      const line = await proxy.waitForLine((l) => l.msg === 'auth failed' && l.route !== undefined && String(l.reason).includes('ALG_NOT_ALLOWED'));
      assert.equal(line.client, '127.0.0.50');
    });

    test('a rate limit keyed by a JWT claim counts each subject, wherever it comes from; a verified token is not trusted past its exp', async () => {
      const secret = new TextEncoder().encode(HS_SECRET);
      const alice = await signed({ sub: 'alice', exp: nowSeconds() + 60 }, secret, { alg: 'HS256' });
      const alice2 = await signed({ sub: 'alice', exp: nowSeconds() + 61 }, secret, { alg: 'HS256' });
      const bob = await signed({ sub: 'bob', exp: nowSeconds() + 60 }, secret, { alg: 'HS256' });
      const at = (from: string, token: string) => get(proxy.port, 'claim.test', from, { authorization: `Bearer ${token}` });
      assert.equal((await at('127.0.0.51', alice)).status, 200);
      assert.equal((await at('127.0.0.52', alice2)).status, 200, 'another token of the same subject, from another address');
      const refused = await at('127.0.0.53', alice);
      assert.equal(refused.status, 429, 'the subject is counted, not the address or the token');
      assert.equal(refused.headers['ratelimit-limit'], '2');
      assert.equal((await at('127.0.0.51', bob)).status, 200);
      // Without a valid token the claim limit is never reached: 401 first.
      assert.equal((await get(proxy.port, 'claim.test', '127.0.0.51')).status, 401);
      // A token expiring in 2 s passes now (and is remembered as verified) but not after its exp.
      const brief = await signed({ sub: 'carol', exp: nowSeconds() + 2 }, secret, { alg: 'HS256' });
      assert.equal((await at('127.0.0.54', brief)).status, 200);
      await sleep(2_100);
      assert.equal((await at('127.0.0.54', brief)).status, 401);
    });

    test('a JWT from a cookie: the auth cookie is removed before forwarding, the other cookies stay', async () => {
      const token = await signed({ sub: 'dave', exp: nowSeconds() + 60 }, new TextEncoder().encode(HS_SECRET), { alg: 'HS256' });
      assert.equal((await get(proxy.port, 'cookie.test', '127.0.0.56', { cookie: `theme=dark; session=${token}; lang=en` })).status, 200);
      assert.equal(upstream.requests.at(-1)?.headers.cookie, 'theme=dark; lang=en');
      assert.equal((await get(proxy.port, 'cookie.test', '127.0.0.56', { cookie: `session=${token}` })).status, 200);
      assert.equal(upstream.requests.at(-1)?.headers.cookie, undefined, 'no Cookie field when nothing is left');
      assert.equal((await get(proxy.port, 'cookie.test', '127.0.0.56', { cookie: 'session=forged.token.here' })).status, 401);
    });

    test('basic auth from an htpasswd file: its users pass, others and wrong passwords do not', async () => {
      const at = (authorization: string) => get(proxy.port, 'htpasswd.test', '127.0.0.55', { authorization });
      assert.equal((await at(basicOf('alice', PASSWORD))).status, 200);
      assert.equal((await at(basicOf('bob', 'bobs secret'))).status, 200);
      assert.equal(upstream.requests.at(-1)?.headers.authorization, undefined);
      assert.equal((await at(basicOf('bob', PASSWORD))).status, 401);
      assert.equal((await at(basicOf('carol', PASSWORD))).status, 401);
    });
  });
}

for (const runtime of RUNTIMES) {
  describe(`forward auth on ${runtime}`, () => {
    let upstream: Upstream;
    let service: Upstream;
    let proxy: ProxyHandle;
    before(async () => {
      upstream = await startUpstream();
      service = await startUpstream((req, res) => {
        const token = req.headers['x-token'];
        if (token === 'good') {
          res.writeHead(204, { 'x-user': 'alice', 'x-other': 'not copied' });
          res.end();
        } else if (token === 'slow') {
          setTimeout(() => {
            res.writeHead(200);
            res.end();
          }, 1_500).unref();
        } else {
          res.writeHead(401, { 'www-authenticate': 'Custom realm="sso"', 'content-type': 'text/plain', 'set-cookie': 'sso=retry' });
          res.end('go away, says the auth service\n');
        }
      });
      proxy = await startProxy(runtime, {
        routes: [
          { host: 'app.test', upstream: upstream.origin, auth: { forward: { url: `${service.origin}/verify`, copyHeaders: ['x-user'], timeoutMs: 500 } } },
          { host: 'down.test', upstream: upstream.origin, auth: { forward: { url: 'http://127.0.0.1:1/verify' } } },
        ],
      });
    });
    after(async () => {
      await proxy?.stop();
      await Promise.all([upstream?.close(), service?.close()]);
    });

    test('the service allows: its x-user reaches the upstream (a client-sent one never does); it saw the method and URI, no body', async () => {
      const from = service.requests.length;
      const r = await get(proxy.port, 'app.test', '127.0.0.60', { 'x-token': 'good', 'x-user': 'root' });
      assert.equal(r.status, 200);
      const seen = upstream.requests.at(-1);
      assert.equal(seen?.headers['x-user'], 'alice');
      assert.equal(seen?.headers['x-other'], undefined);
      const asked = service.requests[from];
      assert.equal(asked?.method, 'GET');
      assert.equal(asked?.url, '/verify');
      assert.equal(asked?.headers['x-forwarded-method'], 'GET');
      assert.equal(asked?.headers['x-forwarded-uri'], '/who');
      assert.equal(asked?.headers['x-forwarded-host'], 'app.test');
      assert.equal(asked?.headers['x-forwarded-for'], '127.0.0.60');
      assert.equal(asked?.headers['x-token'], 'good');
    });

    test('the service denies: its own status, fields and body reach the client; nothing reaches the upstream', async () => {
      const from = upstream.requests.length;
      const r = await get(proxy.port, 'app.test', '127.0.0.60', { 'x-token': 'bad' });
      assert.equal(r.status, 401);
      assert.equal(r.body, 'go away, says the auth service\n');
      assert.equal(r.headers['www-authenticate'], 'Custom realm="sso"');
      assert.deepEqual(r.headers['set-cookie'], ['sso=retry']);
      assert.equal(upstream.requests.length, from);
    });

    test('a service that times out is a 504 and one that is unreachable a 502: the door stays closed', async () => {
      const from = upstream.requests.length;
      const t0 = Date.now();
      const slow = await get(proxy.port, 'app.test', '127.0.0.60', { 'x-token': 'slow' });
      assert.equal(slow.status, 504);
      assert.ok(Date.now() - t0 < 1_400, 'answered at the 500 ms timeout, before the service');
      assert.equal((await get(proxy.port, 'down.test', '127.0.0.60')).status, 502);
      assert.equal(upstream.requests.length, from);
    });
  });
}

for (const runtime of RUNTIMES) {
  describe(`rate limits on ${runtime}`, () => {
    let upstream: Upstream;
    let proxy: ProxyHandle;
    before(async () => {
      upstream = await startUpstream();
      proxy = await startProxy(runtime, {
        trustedProxies: ['127.0.0.30'],
        routes: [
          { host: 'client.test', upstream: upstream.origin, rateLimit: { requests: 5, windowSeconds: 2 } },
          { host: 'key.test', upstream: upstream.origin, rateLimit: { requests: 3, windowSeconds: 60, key: { header: 'x-api-key' } } },
          { host: 'route.test', upstream: upstream.origin, rateLimit: { requests: 4, windowSeconds: 60, key: 'route' } },
          { host: 'burst.test', upstream: upstream.origin, rateLimit: { requests: 600, windowSeconds: 60, burst: 3 } },
          {
            host: 'guarded.test',
            upstream: upstream.origin,
            rateLimit: { requests: 2, windowSeconds: 60 },
            auth: { basic: { users: { alice: HASH } } },
          },
        ],
      });
    });
    after(async () => {
      await proxy?.stop();
      await upstream?.close();
    });

    test('per client: 5 in the window pass, the 6th gets 429 with Retry-After and RateLimit-*; the window slides', async () => {
      const from = upstream.requests.length;
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await get(proxy.port, 'client.test', '127.0.0.70')).status);
      const refused = await get(proxy.port, 'client.test', '127.0.0.70');
      assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
      assert.equal(refused.status, 429);
      assert.equal(refused.body, 'too many requests\n');
      assert.equal(refused.headers['ratelimit-limit'], '5');
      assert.equal(refused.headers['ratelimit-remaining'], '0');
      const reset = Number(refused.headers['retry-after']);
      assert.ok(reset >= 1 && reset <= 2, `Retry-After ${reset}`);
      assert.equal(refused.headers['ratelimit-reset'], refused.headers['retry-after']);
      assert.equal(upstream.requests.length - from, 5, 'the refused request never reached the upstream');
      // Another client has its own window.
      assert.equal((await get(proxy.port, 'client.test', '127.0.0.71')).status, 200);
      // Spoofed forwarding headers from an untrusted peer do not make a new client.
      assert.equal((await get(proxy.port, 'client.test', '127.0.0.70', { 'x-forwarded-for': '127.0.0.99', 'x-real-ip': '127.0.0.98' })).status, 429);
      // Behind the trusted proxy, each forwarded-for client counts on its own.
      for (let i = 0; i < 5; i++) assert.equal((await get(proxy.port, 'client.test', '127.0.0.30', { 'x-forwarded-for': '127.0.0.72' })).status, 200);
      assert.equal((await get(proxy.port, 'client.test', '127.0.0.30', { 'x-forwarded-for': '127.0.0.72' })).status, 429);
      assert.equal((await get(proxy.port, 'client.test', '127.0.0.30', { 'x-forwarded-for': '127.0.0.73' })).status, 200);
      await sleep(reset * 1000 + 100);
      assert.equal((await get(proxy.port, 'client.test', '127.0.0.70')).status, 200, 'the window moved on');
    });

    test('by a request field, and per route', async () => {
      for (let i = 0; i < 3; i++) assert.equal((await get(proxy.port, 'key.test', '127.0.0.74', { 'x-api-key': 'k1' })).status, 200);
      assert.equal((await get(proxy.port, 'key.test', '127.0.0.75', { 'x-api-key': 'k1' })).status, 429, 'the key, not the client, is counted');
      assert.equal((await get(proxy.port, 'key.test', '127.0.0.74', { 'x-api-key': 'k2' })).status, 200);
      for (let i = 0; i < 4; i++) assert.equal((await get(proxy.port, 'route.test', `127.0.0.${80 + i}`)).status, 200);
      assert.equal((await get(proxy.port, 'route.test', '127.0.0.85')).status, 429);
    });

    test('burst: 3 at once pass, the 4th waits for the next token (600 per 60 s: one each 100 ms)', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await get(proxy.port, 'burst.test', '127.0.0.76')).status);
      assert.deepEqual(statuses.slice(0, 3), [200, 200, 200]);
      assert.ok(statuses.slice(3).includes(429), `statuses ${statuses.join(', ')}`);
      const refused = await get(proxy.port, 'burst.test', '127.0.0.76');
      if (refused.status === 429) assert.equal(refused.headers['retry-after'], '1');
      await sleep(350);
      assert.equal((await get(proxy.port, 'burst.test', '127.0.0.76')).status, 200, 'tokens came back');
      assert.equal((await get(proxy.port, 'burst.test', '127.0.0.77')).status, 200, 'another client has its own bucket');
    });

    test('the limit comes before auth: refused guesses never reach the password check', async () => {
      const wrong = { authorization: basicOf('alice', 'guess') };
      assert.equal((await get(proxy.port, 'guarded.test', '127.0.0.90', wrong)).status, 401);
      assert.equal((await get(proxy.port, 'guarded.test', '127.0.0.90', wrong)).status, 401);
      assert.equal((await get(proxy.port, 'guarded.test', '127.0.0.90', wrong)).status, 429);
      assert.equal((await get(proxy.port, 'guarded.test', '127.0.0.90', { authorization: basicOf('alice', PASSWORD) })).status, 429);
      const failures = proxy.lines.filter((l) => l.msg === 'auth failed' && l.client === '127.0.0.90');
      assert.equal(failures.length, 2, 'the third guess was not checked');
    });
  });
}
