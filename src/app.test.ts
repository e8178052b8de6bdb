// The app in-process: the real middleware chain with an injected transport and log sink.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gate, until, within } from '../tests/support/wait.ts';
import { createApp } from './app.ts';
import type { Bindings, ConnInfo } from './app-env.ts';
import { compileConfig } from './config/compile.ts';
import { createConfigSource } from './config/source.ts';
import type { Config } from './config/types.ts';
import type { AccessEntry } from './log/access-log.ts';
import { createLogger } from './log/logger.ts';
import { type Transport, UpstreamError, type UpstreamInit } from './transport/types.ts';

const conn: ConnInfo = { remoteAddr: '192.0.2.1', proto: 'http', listener: 'http' };

/** A Transport whose `fetch` is the test's; upgrades are not part of these cases. */
function transportOf(fetch: Transport['fetch']): Transport {
  return { name: 'fake', fetch, upgrade: () => Promise.reject(new Error('no upgrades here')), close: async () => {} };
}

function setup(config: Config, fetch: Transport['fetch']) {
  const lines: Record<string, unknown>[] = [];
  const entries: AccessEntry[] = [];
  const logger = createLogger({
    write: (text) =>
      lines.push(
        ...text
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l)),
      ),
  });
  const source = createConfigSource(compileConfig(config));
  const app = createApp({ config: source, transport: transportOf(fetch), logger, onAccess: (entry) => entries.push(entry) });
  // A Request built from a URL has no Host header; a real listener always provides one
  // (`withHost: false` sends none, as an HTTP/1.0 client may).
  const request = async (url: string, init: RequestInit = {}, env: Bindings = { conn }, withHost = true) => {
    const headers = new Headers(init.headers);
    if (withHost && !headers.has('host')) headers.set('host', new URL(url).host);
    const res = await app.request(url, { ...init, headers }, env);
    logger.flush();
    return res;
  };
  const access = () => {
    logger.flush();
    return lines.filter((l) => l.msg === 'access');
  };
  return { request, lines, access, entries, source };
}

const echo: Transport['fetch'] = async (url, init) => {
  const text = JSON.stringify({ url, host: init.headers.get('host'), xff: init.headers.get('x-forwarded-for') });
  return new Response(text, { headers: { 'content-type': 'application/json', 'content-length': String(new TextEncoder().encode(text).byteLength) } });
};
const seed: Config = {
  routes: [
    { host: 'sub1.xyz.com', upstream: 'http://localhost:8080' },
    { host: '*.xyz.com', upstream: 'http://localhost:8181', hostHeader: 'upstream' },
    { host: 'api.test', path: '/api', stripPrefix: true, upstream: 'http://localhost:9000' },
  ],
};
const any = (extra: Partial<Config> = {}): Config => ({ routes: [{ host: '*', upstream: 'http://localhost:1' }], ...extra });
const stale = () => new UpstreamError('socket closed', 'ECONNRESET', { connectFailed: false, reusedConnection: true, responseStarted: false });

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

test('the request line wins over the Request: exact method and raw target go upstream', async () => {
  const seen: string[] = [];
  const { request, access } = setup(seed, async (url, init) => {
    seen.push(`${init.method} ${url}`);
    return new Response('ok', { headers: { 'content-length': '2' } });
  });
  // Bun's Request turns unknown methods into GET and resolves dot segments; the line has them as sent.
  await request('http://sub1.xyz.com/b', {}, { conn, line: { method: 'PURGE-ALL', target: '/a/../b', version: '1.1' } });
  assert.deepEqual(seen, ['PURGE-ALL http://localhost:8080/a/../b']);
  assert.equal(access()[0]?.method, 'PURGE-ALL');
  assert.equal(access()[0]?.path, '/a/../b');
});

test('no route: 421 and nothing forwarded; bad Host: 400', async () => {
  let calls = 0;
  const { request, access } = setup(seed, async () => {
    calls++;
    return new Response('');
  });
  const miss = await request('http://nowhere.test/');
  assert.equal(miss.status, 421);
  assert.equal(await miss.text(), 'misdirected request: no route for host nowhere.test\n');
  const bad = await request('http://sub1.xyz.com/', { headers: { host: 'a.com, b.com' } });
  assert.equal(bad.status, 400);
  assert.equal(await bad.text(), 'bad request: invalid Host header\n');
  assert.equal(calls, 0);
  const lines = access();
  assert.equal(lines.length, 2);
  assert.equal(lines[0]?.status, 421);
  assert.equal(lines[0]?.error, 'misdirected request: no route for host nowhere.test');
  assert.equal(lines[1]?.error, 'bad request: invalid Host header');
});

