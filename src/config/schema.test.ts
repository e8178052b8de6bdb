import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { TYPES_SOURCE } from '../cli/types-source.ts';
import { VERSION } from '../version.ts';
import { compileConfig, parseListen } from './compile.ts';
import { listenProblem, upstreamProblem, validateConfig } from './schema.ts';

const seed = {
  routes: [
    { host: 'sub1.xyz.com', upstream: 'http://localhost:8080' },
    { host: '*.xyz.com', upstream: 'http://localhost:8181' },
    { host: '*', upstream: 'http://localhost:8888' },
  ],
};

const problems = (input: unknown) => {
  const r = validateConfig(input);
  return r.ok ? [] : r.problems;
};

test('the seed config is valid', () => {
  assert.deepEqual(problems(seed), []);
});

test('mistakes are reported with their path, all at once', () => {
  const got = problems({
    listen: 'nope',
    routes: [
      { host: 'a.com', upstream: 'http://localhost:8080' },
      { host: 'b.com', upstreem: 'http://x' },
      { host: 'c.com', upstream: 'not a url' },
      { host: 'a.*.com', upstream: 'ftp://x', timeoutMs: -1 },
    ],
    trustedProxies: ['10.0.0.0/99'],
    limits: { maxHeaderBytes: 1_000_000 },
  });
  assert.ok(got.includes('routes[1].upstreem: unknown key'), got.join('\n'));
  assert.ok(got.includes('routes[2].upstream: invalid URL'), got.join('\n'));
  assert.ok(
    got.some((p) => p.startsWith('routes[1].upstream: ')),
    got.join('\n'),
  );
  assert.ok(
    got.some((p) => p.startsWith('routes[3].host: ')),
    got.join('\n'),
  );
  assert.ok(
    got.some((p) => p.startsWith('routes[3].upstream: unsupported scheme ftp:')),
    got.join('\n'),
  );
  assert.ok(
    got.some((p) => p.startsWith('routes[3].timeoutMs: ')),
    got.join('\n'),
  );
  assert.ok(
    got.some((p) => p.startsWith('listen: ')),
    got.join('\n'),
  );
  assert.ok(
    got.some((p) => p.startsWith('trustedProxies[0]: invalid CIDR')),
    got.join('\n'),
  );
  assert.ok(got.includes('limits.maxHeaderBytes: must be at most 16384'), got.join('\n'));
});

test('wrong shapes and unknown top-level keys', () => {
  assert.deepEqual(problems(null), ['(config): must be an object ({ routes: [...] }), not null']);
  assert.deepEqual(problems({}), ['routes: is required']);
  assert.deepEqual(problems({ routes: {} }), ['routes: must be an array of routes']);
  assert.deepEqual(problems({ routes: [{ host: 'a.com' }] }), ['routes[0].upstream: is required']);
  assert.deepEqual(problems({ routes: [], rotues: [] }), ['rotues: unknown key']);
});

test('duplicate host and path is an error naming both routes', () => {
  const got = problems({
    routes: [
      { host: 'a.com', upstream: 'http://x:1' },
      { host: ['b.com', 'A.com.'], path: '/', upstream: 'http://x:2' },
    ],
  });
  assert.deepEqual(got, ['routes[1].host: A.com. with path / is already routed by routes[0]']);
});

test('upstream must be a bare origin', () => {
  assert.equal(upstreamProblem('http://localhost:8080'), null);
  assert.equal(upstreamProblem('https://[::1]:8443/'), null);
  assert.match(upstreamProblem('http://localhost:8080/base') ?? '', /origin/);
  assert.match(upstreamProblem('http://localhost:8080?x') ?? '', /origin/);
  assert.match(upstreamProblem('http://u:p@localhost') ?? '', /credentials/);
});

test('listen addresses', () => {
  assert.equal(listenProblem('127.0.0.1:0'), null);
  assert.equal(listenProblem(':80'), null);
  assert.equal(listenProblem('[::1]:4433'), null);
  assert.match(listenProblem('127.0.0.1') ?? '', /HOST:PORT/);
  assert.match(listenProblem('h:70000') ?? '', /0-65535/);
  assert.deepEqual(parseListen(':80'), { hostname: '0.0.0.0', port: 80 });
  assert.deepEqual(parseListen('[::1]:4433'), { hostname: '::1', port: 4433 });
});

test('compileConfig applies defaults and per-route overrides', () => {
  const c = compileConfig({
    routes: [
      { host: 'a.com', path: '/api/', stripPrefix: true, upstream: 'http://localhost:8080', hostHeader: 'upstream', timeoutMs: 5, maxBodyBytes: null },
      { host: '*', upstream: 'https://b.example' },
    ],
    limits: { maxBodyBytes: 1000 },
  });
  const [a, b] = c.routes;
  assert.equal(a?.prefix, '/api');
  assert.equal(a?.stripLength, 4);
  assert.equal(a?.upstream.origin, 'http://localhost:8080');
  assert.equal(a?.upstream.hostPort, 'localhost:8080');
  assert.equal(a?.sendUpstreamHost, true);
  assert.equal(a?.timeoutMs, 5);
  assert.equal(a?.maxBodyBytes, null);
  assert.equal(b?.timeoutMs, 30_000);
  assert.equal(b?.maxBodyBytes, 1000);
  assert.equal(b?.upstream.origin, 'https://b.example');
  assert.deepEqual(c.listen, { hostname: '0.0.0.0', port: 80 });
  assert.equal(c.table.match('a.com', '/api/x'), a);
  assert.equal(c.table.match('a.com', '/x'), b);
});

test('init copies the current types (run `make gen` after editing types.ts)', () => {
  assert.equal(TYPES_SOURCE, readFileSync(new URL('./types.ts', import.meta.url), 'utf8'));
});

