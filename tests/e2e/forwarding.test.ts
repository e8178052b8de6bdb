// Forwarding: the request line byte for byte, methods and bodies, compressed bodies untouched,
// hop-by-hop removal both ways, X-Forwarded-* / Forwarded, Host, repeated headers, no invented
// headers, redirects not followed, and the access log line.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  BR,
  forwardingHandler,
  GZ,
  headerValues,
  type ProxyHandle,
  type RawResponse,
  RUNTIMES,
  rawRequest,
  type SeenRequest,
  send,
  startProxy,
  startUpstream,
  type Upstream,
} from './harness.ts';

/** A raw request with exact bytes: request line, Host, extra header lines, optional body. */
function rawReq(
  port: number,
  opts: { method?: string; target: string; host?: string | null; headers?: string[]; body?: string; close?: boolean; idleMs?: number },
): Promise<RawResponse> {
  const lines = [`${opts.method ?? 'GET'} ${opts.target} HTTP/1.1`];
  if (opts.host !== null) lines.push(`Host: ${opts.host ?? 'fwd.test'}`);
  lines.push(...(opts.headers ?? []));
  if (opts.close !== false) lines.push('Connection: close');
  return rawRequest(port, `${lines.join('\r\n')}\r\n\r\n${opts.body ?? ''}`, { idleMs: opts.idleMs ?? 1500 });
}

const header = (r: RawResponse, name: string) => r.headers.filter(([n]) => n === name).map(([, v]) => v);
const last = (u: Upstream): SeenRequest => {
  const s = u.requests.at(-1);
  assert.ok(s, 'the upstream saw a request');
  return s;
};
const one = (s: SeenRequest, name: string): string[] => headerValues(s.rawHeaders, name);

// Runtime clients add User-Agent and Accept when absent (Bun's fetch does, docs/runtimes.md);
// every byte-exactness case runs with and without them, so neither can be invented or lost.
const VARIANTS: [string, string[]][] = [
  ['without User-Agent/Accept', []],
  ['with User-Agent/Accept', ['User-Agent: e2e/1.0', 'Accept: */*']],
];

