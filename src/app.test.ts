// The app in-process: the real middleware chain with an injected transport and log sink.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createApp } from './app.ts';
import type { ConnInfo } from './app-env.ts';
import { compileConfig } from './config/compile.ts';
import type { Config } from './config/types.ts';
import { createLogger } from './log/logger.ts';
import type { Transport, UpstreamInit } from './transport/types.ts';

const conn: ConnInfo = { remoteAddr: '192.0.2.1', proto: 'http' };

function setup(config: Config, transport: Transport) {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    write: (text) =>
      lines.push(
        ...text
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l)),
      ),
  });
  const app = createApp({ config: compileConfig(config), transport, logger });
  // A Request built from a URL has no Host header; a real listener always provides one.
  const request = async (url: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (!headers.has('host')) headers.set('host', new URL(url).host);
    const res = await app.request(url, { ...init, headers }, conn);
    logger.flush();
    return res;
  };
  return { request, lines };
}

const echo: Transport = async (url, init) =>
  new Response(JSON.stringify({ url, host: init.headers.get('host'), xff: init.headers.get('x-forwarded-for') }), {
    headers: { 'content-type': 'application/json', 'content-length': '1' },
  });
const seed: Config = {
  routes: [
    { host: 'sub1.xyz.com', upstream: 'http://localhost:8080' },
    { host: '*.xyz.com', upstream: 'http://localhost:8181', hostHeader: 'upstream' },
    { host: 'api.test', path: '/api', stripPrefix: true, upstream: 'http://localhost:9000' },
  ],
};

test('routes by host and builds the upstream URL from origin + raw target', async () => {
  const seen: string[] = [];
  const { request } = setup(seed, async (url, init) => {
    seen.push(`${url} ${init.headers.get('host')}`);
    return new Response('ok');
  });
  await request('http://sub1.xyz.com/a%2Fb?x=%7E');
  await request('http://a.b.xyz.com:4433/p');
  await request('http://api.test/api/v1?q');
  await request('http://api.test/api');
  assert.deepEqual(seen, [
    'http://localhost:8080/a%2Fb?x=%7E sub1.xyz.com',
    'http://localhost:8181/p localhost:8181',
    'http://localhost:9000/v1?q api.test',
    'http://localhost:9000/ api.test',
  ]);
});

test('no route: 421 and nothing forwarded; bad Host: 400', async () => {
  let calls = 0;
  const { request, lines } = setup(seed, async () => {
    calls++;
    return new Response('');
  });
  const miss = await request('http://nowhere.test/');
  assert.equal(miss.status, 421);
  assert.match(await miss.text(), /no route for host nowhere.test/);
  const bad = await request('http://sub1.xyz.com/', { headers: { host: 'a.com, b.com' } });
  assert.equal(bad.status, 400);
  assert.equal(calls, 0);
  assert.equal(lines.filter((l) => l.msg === 'access').length, 2);
  assert.equal(lines[0]?.status, 421);
});

test('upstream failures map to 502 and 504 with the upstream in the log', async () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  const { request, lines } = setup(seed, async () => {
    throw refused;
  });
  const res = await request('http://sub1.xyz.com/');
  assert.equal(res.status, 502);
  assert.equal(await res.text(), 'bad gateway\n');
  assert.equal(lines[0]?.upstream, 'http://localhost:8080');
  assert.match(String(lines[0]?.error), /upstream http:\/\/localhost:8080 refused/);

  const never: Transport = (_url, init: UpstreamInit) => new Promise((_, reject) => init.signal.addEventListener('abort', () => reject(init.signal.reason)));
  const slow = setup({ routes: [{ host: '*', upstream: 'http://localhost:1', timeoutMs: 20 }] }, never);
  const timed = await slow.request('http://x.test/');
  assert.equal(timed.status, 504);
  assert.match(String(slow.lines[0]?.error), /no response head within 20 ms/);
});

test('body limit: declared length over the limit is 413 before any upstream call', async () => {
  let calls = 0;
  const { request } = setup({ routes: [{ host: '*', upstream: 'http://localhost:1', maxBodyBytes: 10 }] }, async () => {
    calls++;
    return new Response('');
  });
  const res = await request('http://x.test/', { method: 'POST', body: 'x'.repeat(11), headers: { 'content-length': '11' } });
  assert.equal(res.status, 413);
  assert.equal(calls, 0);
});

test('URL limit: 414; HTTP/0.9 request lines: 400', async () => {
  const { request } = setup({ routes: [{ host: '*', upstream: 'http://localhost:1' }], limits: { maxUrlBytes: 300 } }, echo);
  assert.equal((await request(`http://x.test/${'a'.repeat(300)}`)).status, 414);
  assert.equal((await request(`http://x.test/${'a'.repeat(200)}`)).status, 200);
});

test('header limit: 431', async () => {
  const { request } = setup({ routes: [{ host: '*', upstream: 'http://localhost:1' }], limits: { maxHeaderBytes: 1024 } }, echo);
  const res = await request('http://x.test/', { headers: { big: 'x'.repeat(2000) } });
  assert.equal(res.status, 431);
});

test('streamed responses are logged once, with their byte count, when they end', async () => {
  const { request, lines } = setup({ routes: [{ host: '*', upstream: 'http://localhost:1' }] }, async () => new Response(new Blob(['abc', 'defg']).stream()));
  const res = await request('http://x.test/s');
  assert.equal(await res.text(), 'abcdefg');
  await new Promise((r) => setTimeout(r, 5));
  const access = lines.filter((l) => l.msg === 'access');
  assert.equal(access.length, 1);
  assert.equal(access[0]?.bytes, 7);
  assert.equal(access[0]?.path, '/s');
});