test('VERSION matches package.json', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  assert.equal(VERSION, pkg.version);
});

// --- TLS settings (issue 7) ------------------------------------------------------------------

const tlsSection = { certificates: [{ cert: 'certs/a.pem', key: 'certs/a.key' }] };
const oneRoute = (extra: Record<string, unknown> = {}) => [{ host: 'a.test', upstream: 'https://localhost:8443', ...extra }];

test('a full TLS config is valid', () => {
  assert.deepEqual(
    problems({
      tls: {
        listen: '127.0.0.1:8443',
        certificates: [
          { cert: 'certs/a.pem', key: 'certs/a.key' },
          { cert: '/etc/ssl/b.pem', key: '/etc/ssl/b.key' },
        ],
        redirectHttp: false,
        clientAuth: { ca: 'certs/root.pem', required: false, header: 'X-Client-Subject' },
      },
      routes: [
        {
          host: 'a.test',
          upstream: 'https://localhost:8443',
          hsts: true,
          redirectHttp: true,
          upstreamTls: { ca: 'certs/root.pem', serverName: 'api.internal', cert: 'c.pem', key: 'c.key' },
        },
        { host: 'b.test', upstream: 'https://localhost:9443', hsts: { maxAge: 60, includeSubDomains: true, preload: true }, upstreamTls: { insecure: true } },
        { host: 'c.test', upstream: 'http://localhost:80', hsts: false, redirectHttp: false },
        { host: 'd.test', upstream: 'http://localhost:80', hsts: {} },
      ],
    }),
    [],
  );
});

test('tls.certificates: required, at least one pair, each with cert and key', () => {
  assert.deepEqual(problems({ tls: { certificates: [] }, routes: [] }), ['tls.certificates: must name at least one { cert, key } pair']);
  assert.deepEqual(problems({ tls: {}, routes: [] }), ['tls.certificates: is required']);
  assert.deepEqual(problems({ tls: { certificates: 'certs/a.pem' }, routes: [] }), ['tls.certificates: must be an array of { cert, key }']);
  assert.deepEqual(problems({ tls: { certificates: [{ cert: 'certs/a.pem' }, { cert: '', key: 'k', chain: 'c' }] }, routes: [] }), [
    'tls.certificates[0].key: is required',
    'tls.certificates[1].cert: must not be empty',
    'tls.certificates[1].chain: unknown key',
  ]);
  assert.deepEqual(problems({ tls: { certificates: [{ cert: 1, key: 'k' }] }, routes: [] }), ['tls.certificates[0].cert: must be a file path string']);
});

test('tls: listen, redirectHttp, clientAuth and unknown keys, all at once with their paths', () => {
  assert.deepEqual(
    problems({
      tls: { ...tlsSection, listen: '8443', redirectHttp: 'yes', clientAuth: { required: 1, header: 'x client', crl: 'x' }, sni: true },
      routes: [],
    }),
    [
      'tls.listen: must be HOST:PORT, :PORT or [IPv6]:PORT',
      'tls.redirectHttp: must be true or false',
      'tls.clientAuth.ca: is required',
      'tls.clientAuth.required: must be true or false',
      'tls.clientAuth.header: must be a header field name',
      'tls.clientAuth.crl: unknown key',
      'tls.sni: unknown key',
    ],
  );
  assert.deepEqual(problems({ tls: { ...tlsSection, listen: ':70000' }, routes: [] }), ['tls.listen: port must be 0-65535']);
  assert.deepEqual(problems({ tls: { ...tlsSection, clientAuth: { ca: '' } }, routes: [] }), ['tls.clientAuth.ca: must not be empty']);
  assert.deepEqual(problems({ tls: { ...tlsSection, clientAuth: { ca: 'ca.pem', header: '' } }, routes: [] }), [
    'tls.clientAuth.header: must be a header field name',
  ]);
  assert.deepEqual(problems({ tls: { ...tlsSection, clientAuth: { ca: 'ca.pem', header: 'X-Client-Cert:' } }, routes: [] }), [
    'tls.clientAuth.header: must be a header field name',
  ]);
});

test('route hsts: true, false or the object form; anything else names the route', () => {
  assert.deepEqual(problems({ tls: tlsSection, routes: oneRoute({ hsts: 'yes' }) }), [
    'routes[0].hsts: must be true, false or { maxAge, includeSubDomains, preload }',
  ]);
  assert.deepEqual(problems({ tls: tlsSection, routes: oneRoute({ hsts: { maxAge: -1 } }) }), ['routes[0].hsts.maxAge: must be at least 0']);
  assert.deepEqual(problems({ tls: tlsSection, routes: oneRoute({ hsts: { maxAge: 1.5 } }) }), ['routes[0].hsts.maxAge: must be an integer']);
  // A part of the wrong type or a misspelled part is refused, not dropped: valibot's union then
  // reports its own message for the whole field.
  const wholeField = ['routes[0].hsts: must be true, false or { maxAge, includeSubDomains, preload }'];
  assert.deepEqual(problems({ tls: tlsSection, routes: oneRoute({ hsts: { preload: 'yes' } }) }), wholeField);
  assert.deepEqual(problems({ tls: tlsSection, routes: oneRoute({ hsts: { maxage: 60 } }) }), wholeField);
  assert.deepEqual(problems({ tls: tlsSection, routes: oneRoute({ redirectHttp: 'no' }) }), ['routes[0].redirectHttp: must be true or false']);
});