for (const runtime of RUNTIMES) {
  describe(`forwarding on ${runtime}`, () => {
    describe('default config', () => {
      let up: Upstream;
      let proxy: ProxyHandle;
      before(async () => {
        up = await startUpstream(forwardingHandler);
        proxy = await startProxy(runtime, {
          routes: [
            { host: '*', upstream: up.origin },
            { host: 'up.test', upstream: up.origin, hostHeader: 'upstream' },
          ],
        });
      });
      after(async () => {
        await proxy?.stop();
        await up?.close();
      });

      for (const [label, extra] of VARIANTS) {
        for (const target of ['/a%2Fb', '//x', '/%7E', '/a/../b', '/./c', '/p?x=%7e&y=a%20b', '/q?a=/../b&c=%2F', '/x;p=1']) {
          test(`target ${target} is forwarded byte for byte (${label})`, async () => {
            const r = await rawReq(proxy.port, { target, headers: extra });
            assert.equal(r.status, 200, r.raw.toString('latin1'));
            assert.equal(last(up).url, target);
          });
        }

        test(`GET //evil.example/ reaches the configured upstream as //evil.example/ (${label})`, async () => {
          const before = up.requests.length;
          const r = await rawReq(proxy.port, { target: '//evil.example/', headers: extra });
          assert.equal(r.status, 200, r.raw.toString('latin1'));
          assert.equal(up.requests.length, before + 1);
          assert.equal(last(up).url, '//evil.example/');
          assert.equal(one(last(up), 'host')[0], 'fwd.test');
        });

        test(`Host: the client's Host by default, the upstream's with hostHeader: 'upstream' (${label})`, async () => {
          await rawReq(proxy.port, { target: '/h', host: 'Client.Example:8443', headers: extra });
          assert.deepEqual(one(last(up), 'host'), ['Client.Example:8443']);
          await rawReq(proxy.port, { target: '/h', host: 'up.test', headers: extra });
          assert.deepEqual(one(last(up), 'host'), [`127.0.0.1:${up.port}`]);
          // X-Forwarded-Host still names what the client asked for.
          assert.deepEqual(one(last(up), 'x-forwarded-host'), ['up.test']);
        });

        test(`several Set-Cookie headers stay separate (${label})`, async () => {
          const extraHeaders = Object.fromEntries(extra.map((l) => l.split(': ') as [string, string]));
          const r = await send(`${proxy.origin}/__/cookies`, { headers: { host: 'fwd.test', ...extraHeaders } });
          assert.equal(r.status, 200);
          assert.deepEqual(headerValues(r.rawHeaders, 'set-cookie'), ['a=1; Path=/', 'b=2; Path=/; HttpOnly']);
          assert.equal(r.body.toString(), 'ok');
        });

        test(`redirects are passed through, never followed (${label})`, async () => {
          for (const path of ['/__/redirect', '/__/redirect-abs']) {
            const before = up.requests.length;
            const r = await rawReq(proxy.port, { target: path, headers: extra });
            assert.equal(r.status, 302, r.raw.toString('latin1'));
            assert.match(header(r, 'location')[0] ?? '', /\/__\/target$/);
            assert.equal(up.requests.length, before + 1, 'exactly one request upstream');
          }
        });

        test(`duplicate request headers reach the upstream in order (${label})`, async () => {
          await rawReq(proxy.port, { target: '/dup', headers: [...extra, 'X-Dup: a', 'X-Other: o', 'X-Dup: b'] });
          assert.equal(one(last(up), 'x-dup').join(', '), 'a, b');
          assert.deepEqual(one(last(up), 'x-other'), ['o']);
        });
      }

      for (const [label, extra] of VARIANTS) {
        const extraHeaders = Object.fromEntries(extra.map((l) => l.split(': ') as [string, string]));
        for (const method of ['GET', 'DELETE', 'OPTIONS']) {
          test(`method ${method} is forwarded (${label})`, async () => {
            const r = await send(`${proxy.origin}/m?x=1`, { method, headers: { host: 'fwd.test', ...extraHeaders } });
            assert.equal(r.status, 200);
            assert.equal(last(up).method, method);
            assert.equal(last(up).url, '/m?x=1');
            assert.equal(last(up).bodyBytes, 0);
          });
        }

        for (const method of ['POST', 'PUT', 'PATCH']) {
          test(`method ${method} is forwarded with its body (${label})`, async () => {
            const body = `${method}-body-${'z'.repeat(5000)}`;
            const r = await send(`${proxy.origin}/m`, { method, headers: { host: 'fwd.test', 'content-type': 'text/plain', ...extraHeaders }, body });
            assert.equal(r.status, 200);
            const s = last(up);
            assert.equal(s.method, method);
            assert.equal(s.body.toString(), body);
            assert.deepEqual(one(s, 'content-type'), ['text/plain']);
          });
        }

        test(`HEAD keeps the upstream Content-Length and has no body (${label})`, async () => {
          const r = await rawReq(proxy.port, { method: 'HEAD', target: '/__/head', headers: extra });
          assert.equal(r.status, 200, r.raw.toString('latin1'));
          assert.equal(last(up).method, 'HEAD');
          assert.deepEqual(header(r, 'content-length'), ['1234']);
          assert.equal(r.body.length, 0);
        });

        test(`a chunked request body arrives intact, with one framing header (${label})`, async () => {
          const r = await rawReq(proxy.port, {
            method: 'POST',
            target: '/chunked',
            headers: [...extra, 'Transfer-Encoding: chunked'],
            body: '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
          });
          assert.equal(r.status, 200, r.raw.toString('latin1'));
          const s = last(up);
          assert.equal(s.body.toString(), 'hello world');
          const te = one(s, 'transfer-encoding');
          const cl = one(s, 'content-length');
          // The transport contract (src/transport/types.ts): a body without a Content-Length goes
          // out chunked; it is never buffered to count it.
          assert.deepEqual([te, cl], [['chunked'], []], `framing: te=${te} cl=${cl}`);
        });
      }

      for (const [label, extra] of VARIANTS) {
        test(`gzip body passes through unchanged (${label})`, async () => {
          const r = await rawReq(proxy.port, { target: '/__/gzip', headers: [...extra, 'Accept-Encoding: gzip'] });
          assert.equal(r.status, 200);
          assert.deepEqual(header(r, 'content-encoding'), ['gzip']);
          assert.deepEqual(header(r, 'content-length'), [String(GZ.length)]);
          assert.equal(header(r, 'transfer-encoding').length, 0);
          assert.ok(r.body.equals(GZ), `body: ${r.body.length} bytes vs ${GZ.length}`);
        });

        test(`br body passes through unchanged (${label})`, async () => {
          const r = await rawReq(proxy.port, { target: '/__/br', headers: [...extra, 'Accept-Encoding: br'] });
          assert.equal(r.status, 200);
          assert.deepEqual(header(r, 'content-encoding'), ['br']);
          assert.deepEqual(header(r, 'content-length'), [String(BR.length)]);
          assert.ok(r.body.equals(BR), `body: ${r.body.length} bytes vs ${BR.length}`);
        });

        test(`Accept-Encoding reaches the upstream unchanged, and is not invented (${label})`, async () => {
          await rawReq(proxy.port, { target: '/ae', headers: [...extra, 'Accept-Encoding: gzip;q=0.5, br, zstd'] });
          assert.deepEqual(one(last(up), 'accept-encoding'), ['gzip;q=0.5, br, zstd']);
          await rawReq(proxy.port, { target: '/ae', headers: extra });
          assert.deepEqual(one(last(up), 'accept-encoding'), []);
        });

        test(`hop-by-hop request headers are removed (${label})`, async () => {
          await rawReq(proxy.port, {
            target: '/hop-req',
            close: false,
            headers: [
              ...extra,
              'Connection: close, x-secret',
              'Keep-Alive: timeout=5',
              'Proxy-Connection: keep-alive',
              'TE: trailers, gzip',
              'Trailer: X-T',
              'Upgrade: h2c',
              'X-Secret: s',
              'X-Kept: k',
            ],
          });
          const s = last(up);
          assert.equal(s.url, '/hop-req');
          assert.deepEqual(one(s, 'x-kept'), ['k']);
          assert.deepEqual(one(s, 'x-secret'), [], 'a header named in Connection is removed');
          assert.deepEqual(one(s, 'keep-alive'), []);
          assert.deepEqual(one(s, 'proxy-connection'), []);
          assert.deepEqual(one(s, 'trailer'), []);
          assert.deepEqual(one(s, 'upgrade'), []);
          // TE goes too, "trailers" included: no runtime relays trailers to the client (README "Streaming").
          assert.deepEqual(one(s, 'te'), []);
          assert.deepEqual(one(s, 'transfer-encoding'), []);
          for (const v of one(s, 'connection')) assert.doesNotMatch(v, /x-secret/i);
        });

        test(`TE without trailers is removed entirely (${label})`, async () => {
          await rawReq(proxy.port, { target: '/te', headers: [...extra, 'TE: gzip, deflate'] });
          assert.deepEqual(one(last(up), 'te'), []);
        });

        test(`hop-by-hop response headers are removed (${label})`, async () => {
          const r = await rawReq(proxy.port, { target: '/__/hop', headers: extra });
          assert.equal(r.status, 200);
          assert.deepEqual(header(r, 'x-public'), ['yes']);
          assert.deepEqual(header(r, 'x-private'), [], 'a header named in Connection is removed');
          assert.deepEqual(header(r, 'proxy-connection'), []);
          assert.deepEqual(header(r, 'upgrade'), []);
          for (const v of header(r, 'connection')) assert.doesNotMatch(v, /x-private/i);
          assert.equal(r.body.toString(), 'hop');
        });

        test(`Trailer and Keep-Alive response headers from the upstream are removed (${label})`, async () => {
          const r = await rawReq(proxy.port, { target: '/__/trailer', headers: extra });
          assert.equal(r.status, 200);
          assert.deepEqual(header(r, 'trailer'), []);
          // The client asked for Connection: close, so no Keep-Alive of the proxy's own either.
          assert.deepEqual(header(r, 'keep-alive'), []);
          assert.match(r.body.toString('latin1'), /tr[\s\S]*ailer/);
        });

        test(`every Connection header line names fields to remove (${label})`, async () => {
          await rawReq(proxy.port, {
            target: '/conn2',
            close: false,
            headers: [...extra, 'Connection: keep-alive', 'Connection: X-Secret-A', 'X-Secret-A: a', 'X-Secret-B: b', 'Connection: close, x-secret-b'],
          });
          const s = last(up);
          assert.deepEqual(one(s, 'x-secret-a'), []);
          assert.deepEqual(one(s, 'x-secret-b'), []);
        });

        test(`no header is invented when the client sent only Host (${label})`, async () => {
          // Host, the proxy's own X-Forwarded-* and X-Request-Id (plus the variant's two
          // headers); no body framing for a GET without a body, on any runtime. Connection is
          // the one exception: undici (Node, Deno) sends `keep-alive` on every request
          // (docs/runtimes.md), redundant in HTTP/1.1 (RFC 9112 §9.3); nothing else may be in it.
          await rawReq(proxy.port, { target: '/bare', headers: extra, close: false, idleMs: 800 });
          const s = last(up);
          const allowed = new Set(['host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id', 'connection']);
          for (const l of extra) allowed.add(l.split(':')[0]!.toLowerCase());
          const names = s.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
          assert.deepEqual(
            names.filter((n) => !allowed.has(n)),
            [],
            `upstream saw ${JSON.stringify(s.rawHeaders)}`,
          );
          if (extra.length) {
            assert.deepEqual(one(s, 'user-agent'), ['e2e/1.0']);
            assert.deepEqual(one(s, 'accept'), ['*/*']);
          }
          assert.deepEqual(
            one(s, 'connection').filter((v) => v !== 'keep-alive'),
            [],
          );
        });
      }

      test('a client cannot strip the proxy headers through Connection', async () => {
        await rawReq(proxy.port, { target: '/conn', close: false, headers: ['Connection: x-forwarded-for, x-forwarded-proto, x-request-id, close'] });
        const s = last(up);
        assert.deepEqual(one(s, 'x-forwarded-for'), ['127.0.0.1']);
        assert.deepEqual(one(s, 'x-forwarded-proto'), ['http']);
        assert.equal(one(s, 'x-request-id').length, 1);
      });

      test('untrusted client: X-Forwarded-* replaced, Forwarded removed', async () => {
        await rawReq(proxy.port, {
          target: '/xff',
          headers: ['X-Forwarded-For: 6.6.6.6', 'X-Forwarded-Proto: https', 'X-Forwarded-Host: evil.example', 'Forwarded: for=6.6.6.6;proto=https'],
        });
        const s = last(up);
        assert.deepEqual(one(s, 'x-forwarded-for'), ['127.0.0.1']);
        assert.deepEqual(one(s, 'x-forwarded-proto'), ['http']);
        assert.deepEqual(one(s, 'x-forwarded-host'), ['fwd.test']);
        assert.deepEqual(one(s, 'forwarded'), []);
      });

      test('untrusted client: a client X-Request-Id is not believed', async () => {
        await rawReq(proxy.port, { target: '/rid', headers: ['X-Request-Id: from-client'] });
        const ids = one(last(up), 'x-request-id');
        assert.equal(ids.length, 1);
        assert.notEqual(ids[0], 'from-client');
      });

      test('access log line for a request, and X-Request-Id equals its request_id', async () => {
        const path = `/log-${Date.now()}?q=1`;
        const r = await send(`${proxy.origin}${path}`, { headers: { host: 'fwd.test' } });
        assert.equal(r.status, 200);
        const line = await proxy.waitForLine((l) => l.msg === 'access' && l.path === path, 5000);
        for (const f of ['time', 'client', 'method', 'host', 'path', 'status', 'bytes', 'duration_ms', 'upstream', 'request_id']) {
          assert.ok(f in line, `field ${f} in ${JSON.stringify(line)}`);
        }
        assert.ok(!Number.isNaN(Date.parse(line.time)), `time ${line.time}`);
        assert.equal(line.client, '127.0.0.1');
        assert.equal(line.method, 'GET');
        assert.equal(line.host, 'fwd.test');
        assert.equal(line.status, 200);
        assert.equal(line.bytes, r.body.length);
        assert.equal(typeof line.duration_ms, 'number');
        assert.ok((line.duration_ms as number) >= 0);
        assert.equal(line.upstream, up.origin);
        assert.equal(typeof line.request_id, 'string');
        assert.ok((line.request_id as string).length > 0);
        const s = last(up);
        assert.equal(s.url, path);
        assert.deepEqual(one(s, 'x-request-id'), [line.request_id]);
      });
    });

    describe('forwarded: true, untrusted client', () => {
      let up: Upstream;
      let proxy: ProxyHandle;
      before(async () => {
        up = await startUpstream(forwardingHandler);
        proxy = await startProxy(runtime, { forwarded: true, routes: [{ host: '*', upstream: up.origin }] });
      });
      after(async () => {
        await proxy?.stop();
        await up?.close();
      });

      test('adds Forwarded for this hop and removes the client one', async () => {
        await rawReq(proxy.port, { target: '/f', headers: ['Forwarded: for=6.6.6.6;proto=https', 'X-Forwarded-For: 6.6.6.6'] });
        const s = last(up);
        assert.deepEqual(one(s, 'forwarded'), ['for=127.0.0.1;host=fwd.test;proto=http']);
        assert.deepEqual(one(s, 'x-forwarded-for'), ['127.0.0.1']);
      });

      test('adds Forwarded when the client sent none', async () => {
        await rawReq(proxy.port, { target: '/f2', host: 'a.example:8080' });
        assert.deepEqual(one(last(up), 'forwarded'), ['for=127.0.0.1;host="a.example:8080";proto=http']);
      });
    });

    describe('trustedProxies and forwarded: true', () => {
      let up: Upstream;
      let proxy: ProxyHandle;
      before(async () => {
        up = await startUpstream(forwardingHandler);
        proxy = await startProxy(runtime, { trustedProxies: ['127.0.0.0/8'], forwarded: true, routes: [{ host: '*', upstream: up.origin }] });
      });
      after(async () => {
        await proxy?.stop();
        await up?.close();
      });

      test('a trusted Forwarded header is extended with this hop', async () => {
        await rawReq(proxy.port, { target: '/tf', headers: ['Forwarded: for=6.6.6.6;proto=https', 'X-Forwarded-For: 6.6.6.6'] });
        const s = last(up);
        assert.deepEqual(one(s, 'forwarded'), ['for=6.6.6.6;proto=https, for=127.0.0.1;host=fwd.test;proto=http']);
        assert.deepEqual(one(s, 'x-forwarded-for'), ['6.6.6.6, 127.0.0.1']);
      });
    });

    describe('trustedProxies: 127.0.0.1/32', () => {
      let up: Upstream;
      let proxy: ProxyHandle;
      before(async () => {
        up = await startUpstream(forwardingHandler);
        proxy = await startProxy(runtime, { trustedProxies: ['127.0.0.1/32'], routes: [{ host: '*', upstream: up.origin }] });
      });
      after(async () => {
        await proxy?.stop();
        await up?.close();
      });

      test('X-Forwarded-For is appended, X-Forwarded-Proto/Host and Forwarded are kept', async () => {
        await rawReq(proxy.port, {
          target: '/t',
          headers: ['X-Forwarded-For: 6.6.6.6', 'X-Forwarded-Proto: https', 'X-Forwarded-Host: public.example', 'Forwarded: for=6.6.6.6;proto=https'],
        });
        const s = last(up);
        assert.deepEqual(one(s, 'x-forwarded-for'), ['6.6.6.6, 127.0.0.1']);
        assert.deepEqual(one(s, 'x-forwarded-proto'), ['https']);
        assert.deepEqual(one(s, 'x-forwarded-host'), ['public.example']);
        assert.deepEqual(one(s, 'forwarded'), ['for=6.6.6.6;proto=https']);
      });

      test('without client values the proxy supplies its own', async () => {
        await rawReq(proxy.port, { target: '/t2' });
        const s = last(up);
        assert.deepEqual(one(s, 'x-forwarded-for'), ['127.0.0.1']);
        assert.deepEqual(one(s, 'x-forwarded-proto'), ['http']);
        assert.deepEqual(one(s, 'x-forwarded-host'), ['fwd.test']);
        assert.deepEqual(one(s, 'forwarded'), []);
      });

      test('repeated X-Forwarded-For lines are joined in order before appending', async () => {
        await rawReq(proxy.port, { target: '/t3', headers: ['X-Forwarded-For: 1.1.1.1', 'X-Forwarded-For: 2.2.2.2'] });
        assert.deepEqual(one(last(up), 'x-forwarded-for'), ['1.1.1.1, 2.2.2.2, 127.0.0.1']);
      });

      test('a tame client X-Request-Id is kept and logged', async () => {
        await rawReq(proxy.port, { target: '/rid-trusted', headers: ['X-Request-Id: trusted-id.1'] });
        assert.deepEqual(one(last(up), 'x-request-id'), ['trusted-id.1']);
        const line = await proxy.waitForLine((l) => l.msg === 'access' && l.path === '/rid-trusted', 5000);
        assert.equal(line.request_id, 'trusted-id.1');
      });
    });
  });
}