test('upstream failures map to 502 and 504 with the upstream in the log', async () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  const { request, access } = setup(seed, async () => {
    throw refused;
  });
  const res = await request('http://sub1.xyz.com/');
  assert.equal(res.status, 502);
  assert.equal(await res.text(), 'bad gateway\n');
  assert.equal(access()[0]?.upstream, 'http://localhost:8080');
  assert.match(String(access()[0]?.error), /upstream http:\/\/localhost:8080 refused/);

  const never: Transport['fetch'] = (_url, init: UpstreamInit) =>
    new Promise((_, reject) => init.signal.addEventListener('abort', () => reject(init.signal.reason)));
  const slow = setup({ routes: [{ host: '*', upstream: 'http://localhost:1', timeoutMs: 20 }] }, never);
  const timed = await slow.request('http://x.test/');
  assert.equal(timed.status, 504);
  assert.equal(await timed.text(), 'gateway timeout\n');
  assert.match(String(slow.access()[0]?.error), /no response head within 20 ms/);
});

test('body limit: declared length over the limit is 413 before any upstream call', async () => {
  let calls = 0;
  const { request } = setup({ routes: [{ host: '*', upstream: 'http://localhost:1', maxBodyBytes: 10 }] }, async () => {
    calls++;
    return new Response('');
  });
  const res = await request('http://x.test/', { method: 'POST', body: 'x'.repeat(11), headers: { 'content-length': '11' } });
  assert.equal(res.status, 413);
  assert.equal(await res.text(), 'payload too large\n');
  assert.equal(calls, 0);
});

test('URL limit: 414; an HTTP/0.9 request line (Node accepts one): 400', async () => {
  const { request } = setup(any({ limits: { maxUrlBytes: 300 } }), echo);
  assert.equal((await request(`http://x.test/${'a'.repeat(300)}`)).status, 414);
  assert.equal((await request(`http://x.test/${'a'.repeat(200)}`)).status, 200);
  const old = await request('http://x.test/', {}, { conn, line: { method: 'GET', target: '/', version: '0.9' } });
  assert.equal(old.status, 400);
  assert.equal(await old.text(), 'bad request: unsupported HTTP version\n');
});

test('header limit: 431', async () => {
  const { request } = setup(any({ limits: { maxHeaderBytes: 1024 } }), echo);
  const res = await request('http://x.test/', { headers: { big: 'x'.repeat(2000) } });
  assert.equal(res.status, 431);
  assert.equal(await res.text(), 'request header fields too large\n');
});

test('the echo fixture frames its body with the right Content-Length', async () => {
  const { request } = setup(seed, echo);
  const res = await request('http://sub1.xyz.com/e');
  const text = await res.text();
  assert.equal(Number(res.headers.get('content-length')), new TextEncoder().encode(text).byteLength);
  assert.equal(JSON.parse(text).url, 'http://localhost:8080/e');
});

test('streamed responses are logged once, with their byte count, when they end', async () => {
  const { request, access } = setup(any(), async () => new Response(new Blob(['abc', 'defg']).stream()));
  const res = await request('http://x.test/s');
  assert.equal(await res.text(), 'abcdefg');
  await until(() => access().length > 0, 2000, 'the access line of a streamed response');
  const lines = access();
  assert.equal(lines.length, 1);
  assert.equal(lines[0]?.bytes, 7);
  assert.equal(lines[0]?.path, '/s');
});

test('a stale pooled connection: one retry, on a fresh connection, for an idempotent bodiless request', async () => {
  const inits: UpstreamInit[] = [];
  const { request, access } = setup(any(), async (_url, init) => {
    inits.push(init);
    if (inits.length === 1) throw stale();
    return new Response('ok', { headers: { 'content-length': '2' } });
  });
  const res = await request('http://x.test/r');
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'ok');
  assert.equal(inits.length, 2);
  assert.equal(inits[0]?.fresh, undefined);
  assert.equal(inits[1]?.fresh, true);
  assert.equal(inits[1]?.method, 'GET');
  assert.equal(inits[1]?.body, null);
  assert.equal(access()[0]?.error, undefined);
});

test('stale twice: still one retry only, then 502', async () => {
  let calls = 0;
  const { request, access } = setup(any(), async () => {
    calls++;
    throw stale();
  });
  assert.equal((await request('http://x.test/')).status, 502);
  assert.equal(calls, 2);
  assert.match(String(access()[0]?.error), /failed before responding \(ECONNRESET\)/);
});