test('hsts and redirectHttp: true without a tls listener are mistakes; false is not', () => {
  assert.deepEqual(
    problems({
      routes: [
        { host: 'a.test', upstream: 'http://localhost:1', hsts: true },
        { host: 'b.test', upstream: 'http://localhost:1', hsts: { maxAge: 1 }, redirectHttp: true },
        { host: 'c.test', upstream: 'http://localhost:1', hsts: false, redirectHttp: false },
      ],
    }),
    [
      'routes[0].hsts: needs a tls listener (HSTS is sent on HTTPS responses only)',
      'routes[1].hsts: needs a tls listener (HSTS is sent on HTTPS responses only)',
      'routes[1].redirectHttp: needs a tls listener to redirect to',
    ],
  );
  assert.deepEqual(problems({ tls: tlsSection, routes: [{ host: 'a.test', upstream: 'http://localhost:1', hsts: true, redirectHttp: true }] }), []);
});

test('upstreamTls: needs an https:// upstream, cert and key together, no unknown keys', () => {
  assert.deepEqual(problems({ routes: [{ host: 'a.test', upstream: 'http://localhost:8080', upstreamTls: {} }] }), [
    'routes[0].upstreamTls: needs an https:// or wss:// upstream (upstream is http://localhost:8080)',
  ]);
  assert.deepEqual(problems({ routes: oneRoute({ upstreamTls: { cert: 'c.pem' } }) }), ['routes[0].upstreamTls: cert and key go together']);
  assert.deepEqual(problems({ routes: oneRoute({ upstreamTls: { key: 'c.key' } }) }), ['routes[0].upstreamTls: cert and key go together']);
  assert.deepEqual(
    problems({
      routes: [
        { host: 'a.test', upstream: 'https://localhost:1' },
        { host: 'b.test', upstream: 'https://localhost:1', upstreamTls: { verify: false, insecure: 'yes', ca: '', serverName: 'bad name' } },
      ],
    }),
    [
      'routes[1].upstreamTls.ca: must not be empty',
      'routes[1].upstreamTls.serverName: must be a DNS name such as internal.xyz.com (no wildcard, port or IP address)',
      'routes[1].upstreamTls.insecure: must be true or false',
      'routes[1].upstreamTls.verify: unknown key',
    ],
  );
  assert.deepEqual(problems({ routes: oneRoute({ upstreamTls: { serverName: 'api.internal:443' } }) }), [
    'routes[0].upstreamTls.serverName: must be a DNS name such as internal.xyz.com (no wildcard, port or IP address)',
  ]);
  assert.deepEqual(
    problems({ routes: oneRoute({ upstreamTls: { ca: 'ca.pem', serverName: 'api.internal', cert: 'c.pem', key: 'c.key', insecure: false } }) }),
    [],
  );
});

test('route TLS problems of several routes are reported together', () => {
  assert.deepEqual(
    problems({
      routes: [
        { host: 'a.test', upstream: 'http://localhost:1', upstreamTls: { cert: 'c.pem' }, hsts: true },
        { host: 'b.test', upstream: 'https://localhost:1', upstreamTls: { key: 'k' }, redirectHttp: true },
      ],
    }),
    [
      'routes[0].upstreamTls: needs an https:// or wss:// upstream (upstream is http://localhost:1)',
      'routes[0].upstreamTls: cert and key go together',
      'routes[0].hsts: needs a tls listener (HSTS is sent on HTTPS responses only)',
      'routes[1].upstreamTls: cert and key go together',
      'routes[1].redirectHttp: needs a tls listener to redirect to',
    ],
  );
});

test('upstreamTls.serverName is an SNI name: no wildcard, no IP; an HTTPS:// upstream in capitals is https', () => {
  for (const name of ['*', '*.a.test', '10.0.0.5']) {
    assert.equal(problems({ routes: oneRoute({ upstreamTls: { serverName: name } }) }).length, 1, name);
  }
  assert.deepEqual(problems({ routes: [{ host: 'a', upstream: 'HTTPS://x:1', upstreamTls: {} }] }), []);
});

test('tls.clientAuth.header must not name a header the proxy sets or frames itself', () => {
  for (const header of ['host', 'X-Forwarded-For', 'x-request-id', 'forwarded', 'connection', 'content-length']) {
    const found = problems({ routes: oneRoute(), tls: { certificates: [{ cert: 'c', key: 'k' }], clientAuth: { ca: 'ca.pem', header } } });
    assert.equal(found.length, 1, header);
    assert.match(found[0] as string, /^tls\.clientAuth\.header: names a header the proxy sets/);
  }
});

test('websocket, ws:/wss: upstreams and the client limits: valid forms, defaults, and mistakes named', () => {
  const config = {
    routes: [
      { host: 'a.test', upstream: 'ws://localhost:8080' },
      { host: 'b.test', upstream: 'wss://localhost:8443', upstreamTls: { insecure: true }, websocket: { idleTimeoutMs: 5000, maxTunnels: 2 } },
      { host: 'c.test', upstream: 'http://localhost:8080', websocket: false as const },
    ],
    limits: {
      headerTimeoutMs: 1000,
      bodyTimeoutMs: 2000,
      bodyMinBytesPerSecond: 0,
      idleTimeoutMs: 300,
      sendTimeoutMs: 4000,
      maxConnections: 5,
      maxConnectionsPerIp: 2,
    },
  };
  assert.deepEqual(problems(config), []);
  const compiled = compileConfig(config);
  assert.equal(compiled.routes[0]?.upstream.origin, 'http://localhost:8080', 'ws: is http:');
  assert.equal(compiled.routes[1]?.upstream.origin, 'https://localhost:8443', 'wss: is https:');
  assert.deepEqual(compiled.routes[0]?.websocket, { idleMs: 120_000, maxTunnels: 10_000 });
  assert.deepEqual(compiled.routes[1]?.websocket, { idleMs: 5000, maxTunnels: 2 });
  assert.equal(compiled.routes[2]?.websocket, null);
  assert.deepEqual(compiled.clientLimits, config.limits);
  assert.deepEqual(compileConfig(seed).clientLimits, {
    headerTimeoutMs: 30_000,
    bodyTimeoutMs: 60_000,
    bodyMinBytesPerSecond: 500,
    idleTimeoutMs: 5_000,
    sendTimeoutMs: 60_000,
    maxConnections: 10_000,
    maxConnectionsPerIp: 1_000,
  });
  assert.deepEqual(
    problems({
      routes: [
        { host: 'a.test', upstream: 'ftp://x', websocket: true },
        { host: 'b.test', upstream: 'ws://x', websocket: { maxTunnels: 0, idle: 1 } },
      ],
      limits: { headerTimeoutMs: 5, maxConnections: 0 },
    }),
    [
      'routes[0].upstream: unsupported scheme ftp: (use http:, https:, ws: or wss:)',
      'routes[0].websocket: must be false or { idleTimeoutMs, maxTunnels }',
      'routes[1].websocket: must be false or { idleTimeoutMs, maxTunnels }',
      'limits.headerTimeoutMs: must be at least 100',
      'limits.maxConnections: must be at least 1',
    ],
  );
});

