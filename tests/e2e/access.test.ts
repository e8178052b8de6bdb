// Access control (issue 11), part one: who the client is, and a route's allow / deny, on all
// three runtimes. Clients connect from several loopback addresses (127.0.0.10-39: Linux routes
// all of 127.0.0.0/8 to lo), and one of them acts as a trusted front proxy.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import bcrypt from 'bcryptjs';
import { type ProxyHandle, RUNTIMES, startProxy, startUpstream, type Upstream } from './harness.ts';

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
