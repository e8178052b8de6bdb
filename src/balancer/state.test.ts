// Upstream state: passive failures and cool-down, active checks against real local servers
// (status range, body match, rise and fall, jitter), each transition logged once, state kept per
// (route, upstream) and across a sync with an unchanged group.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { compileConfig } from '../config/compile.ts';
import type { Config } from '../config/types.ts';
import { createLogger } from '../log/logger.ts';
import { createUndiciTransport } from '../transport/undici.ts';
import { Balancers } from './state.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A health endpoint whose answer the test sets. */
async function healthServer(): Promise<{ origin: string; status: number; body: string; hits: string[]; close(): Promise<void> }> {
  const state = { status: 200, body: 'ok', hits: [] as string[] };
  const server = http.createServer((req, res) => {
    state.hits.push(`${req.method} ${req.url} ${req.headers.host}`);
    res.writeHead(state.status, { 'content-type': 'text/plain' });
    res.end(state.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(state, {
    origin,
    close: () => new Promise<void>((r) => server.close(() => r())),
  });
}

function setup(config: Config) {
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
  const transport = createUndiciTransport();
  let now = 1_000_000;
  const balancers = new Balancers({ logger, transport, now: () => now });
  const compiled = compileConfig(config);
  balancers.sync(compiled);
  const route = (i: number) => balancers.for(compiled.routes[i] as (typeof compiled.routes)[number]);
  return {
    lines: () => {
      logger.flush();
      return lines.filter((l) => l.msg === 'upstream down' || l.msg === 'upstream up');
    },
    balancers,
    compiled,
    route,
    advance: (ms: number) => {
      now += ms;
    },
    close: async () => {
      balancers.stop();
      await transport.close();
    },
  };
}

describe('passive health', () => {
  test('failures within the window put an upstream in cool-down, logged once; it returns by itself', async () => {
    const s = setup({
      routes: [
        { host: 'a.test', upstream: { targets: ['http://127.0.0.1:1', 'http://127.0.0.1:2'], passive: { failures: 2, windowMs: 1000, cooldownMs: 150 } } },
      ],
    });
    const b = s.route(0);
    b.failed(0, 'refused');
    assert.equal(b.available(0), true, 'one failure of two');
    s.advance(1500); // the window passed: counting starts again
    b.failed(0, 'refused');
    assert.equal(b.available(0), true);
    b.failed(0, 'refused');
    assert.equal(b.available(0), false);
    b.failed(0, 'refused again'); // already out: no second line
    assert.equal(b.pick({ clientIp: '1', target: '/', headers: new Headers() }), 1);
    assert.equal(b.retryAfterSeconds(), 1);
    await until(() => b.available(0), 2000, 'the cool-down to end');
    const lines = s.lines();
    assert.equal(lines.length, 2, JSON.stringify(lines));
    assert.deepEqual(
      lines.map((l) => [l.msg, l.source, l.upstream]),
      [
        ['upstream down', 'passive', 'http://127.0.0.1:1'],
        ['upstream up', 'cooldown', 'http://127.0.0.1:1'],
      ],
    );
    assert.match(String(lines[0]?.reason), /2 failures within 1000 ms, out for 150 ms: refused/);
    assert.equal(lines[1]?.reason, 'cool-down of 150 ms ended');
    await s.close();
  });

  test('passive: false, and a single upstream by default, never take an upstream out', async () => {
    const s = setup({
      routes: [
        { host: 'a.test', upstream: { targets: ['http://127.0.0.1:1', 'http://127.0.0.1:2'], passive: false } },
        { host: 'b.test', upstream: { targets: [{ url: 'http://127.0.0.1:1', maxInFlight: 1 }] } },
      ],
    });
    for (let i = 0; i < 5; i++) {
      s.route(0).failed(0, 'refused');
      s.route(1).failed(0, 'refused');
    }
    assert.equal(s.route(0).available(0), true);
    assert.equal(s.route(1).available(0), true);
    // The cap: in flight at maxInFlight is unavailable.
    (s.route(1).states[0] as { inFlight: number }).inFlight = 1;
    assert.equal(s.route(1).available(0), false);
    await s.close();
  });
});

describe('active health checks', () => {
  const servers: Awaited<ReturnType<typeof healthServer>>[] = [];
  after(async () => {
    for (const server of servers) await server.close();
  });

  test('status range, body match, rise and fall, the Host header; one line per transition', async () => {
    const up = await healthServer();
    servers.push(up);
    const s = setup({
      routes: [
        {
          host: 'a.test',
          upstream: {
            targets: [up.origin, 'http://127.0.0.1:1'],
            health: { path: '/healthz?deep=1', intervalMs: 100, timeoutMs: 80, body: 'ok', rise: 2, fall: 2, host: 'health.internal' },
          },
        },
      ],
    });
    const b = s.route(0);
    // The closed port fails twice in a row: out.
    await until(() => !b.available(1), 2000, 'the closed port to go down');
    assert.equal(b.available(0), true);
    assert.match(up.hits[0] as string, /^GET \/healthz\?deep=1 health\.internal$/);
    // A wrong body fails the check: after two, out.
    up.body = 'degraded';
    await until(() => !b.available(0), 2000, 'a body mismatch to take it out');
    assert.equal(b.pick({ clientIp: '1', target: '/', headers: new Headers() }), -1, 'nothing left');
    up.body = 'ok';
    up.status = 503;
    await sleep(250);
    assert.equal(b.available(0), false, 'a 503 does not pass');
    up.status = 204;
    up.body = 'ok';
    // 204 carries no body, so the body match fails: status alone cannot bring it back.
    await sleep(250);
    assert.equal(b.available(0), false);
    up.status = 200;
    await until(() => b.available(0), 2000, 'two passing checks to bring it back');
    const lines = s.lines().filter((l) => l.upstream === up.origin);
    assert.deepEqual(
      lines.map((l) => [l.msg, l.source]),
      [
        ['upstream down', 'active'],
        ['upstream up', 'active'],
      ],
    );
    assert.match(String(lines[0]?.reason), /body does not contain "ok"/);
    assert.equal(lines[1]?.reason, '2 checks in a row passed');
    const closed = s.lines().filter((l) => l.upstream === 'http://127.0.0.1:1');
    assert.equal(closed.length, 1, 'the closed port: one line, however many checks failed');
    await s.close();
  });

  test('a passing check ends a passive cool-down early', async () => {
    const up = await healthServer();
    servers.push(up);
    const s = setup({
      routes: [
        { host: 'a.test', upstream: { targets: [up.origin, 'http://127.0.0.1:1'], health: { path: '/', intervalMs: 100 }, passive: { cooldownMs: 60_000 } } },
      ],
    });
    const b = s.route(0);
    b.failed(0, 'reset');
    assert.equal(b.available(0), false);
    await until(() => b.available(0), 2000, 'the next passing check');
    assert.deepEqual(
      s
        .lines()
        .filter((l) => l.upstream === up.origin)
        .map((l) => [l.msg, l.source]),
      [
        ['upstream down', 'passive'],
        ['upstream up', 'active'],
      ],
    );
    await s.close();
  });
});

describe('where state lives', () => {
  test('two routes naming one address keep separate states', async () => {
    const s = setup({
      routes: [
        { host: 'a.test', upstream: ['http://127.0.0.1:1', 'http://127.0.0.1:2'] },
        { host: 'b.test', upstream: ['http://127.0.0.1:1', 'http://127.0.0.1:2'] },
      ],
    });
    s.route(0).failed(0, 'refused');
    assert.equal(s.route(0).available(0), false);
    assert.equal(s.route(1).available(0), true);
    await s.close();
  });

  test('a sync with the same group keeps the states; a changed group starts afresh; a removed route is retired', async () => {
    const base: Config = { routes: [{ host: 'a.test', upstream: ['http://127.0.0.1:1', 'http://127.0.0.1:2'] }] };
    const s = setup(base);
    s.route(0).failed(0, 'refused');
    const again = compileConfig(base);
    s.balancers.sync(again);
    const kept = s.balancers.for(again.routes[0] as (typeof again.routes)[number]);
    assert.equal(kept.available(0), false, 'the cool-down survives the reload');
    const changed = compileConfig({ routes: [{ host: 'a.test', upstream: ['http://127.0.0.1:1', 'http://127.0.0.1:3'] }] });
    s.balancers.sync(changed);
    assert.equal(s.balancers.for(changed.routes[0] as (typeof changed.routes)[number]).available(0), true);
    s.balancers.sync(compileConfig({ routes: [] }));
    assert.deepEqual(s.balancers.snapshot(), []);
    await s.close();
  });
});