test('upstream groups: the issue forms are valid, and each mistake is named at its path', () => {
  assert.deepEqual(
    problems({
      routes: [
        { host: 'app.xyz.com', upstream: ['http://127.0.0.1:9001', 'http://127.0.0.1:9002', 'http://127.0.0.1:9003'] },
        {
          host: 'api.xyz.com',
          upstream: {
            targets: [{ url: 'http://127.0.0.1:9001', weight: 3 }, 'http://127.0.0.1:9002'],
            policy: 'least_conn',
            health: { path: '/healthz', intervalMs: 2000 },
            retry: { tries: 3 },
          },
        },
        { host: 'h.xyz.com', upstream: { targets: ['http://a:1', 'http://b:1'], policy: { hash: 'header', name: 'x-user' } } },
        {
          host: 's.xyz.com',
          upstream: { targets: ['http://a:1', 'http://b:1'], policy: { sticky: { secret: 'sixteen chars ok' } } },
          connectTimeoutMs: 1000,
          bodyIdleTimeoutMs: null,
        },
      ],
    }),
    [],
  );
  const at = (upstream: unknown, extra = {}) => problems({ routes: [{ host: 'a.test', upstream, ...extra }] });
  assert.deepEqual(at([]), ['routes[0].upstream: must name at least one upstream']);
  assert.deepEqual(at(['http://a:1', 'ftp://x']), ['routes[0].upstream[1]: unsupported scheme ftp: (use http:, https:, ws: or wss:)']);
  assert.deepEqual(at({ targets: [] }), ['routes[0].upstream.targets: must name at least one upstream']);
  assert.match(at({ targets: ['http://a:1'], policy: 'fastest' })[0] as string, /^routes\[0\]\.upstream\.policy: must be one of "round_robin", /);
  assert.deepEqual(at({ targets: ['http://a:1'], policy: { hash: 'header' } }), ['routes[0].upstream.policy.name: is required']);
  assert.deepEqual(at({ targets: ['http://a:1'], policy: { hash: 'body' } }), ['routes[0].upstream.policy.hash: must be "ip", "path", "header" or "cookie"']);
  // A name no Headers.get could take would fail every request: refused at load.
  assert.deepEqual(at({ targets: ['http://a:1'], policy: { hash: 'header', name: 'X User' } }), [
    'routes[0].upstream.policy.name: must be a header or cookie name (a token, e.g. x-user)',
  ]);
  assert.deepEqual(at({ targets: ['http://a:1'], policy: { sticky: { secret: 'short' } } }), [
    'routes[0].upstream.policy.sticky.secret: must be at least 16 characters',
  ]);
  assert.deepEqual(at({ targets: [{ url: 'http://a:1', weight: 0 }] }), ['routes[0].upstream.targets[0].weight: must be at least 1']);
  assert.deepEqual(at({ targets: ['http://a:1'], helth: {} }), ['routes[0].upstream.helth: unknown key']);
  assert.deepEqual(at({ targets: ['http://a:1'], health: { path: 'healthz', status: [500, 200] } }), [
    'routes[0].upstream.health.path: must be a path starting with / (a query is allowed)',
    'routes[0].upstream.health.status: must be [from, to] with from <= to',
  ]);
  assert.deepEqual(at({ targets: ['http://a:1'], retry: { tries: 0 }, passive: { failures: 0 } }), [
    'routes[0].upstream.passive.failures: must be at least 1',
    'routes[0].upstream.retry.tries: must be at least 1',
  ]);
  // ws:// and http:// of one host:port are one upstream.
  assert.deepEqual(at({ targets: ['ws://a:1', 'http://a:1'] }), ['routes[0].upstream: http://a:1 is listed twice (targets 0 and 1); give it a weight instead']);
  assert.deepEqual(at(['https://a:1', 'http://b:1'], { upstreamTls: { insecure: true } }), [
    'routes[0].upstreamTls: needs https:// or wss:// upstreams (http://b:1 is not)',
  ]);
  assert.deepEqual(at('http://a:1', { connectTimeoutMs: 0 }), ['routes[0].connectTimeoutMs: must be at least 1']);
});