/** An app whose transport always fails with `error()`, counting the attempts. */
function alwaysFailing(error: () => Error) {
  let attempts = 0;
  const { request } = setup(any(), async () => {
    attempts++;
    throw error();
  });
  return {
    /** The status of `init` sent once, and how many attempts it took. */
    async send(init: RequestInit): Promise<[number, number]> {
      attempts = 0;
      const status = (await request('http://x.test/', init)).status;
      return [status, attempts];
    },
  };
}

test('no retry of a stale connection for POST, nor for any request with a body', async () => {
  const app = alwaysFailing(stale);
  assert.deepEqual(await app.send({ method: 'POST' }), [502, 1]);
  assert.deepEqual(await app.send({ method: 'PUT', body: 'abc', headers: { 'content-length': '3' } }), [502, 1]);
});

test('a failed connect is not retried against the same upstream (502 after one attempt), with or without a body', async () => {
  const app = alwaysFailing(() => new UpstreamError('refused', 'ECONNREFUSED', { connectFailed: true, reusedConnection: false, responseStarted: false }));
  assert.deepEqual(await app.send({ method: 'GET' }), [502, 1]);
  assert.deepEqual(await app.send({ method: 'POST', body: 'x', headers: { 'content-length': '1' } }), [502, 1]);
});

test('no retry once the timeout fired or the client left', async () => {
  let calls = 0;
  const failAfterAbort: Transport['fetch'] = (_url, init) => {
    calls++;
    // Fails as a stale connection would, but only after the signal fired.
    return new Promise((_, reject) => init.signal.addEventListener('abort', () => reject(stale())));
  };
  const slow = setup({ routes: [{ host: '*', upstream: 'http://localhost:1', timeoutMs: 10 }] }, failAfterAbort);
  assert.equal((await slow.request('http://x.test/')).status, 504);
  assert.equal(calls, 1);

  calls = 0;
  const left = setup(any(), failAfterAbort);
  const client = new AbortController();
  const pending = left.request('http://x.test/', { signal: client.signal });
  await until(() => calls === 1, 2000, 'the first attempt');
  client.abort();
  const res = await within(pending, 2000, 'the answer after the client left');
  assert.equal(res.status, 499);
  assert.equal(calls, 1);
  assert.equal(left.access()[0]?.error, 'client closed the connection');
});

test('onAccess receives one typed entry per request, the same facts as the line', async () => {
  const { request, entries, access } = setup(seed, echo);
  await request('http://sub1.xyz.com/p?q=1', { headers: { 'user-agent': 't' } });
  await request('http://nowhere.test/');
  assert.equal(entries.length, 2);
  const [ok, miss] = entries;
  assert.equal(ok?.method, 'GET');
  assert.equal(ok?.client, '192.0.2.1');
  assert.equal(ok?.host, 'sub1.xyz.com');
  assert.equal(ok?.path, '/p?q=1');
  assert.equal(ok?.status, 200);
  assert.equal(ok?.upstream, 'http://localhost:8080');
  assert.equal(ok?.route, 'sub1.xyz.com/');
  assert.equal(ok?.error, null);
  assert.equal(typeof ok?.time, 'number');
  assert.equal(typeof ok?.duration_ms, 'number');
  assert.equal(miss?.status, 421);
  assert.equal(miss?.route, null);
  assert.equal(miss?.upstream, null);
  assert.match(String(miss?.error), /no route for host nowhere.test/);
  const line = access()[0] as Record<string, unknown>;
  assert.equal(line.request_id, ok?.request_id);
  assert.equal(line.bytes, ok?.bytes);
  // The line keeps its documented fields, in order (README "Logs").
  assert.deepEqual(Object.keys(line), [
    'time',
    'level',
    'msg',
    'client',
    'scheme',
    'version',
    'method',
    'host',
    'path',
    'status',
    'bytes',
    'duration_ms',
    'upstream',
    'request_id',
  ]);
});

test('a throwing subscriber does not break the answer', async () => {
  const logger = createLogger({ write: () => {} });
  const app = createApp({
    config: createConfigSource(compileConfig(any())),
    transport: transportOf(async () => new Response('ok', { headers: { 'content-length': '2' } })),
    logger,
    onAccess: () => {
      throw new Error('subscriber bug');
    },
  });
  const res = await app.request('http://x.test/', { headers: { host: 'x.test' } }, { conn });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'ok');
});