test('upstream groups compile: a plain single upstream has no group; defaults as documented', () => {
  const config = compileConfig({
    routes: [
      { host: 'one.test', upstream: 'http://127.0.0.1:9001' },
      { host: 'list.test', upstream: ['http://127.0.0.1:9001', 'ws://127.0.0.1:9002'] },
      { host: 'checked.test', upstream: { targets: ['http://127.0.0.1:9001'], health: { path: '/healthz' } } },
      {
        host: 'full.test',
        upstream: { targets: [{ url: 'http://127.0.0.1:9001', weight: 3, maxInFlight: 10 }], policy: { sticky: {} }, retry: { tries: 5 } },
        timeoutMs: 7000,
      },
    ],
  });
  const [one, list, checked, full] = config.routes;
  assert.equal(one?.group, null);
  assert.equal(one?.connectTimeoutMs, 5000);
  assert.equal(one?.bodyIdleTimeoutMs, 60_000);
  const g = list?.group;
  assert.deepEqual(
    g?.targets.map((t) => [t.origin, t.weight, t.index]),
    [
      ['http://127.0.0.1:9001', 1, 0],
      ['http://127.0.0.1:9002', 1, 1],
    ],
  );
  assert.deepEqual(g?.policy, { kind: 'round_robin' });
  assert.equal(g?.health, null);
  assert.deepEqual(g?.passive && { ...g.passive, statuses: [...g.passive.statuses] }, { failures: 1, windowMs: 10_000, cooldownMs: 10_000, statuses: [] });
  assert.deepEqual(g?.retry && { ...g.retry, statuses: [...g.retry.statuses] }, {
    tries: 2,
    tryDurationMs: 60_000,
    statuses: [],
    onTimeout: true,
    replayBodyBytes: 65_536,
  });
  assert.equal(list?.upstream, g?.targets[0], "a group's first target is the route's upstream");
  // One upstream with health checks is a group, without passive checks (nowhere else to go).
  assert.equal(checked?.group?.passive, null);
  assert.deepEqual(checked?.group?.health, {
    method: 'GET',
    path: '/healthz',
    intervalMs: 5000,
    timeoutMs: 2000,
    statusFrom: 200,
    statusTo: 399,
    body: null,
    rise: 1,
    fall: 1,
    host: null,
    jitterMs: 500,
  });
  // tries never exceed the targets; tryDurationMs follows the route's timeoutMs.
  assert.equal(full?.group?.retry.tries, 1);
  assert.equal(full?.group?.retry.tryDurationMs, 14_000);
  assert.deepEqual(full?.group?.policy, {
    kind: 'sticky',
    cookie: 'switchyard_upstream',
    path: '/',
    secret: null,
    maxAgeSeconds: null,
    fallback: 'round_robin',
  });
  assert.equal(full?.group?.targets[0]?.maxInFlight, 10);
  // Cookie names keep their case (RFC 6265); header names are matched lowercased. A sticky
  // cookie's Path is the route's prefix, so two routes of one host keep their own pins.
  const named = compileConfig({
    routes: [
      { host: 'a.test', path: '/shop/', upstream: { targets: ['http://a:1', 'http://b:1'], policy: { sticky: {} } } },
      { host: 'a.test', upstream: { targets: ['http://a:1', 'http://b:1'], policy: { hash: 'cookie', name: 'SessionId' } } },
      { host: 'b.test', upstream: { targets: ['http://a:1', 'http://b:1'], policy: { hash: 'header', name: 'X-Tenant' } } },
    ],
  }).routes;
  const policies = named.map((route) => route.group?.policy as unknown as { path?: string; name?: string });
  assert.equal(policies[0]?.path, '/shop');
  assert.equal(policies[1]?.name, 'SessionId');
  assert.equal(policies[2]?.name, 'x-tenant');
});

// --- securityHeaders and cors (issue 10) ------------------------------------------------------

const routeWith = (extra: Record<string, unknown>) => ({ routes: [{ host: 'a.test', upstream: 'http://localhost:1', ...extra }] });

test('securityHeaders: true, false, or the object form; every mistake at its path', () => {
  assert.deepEqual(problems(routeWith({ securityHeaders: true })), []);
  assert.deepEqual(problems(routeWith({ securityHeaders: false })), []);
  assert.deepEqual(
    problems(
      routeWith({
        securityHeaders: {
          contentTypeOptions: false,
          frameOptions: 'DENY',
          referrerPolicy: 'no-referrer-when-downgrade',
          contentSecurityPolicy: "default-src 'self'; img-src * data:",
          contentSecurityPolicyReportOnly: "script-src 'none'",
          permissionsPolicy: 'camera=(), geolocation=(self)',
          overwrite: false,
        },
      }),
    ),
    [],
  );
  assert.deepEqual(problems(routeWith({ securityHeaders: { frameOptions: false, referrerPolicy: false } })), []);
  assert.deepEqual(
    problems(
      routeWith({
        securityHeaders: {
          contentTypeOptions: 'nosniff',
          frameOptions: 'ALLOW-FROM https://x.test',
          referrerPolicy: 'never',
          contentSecurityPolicy: "default-src 'self'\r\nSet-Cookie: a=1",
          contentSecurityPolicyReportOnly: '',
          permissionsPolicy: ' camera=()',
          overwrite: 1,
          hsts: true,
        },
      }),
    ),
    [
      'routes[0].securityHeaders.contentTypeOptions: must be true or false',
      'routes[0].securityHeaders.frameOptions: must be "DENY", "SAMEORIGIN" or false',
      'routes[0].securityHeaders.referrerPolicy: must be one of "no-referrer", "no-referrer-when-downgrade", "same-origin", "origin", "strict-origin", "origin-when-cross-origin", "strict-origin-when-cross-origin", "unsafe-url", or false',
      'routes[0].securityHeaders.contentSecurityPolicy: must be one line of visible ASCII characters and spaces, without leading or trailing space',
      'routes[0].securityHeaders.contentSecurityPolicyReportOnly: must be one line of visible ASCII characters and spaces, without leading or trailing space',
      'routes[0].securityHeaders.permissionsPolicy: must be one line of visible ASCII characters and spaces, without leading or trailing space',
      'routes[0].securityHeaders.overwrite: must be true or false',
      'routes[0].securityHeaders.hsts: unknown key',
    ],
  );
  assert.deepEqual(problems(routeWith({ securityHeaders: 'on' })), [
    'routes[0].securityHeaders: must be true, false or { contentTypeOptions, frameOptions, referrerPolicy, contentSecurityPolicy, ... }',
  ]);
});

test('cors: valid settings', () => {
  for (const cors of [
    { origin: '*' },
    { origin: '*', allowMethods: ['*'], allowHeaders: ['*'], exposeHeaders: ['*'], maxAgeSeconds: 0 },
    { origin: 'https://app.xyz.com' },
    { origin: ['https://app.xyz.com', 'http://localhost:5173', 'http://[::1]:8080', 'capacitor://localhost'], credentials: true },
    {
      origin: 'https://a.test',
      allowMethods: ['GET', 'PATCH', 'PURGE', 'patch'],
      allowHeaders: ['X-Token', 'content-type'],
      exposeHeaders: [],
      maxAgeSeconds: 86400,
    },
    { origin: 'https://a.test', allowMethods: [], credentials: false },
  ])
    assert.deepEqual(problems(routeWith({ cors })), [], JSON.stringify(cors));
});

test('cors: origins must be written as browsers send them, or "*" alone', () => {
  const origin = (value: unknown) => problems(routeWith({ cors: { origin: value } }));
  assert.deepEqual(origin('https://app.xyz.com/'), [
    'routes[0].cors.origin: must be an origin as browsers send it, scheme://host[:port] without path or trailing slash, e.g. https://app.xyz.com',
  ]);
  assert.deepEqual(origin('https://App.xyz.com'), ['routes[0].cors.origin: must be written as browsers send it: https://app.xyz.com']);
  assert.deepEqual(origin('https://app.xyz.com:443'), ['routes[0].cors.origin: must be written as browsers send it: https://app.xyz.com']);
  assert.deepEqual(origin('app.xyz.com'), [
    'routes[0].cors.origin: must be an origin as browsers send it, scheme://host[:port] without path or trailing slash, e.g. https://app.xyz.com',
  ]);
  assert.deepEqual(origin('https://*.xyz.com'), ['routes[0].cors.origin: wildcards are not supported: list each origin, or use origin: "*"']);
  assert.deepEqual(origin(['https://a.test', 'null', '*']), [
    'routes[0].cors.origin[1]: "null" is the origin of sandboxed frames and file: pages; allowing it lets any of them in',
    'routes[0].cors.origin[2]: "*" stands alone (origin: "*"), not in a list',
  ]);
  assert.deepEqual(origin([]), ['routes[0].cors.origin: must name at least one origin']);
  assert.deepEqual(origin(1), ['routes[0].cors.origin: must be "*", an origin such as https://app.xyz.com, or an array of origins']);
  assert.deepEqual(problems(routeWith({ cors: {} })), ['routes[0].cors.origin: is required']);
  assert.deepEqual(problems(routeWith({ cors: true })), ['routes[0].cors: must be an object']);
});

test('cors: credentials with "*" anywhere, bad methods and header names, maxAgeSeconds out of range, each at its path', () => {
  assert.deepEqual(problems(routeWith({ cors: { origin: '*', credentials: true } })), [
    'routes[0].cors.origin: cannot be "*" with credentials: true (browsers refuse credentialed answers open to any origin); list the origins',
  ]);
  assert.deepEqual(
    problems(routeWith({ cors: { origin: ['https://a.test'], credentials: true, allowMethods: ['GET', '*'], allowHeaders: ['*'], exposeHeaders: ['*'] } })),
    [
      'routes[0].cors.allowMethods: "*" is no wildcard with credentials: true (browsers read it as a name); list the methods',
      'routes[0].cors.allowHeaders: "*" is no wildcard with credentials: true (browsers read it as a name); list the headers',
      'routes[0].cors.exposeHeaders: "*" is no wildcard with credentials: true (browsers read it as a name); list the headers',
    ],
  );
  assert.deepEqual(
    problems(
      routeWith({
        cors: {
          origin: 'https://a.test',
          allowMethods: ['GET POST', 'put', 'TRACE', 7],
          allowHeaders: ['X Token', 'x-ok'],
          exposeHeaders: 'X-Total',
          maxAgeSeconds: -1,
          credentials: 'yes',
          vary: true,
        },
      }),
    ),
    [
      'routes[0].cors.allowMethods[0]: must be a method name (a token, e.g. PATCH)',
      'routes[0].cors.allowMethods[1]: must be uppercase (browsers send DELETE, GET, HEAD, OPTIONS, POST and PUT so)',
      'routes[0].cors.allowMethods[2]: is a method browsers never let a page send',
      'routes[0].cors.allowMethods[3]: must be a string',
      'routes[0].cors.allowHeaders[0]: must be a header name (a token, e.g. X-Request-Id)',
      'routes[0].cors.exposeHeaders: must be an array of header names',
      'routes[0].cors.maxAgeSeconds: must be at least 0',
      'routes[0].cors.credentials: must be true or false',
      'routes[0].cors.vary: unknown key',
    ],
  );
  assert.deepEqual(problems(routeWith({ cors: { origin: '*', maxAgeSeconds: 86401 } })), ['routes[0].cors.maxAgeSeconds: must be at most 86400']);
  assert.deepEqual(problems(routeWith({ cors: { origin: '*', maxAgeSeconds: 1.5 } })), ['routes[0].cors.maxAgeSeconds: must be an integer']);
  assert.deepEqual(problems(routeWith({ cors: { origin: '*', allowHeaders: [] } })), [
    'routes[0].cors.allowHeaders: must name at least one header (leave it out to allow what a preflight asks for)',
  ]);
});