test('every answer the proxy makes itself names its error in the access line', async () => {
  const client = new AbortController();
  let started = 0;
  const cases: {
    name: string;
    status: number;
    body: string;
    config?: Config;
    init?: RequestInit;
    env?: Bindings;
    url?: string;
    fetch?: Transport['fetch'];
    noHost?: boolean;
  }[] = [
    { name: 'version', status: 400, body: 'bad request: unsupported HTTP version', env: { conn, line: { method: 'GET', target: '/', version: '0.9' } } },
    {
      name: 'no host',
      status: 400,
      body: 'bad request: missing Host header',
      env: { conn, line: { method: 'GET', target: '/', version: '1.0' } },
      noHost: true,
    },
    { name: 'bad host', status: 400, body: 'bad request: invalid Host header', init: { headers: { host: 'a b' } } },
    {
      name: 'authority',
      status: 400,
      body: 'bad request: request target does not match Host',
      env: { conn, line: { method: 'GET', target: 'http://other.test/', version: '1.1' } },
    },
    { name: 'length', status: 400, body: 'bad request: invalid Content-Length', init: { method: 'POST', body: 'abc', headers: { 'content-length': '3, 3' } } },
    { name: 'uri', status: 414, body: 'uri too long', config: any({ limits: { maxUrlBytes: 10 } }), url: 'http://x.test/0123456789' },
    {
      name: 'route',
      status: 421,
      body: 'misdirected request: no route for host x.test',
      config: { routes: [{ host: 'y.test', upstream: 'http://localhost:1' }] },
    },
    {
      name: 'fields',
      status: 431,
      body: 'request header fields too large',
      config: any({ limits: { maxHeaderBytes: 1024 } }),
      init: { headers: { big: 'x'.repeat(2000) } },
    },
    { name: 'coding', status: 501, body: 'not implemented: transfer coding', init: { method: 'POST', body: 'abc', headers: { 'transfer-encoding': 'gzip' } } },
    {
      name: 'body',
      status: 413,
      body: 'payload too large',
      config: { routes: [{ host: '*', upstream: 'http://localhost:1', maxBodyBytes: 2 }] },
      init: { method: 'POST', body: 'abc', headers: { 'content-length': '3' } },
    },
    {
      name: 'client left',
      status: 499,
      body: 'client closed request',
      init: { signal: client.signal },
      fetch: (_url, init) => {
        started++;
        queueMicrotask(() => client.abort());
        return new Promise((_, reject) => init.signal.addEventListener('abort', () => reject(init.signal.reason)));
      },
    },
    {
      name: 'refused',
      status: 502,
      body: 'bad gateway',
      fetch: async () => {
        throw Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
      },
    },
    {
      name: 'timeout',
      status: 504,
      body: 'gateway timeout',
      config: { routes: [{ host: '*', upstream: 'http://localhost:1', timeoutMs: 5 }] },
      fetch: (_url, init) => new Promise((_, reject) => init.signal.addEventListener('abort', () => reject(init.signal.reason))),
    },
    // A transport breaking its contract is a bug: 500.
    { name: 'internal', status: 500, body: 'internal error', fetch: async () => null as unknown as Response },
  ];
  for (const c of cases) {
    const { request, access, lines } = setup(c.config ?? any(), c.fetch ?? echo);
    const res = await within(request(c.url ?? 'http://x.test/', c.init, c.env, !c.noHost), 2000, c.name);
    assert.equal(res.status, c.status, c.name);
    assert.equal(await res.text(), `${c.body}\n`, c.name);
    const line = access()[0];
    assert.ok(line, `${c.name}: an access line`);
    assert.equal(line.status, c.status, c.name);
    assert.equal(typeof line.error, 'string', `${c.name}: ${JSON.stringify(line)}`);
    if (c.name === 'internal') assert.ok(lines.some((l) => l.msg === 'internal error' && l.request_id === line.request_id));
  }
  assert.equal(started, 1);
});

test('a config swap mid-flight leaves the request in progress on its route', async () => {
  const held = gate();
  const seen: string[] = [];
  const { request, source, entries } = setup({ routes: [{ host: '*', upstream: 'http://localhost:1' }] }, async (url) => {
    seen.push(url);
    if (seen.length === 1) await held.wait;
    return new Response(url, { headers: { 'content-length': String(url.length) } });
  });
  const first = request('http://x.test/a');
  await until(() => seen.length === 1, 2000, 'the first request in flight');
  source.swap(
    compileConfig({
      routes: [
        { host: '*', path: '/', upstream: 'http://localhost:2' },
        { host: 'x.test', upstream: 'http://localhost:3' },
      ],
    }),
  );
  const second = await request('http://x.test/b');
  assert.equal(await second.text(), 'http://localhost:3/b');
  held.open();
  const answer = await within(first, 2000, 'the first answer');
  assert.equal(await answer.text(), 'http://localhost:1/a');
  assert.deepEqual(
    entries.map((e) => [e.path, e.upstream, e.route]),
    [
      ['/b', 'http://localhost:3', 'x.test/'],
      ['/a', 'http://localhost:1', '*/'],
    ],
  );
});