test('a config that is not an object says so; odd key names are quoted in the path (found by the config fuzzer)', () => {
  assert.deepEqual(problems([{}]), ['(config): must be an object ({ routes: [...] }), not an array']);
  assert.deepEqual(problems(null), ['(config): must be an object ({ routes: [...] }), not null']);
  assert.deepEqual(problems('routes'), ['(config): must be an object ({ routes: [...] }), not a string']);
  assert.deepEqual(problems({ routes: [], 'a b': 1 }), ['["a b"]: unknown key']);
  assert.deepEqual(problems({ routes: [{ host: 'a.test', upstream: 'http://127.0.0.1:1', 'x.y': 1 }] }), ['routes[0]["x.y"]: unknown key']);
});

test('two routes whose paths differ only in case are the same route (prefixes match without case)', () => {
  const routes = [
    { host: 'a.test', path: '/api', upstream: 'http://127.0.0.1:1' },
    { host: 'a.test', path: '/API', upstream: 'http://127.0.0.1:2' },
  ];
  assert.match(problems({ routes }).join('\n'), /routes\[1\]\.host: a\.test with path \/API is already routed by routes\[0\]/);
});

test('allow / deny: CIDR lists, each bad entry named at its path; an empty allow list is a mistake', () => {
  const route = (extra: object) => ({ routes: [{ host: 'a.test', upstream: 'http://127.0.0.1:1', ...extra }] });
  assert.deepEqual(problems(route({ allow: ['10.0.0.0/8', '192.168.1.7', '2001:db8::/32'], deny: ['10.0.0.5'] })), []);
  assert.deepEqual(problems(route({ allow: ['10.0.0.0/33'] })), ['routes[0].allow[0]: invalid CIDR or address "10.0.0.0/33"']);
  assert.deepEqual(problems(route({ deny: ['ok', '::1'] })), ['routes[0].deny[0]: invalid CIDR or address "ok"']);
  assert.deepEqual(problems(route({ allow: '10.0.0.0/8' })), ['routes[0].allow: must be an array of CIDR strings']);
  assert.match(problems(route({ allow: [] })).join('\n'), /^routes\[0\]\.allow: is empty, so nobody could use the route/);
});

test('auth: bcrypt hashes only, known kinds, tokens long enough, allOf without two Authorization kinds; each at its path', () => {
  const hash = '$2b$10$abcdefghijklmnopqrstuu5Eo0fY5Vh6W2V4y0Hf2D0Xw1c9l6m2K';
  const route = (auth: unknown) => ({ routes: [{ host: 'a.test', upstream: 'http://127.0.0.1:1', auth }] });
  assert.deepEqual(problems(route({ basic: { users: { alice: hash } } })), []);
  assert.deepEqual(problems(route({ anyOf: [{ basic: { users: { alice: hash } } }, { bearer: { tokens: ['0123456789abcdef0123'] } }] })), []);
  assert.match(
    problems(route({ basic: { users: { alice: 'hunter2' } } })).join('\n'),
    /^routes\[0\]\.auth\.basic\.users\.alice: must be a bcrypt hash .*never a plaintext password/,
  );
  assert.match(problems(route({ basic: { users: { alice: '$2b$10$short' } } })).join('\n'), /routes\[0\]\.auth\.basic\.users\.alice: must be a bcrypt hash/);
  assert.match(problems(route({ basic: { users: {} } })).join('\n'), /routes\[0\]\.auth\.basic\.users: must name at least one user/);
  assert.match(problems(route({ oauth: {} })).join('\n'), /^routes\[0\]\.auth: unknown auth kind "oauth"/);
  assert.match(
    problems(route({ anyOf: [{ bearer: { tokens: ['short'] } }] })).join('\n'),
    /routes\[0\]\.auth\.anyOf\[0\]\.bearer\.tokens\[0\]: must be a token of 16\+ characters/,
  );
  assert.match(
    problems(route({ allOf: [{ basic: { users: { alice: hash } } }, { bearer: { tokens: ['0123456789abcdef0123'] } }] })).join('\n'),
    /routes\[0\]\.auth\.allOf: can hold at most one kind that reads Authorization/,
  );
  assert.match(problems(route({ anyOf: [] })).join('\n'), /routes\[0\]\.auth\.anyOf: must list at least one auth kind/);
});

test('auth.jwt: exactly one key source, pinned algorithms without none or HS with a public key; each at its path', () => {
  const route = (jwt: unknown) => ({ routes: [{ host: 'a.test', upstream: 'http://127.0.0.1:1', auth: { jwt } }] });
  assert.deepEqual(problems(route({ jwksUrl: 'https://auth.test/jwks.json', issuer: 'https://auth.test', audience: ['api', 'web'] })), []);
  assert.deepEqual(problems(route({ secret: 'x'.repeat(32), algorithms: ['HS256', 'HS512'] })), []);
  assert.deepEqual(problems(route({ key: 'keys/k.pem', claimsToHeaders: { sub: 'x-user' } })), []);
  assert.match(problems(route({})).join('\n'), /^routes\[0\]\.auth\.jwt: needs exactly one of key, secret and jwksUrl/);
  assert.match(problems(route({ key: 'k.pem', secret: 'x'.repeat(32) })).join('\n'), /needs exactly one of key, secret and jwksUrl/);
  assert.match(problems(route({ key: 'k.pem', algorithms: ['none'] })).join('\n'), /routes\[0\]\.auth\.jwt\.algorithms\[0\]: must be one of .*never "none"/);
  assert.match(problems(route({ key: 'k.pem', algorithms: ['RS256', 'HS256'] })).join('\n'), /routes\[0\]\.auth\.jwt: HS\* algorithms need a secret/);
  assert.match(problems(route({ secret: 'short' })).join('\n'), /routes\[0\]\.auth\.jwt\.secret: must be at least 32 characters/);
  assert.match(problems(route({ secret: 'x'.repeat(32), algorithms: ['RS256'] })).join('\n'), /a secret takes HS\* algorithms only/);
  assert.match(problems(route({ jwksUrl: 'ftp://x' })).join('\n'), /routes\[0\]\.auth\.jwt\.jwksUrl: must be an http\(s\) URL/);
  assert.match(
    problems(route({ key: 'k.pem', claimsToHeaders: { sub: 'x user' } })).join('\n'),
    /routes\[0\]\.auth\.jwt\.claimsToHeaders\.sub: must be a header name/,
  );
});

test('auth.forward: an http(s) URL, header names to copy, a timeout; each at its path', () => {
  const route = (forward: unknown) => ({ routes: [{ host: 'a.test', upstream: 'http://127.0.0.1:1', auth: { forward } }] });
  assert.deepEqual(problems(route({ url: 'http://localhost:9100/verify', copyHeaders: ['x-user'], timeoutMs: 2000 })), []);
  assert.match(problems(route({ url: 'localhost:9100' })).join('\n'), /^routes\[0\]\.auth\.forward\.url: must be an http\(s\) URL/);
  assert.match(
    problems(route({ url: 'http://a/v', copyHeaders: ['x_user'] })).join('\n'),
    /routes\[0\]\.auth\.forward\.copyHeaders\[0\]: must be a header name/,
  );
  assert.match(problems(route({ url: 'http://a/v', timeoutMs: 0 })).join('\n'), /routes\[0\]\.auth\.forward\.timeoutMs: /);
});

test('rateLimit: positive whole limits and windows, a known key; each at its path', () => {
  const route = (rateLimit: unknown) => ({ routes: [{ host: 'a.test', upstream: 'http://127.0.0.1:1', rateLimit }] });
  assert.deepEqual(problems(route({ requests: 100, windowSeconds: 60 })), []);
  assert.deepEqual(problems(route({ requests: 100, windowSeconds: 60, key: { header: 'x-api-key' } })), []);
  assert.deepEqual(problems(route({ requests: 0, windowSeconds: 60 })), ['routes[0].rateLimit.requests: must be at least 1']);
  assert.deepEqual(problems(route({ requests: 10, windowSeconds: -1 })), ['routes[0].rateLimit.windowSeconds: must be at least 1']);
  assert.deepEqual(problems(route({ requests: 1.5, windowSeconds: 1 })), ['routes[0].rateLimit.requests: must be an integer']);
  assert.match(
    problems(route({ requests: 1, windowSeconds: 1, key: 'ip' })).join('\n'),
    /routes\[0\]\.rateLimit\.key: must be "client", "route", \{ header \} or \{ claim \}/,
  );
  assert.match(problems(route({ requests: 1 })).join('\n'), /routes\[0\]\.rateLimit\.windowSeconds: is required/);
});

test('rateLimit: burst, store, onStoreDown, claim keys and the top-level redis', () => {
  const config = (rateLimit: unknown, extra: Record<string, unknown> = {}, auth?: unknown) => ({
    ...extra,
    routes: [{ host: 'a.test', upstream: 'http://127.0.0.1:1', rateLimit, ...(auth === undefined ? {} : { auth }) }],
  });
  const redis = { redis: { url: 'redis://127.0.0.1:6379' } };
  const jwt = { jwt: { secret: 'a-secret-of-at-least-32-bytes-long!!' } };
  assert.deepEqual(problems(config({ requests: 100, windowSeconds: 60, burst: 10 })), []);
  assert.deepEqual(problems(config({ requests: 100, windowSeconds: 60, store: 'redis', onStoreDown: 'deny' }, redis)), []);
  assert.deepEqual(problems(config({ requests: 100, windowSeconds: 60, key: { claim: 'sub' } }, {}, jwt)), []);
  assert.deepEqual(
    problems(config({ requests: 100, windowSeconds: 60, key: { claim: 'sub' } }, {}, { anyOf: [{ bearer: { tokens: ['x'.repeat(32)] } }, jwt] })),
    [],
  );
  assert.deepEqual(problems(config({ requests: 100, windowSeconds: 60, store: 'redis' })), [
    "routes[0].rateLimit.store: 'redis' needs a top-level redis: { url }",
  ]);
  assert.deepEqual(problems(config({ requests: 10, windowSeconds: 60, burst: 11 })), [
    'routes[0].rateLimit.burst: 11 is more than requests (10); the window would never let it through',
  ]);
  assert.deepEqual(problems(config({ requests: 10, windowSeconds: 60, burst: 0 })), ['routes[0].rateLimit.burst: must be at least 1']);
  assert.deepEqual(problems(config({ requests: 10, windowSeconds: 60, onStoreDown: 'deny' })), [
    "routes[0].rateLimit.onStoreDown: only applies with store: 'redis'",
  ]);
  assert.deepEqual(problems(config({ requests: 10, windowSeconds: 60, store: 'disk' })), ['routes[0].rateLimit.store: must be "memory" or "redis"']);
  assert.deepEqual(problems(config({ requests: 10, windowSeconds: 60, key: { claim: 'sub' } })), [
    "routes[0].rateLimit.key: a claim key needs jwt in the route's auth",
  ]);
  assert.deepEqual(problems(config({ requests: 10, windowSeconds: 60 }, { redis: { url: 'http://127.0.0.1:6379' } })), [
    'redis.url: must be a redis:// or rediss:// URL with a host',
  ]);
  assert.deepEqual(problems(config({ requests: 10, windowSeconds: 60 }, { redis: { url: 'redis://h:1', commandTimeoutMs: 0 } })), [
    'redis.commandTimeoutMs: must be at least 1',
  ]);
  assert.deepEqual(problems(config({ requests: 10, windowSeconds: 60 }, { redis: { url: 'redis://h:1', db: 2 } })), ['redis.db: unknown key']);
});
