// Load balancing (issue 9), black box on every runtime: three upstreams under a bounded load
// loop with one SIGKILLed and restarted (zero failed GETs, out at once, back within two health
// intervals, no POST delivered twice), the same with one that hangs (SIGSTOP), weighted, random,
// least_conn and hashed distribution, `first` failover and fall-back, sticky cookies (honoured,
// tamper-proof), 503 with Retry-After when nothing is available (all down, maxInFlight), and
// retries and timeouts (refused, connect, head, statuses, body replay, body idle) with the
// access line's `tries` / `upstreams`. Stubs that are killed or stopped are their own processes
// (lb-upstream.ts), ended by PID; the rest are in-process. Loopback only; clients bind
// 127.0.0.10-127.0.0.39 to act as other addresses. Every wait has a deadline; numbers are
// printed as `[balancing] <runtime> ...`.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { sleep, until } from '../support/wait.ts';
import { type LogLine, type ProxyHandle, RUNTIMES, startProxy, startUpstream, type Upstream } from './harness.ts';
import {
  accessOf,
  call,
  deadPort,
  type Named,
  type Outcome,
  type Stub,
  sequence,
  served,
  setCookiesFor,
  startLoad,
  startNamed,
  startStub,
  tally,
  timeOf,
  transitions,
  triedOf,
} from './lb-harness.ts';

/** Active health checks of the kill, hang and `first` routes. */
const INTERVAL = 500;
/**
 * "Back within two health intervals": 2 x INTERVAL after the upstream answers again, plus this
 * for timer noise, the check's own round trip and log-line latency on a loaded two-core box (the
 * jitter only shortens waits, so it needs no allowance of its own).
 */
const BACK_ALLOWANCE = 300;
const BACK_WITHIN = 2 * INTERVAL + BACK_ALLOWANCE;
/** "Out within the passive window": far inside the 10 s default window, as the load offers the dead one a request every few ms. */
const OUT_WITHIN = 2000;
/** Response-head timeout of the hang route. */
const HANG_TIMEOUT = 400;
/** Head timeout of the routes whose every upstream hangs. */
const SHORT_TIMEOUT = 300;
const CONNECT_TIMEOUT = 300;
const BODY_IDLE = 400;
const SECRET = 'balancing-e2e-secret-0123456789';

const log = (runtime: string, text: string) => console.log(`[balancing] ${runtime} ${text}`);

/** `x-req-id` values of requests an in-process upstream saw. */
const idsAt = (u: Upstream, id: string) => u.requests.filter((r) => r.headers['x-req-id'] === id).length;

/** The access line of the request whose path is `path`, waiting for it (lines come after the response). */
const lineFor = (proxy: ProxyHandle, host: string, path: string) => proxy.waitForLine((l) => l.msg === 'access' && l.host === host && l.path === path, 5000);

/** Where a request with a try list must be consistent: `tries` = tried count, `upstream` = the last, none twice. */
function assertTryList(line: LogLine): void {
  if (line.tries === undefined && line.upstreams === undefined) return;
  const ups = line.upstreams as string[];
  assert.ok(Array.isArray(ups), `access line with tries but no upstreams: ${JSON.stringify(line)}`);
  assert.equal(line.tries, ups.length, `tries vs upstreams: ${JSON.stringify(line)}`);
  assert.ok((line.tries as number) > 1, `tries/upstreams on a single-try line: ${JSON.stringify(line)}`);
  assert.equal(line.upstream, ups.at(-1), `upstream is not the last try: ${JSON.stringify(line)}`);
  assert.equal(new Set(ups).size, ups.length, `one upstream tried twice: ${JSON.stringify(line)}`);
}

/** Replace one character so the bytes it stands for change (base64url digit value xor 32; anything else -> 'x'). */
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
function mutateAt(value: string, i: number): string {
  const c = value[i] as string;
  const k = B64.indexOf(c);
  const r = k >= 0 ? (B64[k ^ 32] as string) : c === 'x' ? 'y' : 'x';
  return value.slice(0, i) + r + value.slice(i + 1);
}

for (const runtime of RUNTIMES) {
  describe(`load balancing on ${runtime}`, () => {
    let proxy: ProxyHandle;
    // Child-process stubs: killed, stopped, restarted.
    let K: Stub[] = [];
    let H: Stub[] = [];
    let F: Stub[] = [];
    let blackhole: Stub | undefined;
    const fillers: net.Socket[] = [];
    // In-process upstreams.
    let wrr: Named[] = [];
    let rnd: Named[] = [];
    let slow: Named;
    let fast: Named;
    let hashed: Named[] = [];
    let byIp: Named[] = [];
    let sticky: Named[] = [];
    let sticky2: Named[] = [];
    let capped: Named;
    let live: Named;
    let failing: Upstream;
    let never: Upstream[] = [];
    let stall: Upstream;
    let dead: number[] = [];
    let byPath: Named[] = [];
    let byCookie: Named[] = [];
    let twoChoices: Named[] = [];
    let capPair: Named[] = [];
    let leave: Named[] = [];
    const inProcess = (): (Upstream | undefined)[] => [
      ...wrr,
      ...rnd,
      slow,
      fast,
      ...hashed,
      ...byIp,
      ...sticky,
      ...sticky2,
      capped,
      live,
      failing,
      ...never,
      ...byPath,
      ...byCookie,
      ...twoChoices,
      ...capPair,
      ...leave,
      stall,
    ];

    before(async () => {
      [K, H, F, blackhole] = await Promise.all([
        Promise.all([startStub(), startStub(), startStub()]),
        Promise.all([startStub(), startStub(), startStub()]),
        Promise.all([startStub(), startStub()]),
        startStub({ backlog: 1 }),
      ]);
      // A connect that never completes: the stub is stopped and its accept queue (backlog 1) is
      // full, so the kernel drops further SYNs.
      blackhole.pause();
      for (let i = 0; i < 4; i++) {
        const s = net.connect(blackhole.port, '127.0.0.1');
        s.on('error', () => {});
        fillers.push(s);
      }
      await sleep(100);
      [wrr, rnd, hashed, byIp, sticky, sticky2] = await Promise.all([
        Promise.all([startNamed(), startNamed()]),
        Promise.all([startNamed(), startNamed()]),
        Promise.all([startNamed(), startNamed(), startNamed()]),
        Promise.all([startNamed(), startNamed(), startNamed()]),
        Promise.all([startNamed(), startNamed(), startNamed()]),
        Promise.all([startNamed(), startNamed()]),
      ]);
      [slow, fast, capped, live] = await Promise.all([startNamed({ delayMs: 1000 }), startNamed(), startNamed(), startNamed()]);
      const three = () => Promise.all([startNamed(), startNamed(), startNamed()]);
      [byPath, byCookie, twoChoices, capPair, leave] = await Promise.all([three(), three(), three(), three(), three()]);
      failing = await startUpstream((_req, res) => {
        res.writeHead(503, { 'content-type': 'text/plain', 'x-stub': 'failing' });
        res.end('busy');
      });
      never = await Promise.all([startUpstream(() => {}, { raw: true }), startUpstream(() => {}, { raw: true })]);
      // /small: a 100-byte body (small enough for the proxy to collect whole) that stops after 10
      // bytes; /chunked: a chunked body that stops after its first chunk.
      stall = await startUpstream(
        (req, res) => {
          if (req.url?.startsWith('/small')) {
            res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' });
            res.write('x'.repeat(10));
          } else {
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.write('y'.repeat(1000));
          }
        },
        { raw: true },
      );
      dead = await Promise.all([deadPort(), deadPort(), deadPort()]);
      const o = (port: number) => `http://127.0.0.1:${port}`;
      const health = { path: '/healthz', intervalMs: INTERVAL };
      proxy = await startProxy(runtime, {
        routes: [
          { host: 'kill.test', upstream: { targets: K.map((s) => s.origin), health } },
          { host: 'hang.test', timeoutMs: HANG_TIMEOUT, upstream: { targets: H.map((s) => s.origin), health, retry: { tryDurationMs: 2000 } } },
          { host: 'first.test', upstream: { targets: F.map((s) => s.origin), policy: 'first', health } },
          { host: 'wrr.test', upstream: { targets: [{ url: wrr[0]?.origin, weight: 3 }, wrr[1]?.origin] } },
          { host: 'random.test', upstream: { targets: [{ url: rnd[0]?.origin, weight: 3 }, rnd[1]?.origin], policy: 'random' } },
          { host: 'lc.test', upstream: { targets: [slow.origin, fast.origin], policy: 'least_conn' } },
          { host: 'hash.test', upstream: { targets: hashed.map((u) => u.origin), policy: { hash: 'header', name: 'x-user' } } },
          { host: 'iphash.test', upstream: { targets: byIp.map((u) => u.origin), policy: { hash: 'ip' } } },
          { host: 'sticky.test', upstream: { targets: sticky.map((u) => u.origin), policy: { sticky: { cookie: 'lb', secret: SECRET, maxAgeSeconds: 120 } } } },
          { host: 'sticky2.test', upstream: { targets: sticky2.map((u) => u.origin), policy: { sticky: {} } } },
          { host: 'down.test', upstream: [o(dead[0] as number), o(dead[1] as number)] },
          { host: 'cap.test', upstream: { targets: [{ url: capped.origin, maxInFlight: 1 }] } },
          { host: 'cap2.test', upstream: { targets: [{ url: capPair[0]?.origin, maxInFlight: 1 }, capPair[1]?.origin], policy: 'first' } },
          { host: 'path.test', upstream: { targets: byPath.map((u) => u.origin), policy: { hash: 'path' } } },
          { host: 'cookie.test', upstream: { targets: byCookie.map((u) => u.origin), policy: { hash: 'cookie', name: 'sid' } } },
          { host: 'p2c.test', upstream: { targets: twoChoices.map((u) => u.origin), policy: 'p2c' } },
          { host: 'leave.test', upstream: { targets: [leave[0]?.origin, leave[1]?.origin], policy: 'first' } },
          { host: 'retry.test', upstream: { targets: [o(dead[2] as number), live.origin], policy: 'first', passive: false } },
          {
            host: 'status.test',
            upstream: { targets: [failing.origin, live.origin], policy: 'first', passive: false, retry: { statuses: [503], replayBodyBytes: 1000 } },
          },
          { host: 'hang2.test', timeoutMs: SHORT_TIMEOUT, upstream: { targets: never.map((u) => u.origin), passive: false, retry: { tryDurationMs: 5000 } } },
          {
            host: 'hang3.test',
            timeoutMs: SHORT_TIMEOUT,
            upstream: { targets: never.map((u) => u.origin), passive: false, retry: { tryDurationMs: 5000, onTimeout: false } },
          },
          { host: 'connect.test', connectTimeoutMs: CONNECT_TIMEOUT, upstream: { targets: [blackhole.origin, live.origin], policy: 'first', passive: false } },
          { host: 'connect1.test', connectTimeoutMs: CONNECT_TIMEOUT, upstream: blackhole.origin },
          { host: 'bodyidle.test', bodyIdleTimeoutMs: BODY_IDLE, upstream: stall.origin },
          { host: '*', upstream: live.origin },
        ],
      });
    });

    after(async () => {
      await proxy?.stop();
      for (const s of fillers) s.destroy();
      await Promise.all([...K, ...H, ...F, blackhole].map((s) => s?.close()));
      await Promise.all(inProcess().map((u) => u?.close()));
    });

    describe('kill: three upstreams under load, one SIGKILLed mid-run and restarted on its port', () => {
      const GET_WORKERS = 4;
      const POST_WORKERS = 2;
      const ROUTE = 'kill.test/';
      let victim: Stub;
      let gets: Outcome[] = [];
      let posts: Outcome[] = [];
      let killedAt = 0;
      let readyAt = 0;
      let stoppedAt = 0;

      before(async () => {
        victim = K[0] as Stub;
        const common = { port: proxy.port, host: 'kill.test', pauseMs: 10, maxRequests: 20_000, maxMs: 12_000 };
        const g = startLoad({ ...common, workers: GET_WORKERS, prefix: `${runtime}-kg` });
        const p = startLoad({ ...common, method: 'POST', workers: POST_WORKERS, prefix: `${runtime}-kp` });
        try {
          await sleep(1500);
          killedAt = await victim.kill();
          await sleep(3000);
          readyAt = await victim.restart();
          await until(() => served(victim.requests).some((r) => r.gen === 2), BACK_WITHIN + 2000, 'the restarted upstream gets requests again').catch(() => {});
          await sleep(1000);
        } finally {
          gets = await g.stop();
          posts = await p.stop();
          stoppedAt = Date.now();
        }
        await sleep(300); // the last access lines
        const byStub = tally(served(K.flatMap((s) => s.requests)).map((r) => r.gen));
        log(
          runtime,
          `kill: ${gets.length} GETs, ${posts.length} POSTs; victim ${victim.port} killed at +1.5 s, ready again ${readyAt - killedAt} ms later; requests by run ${JSON.stringify([...byStub])}`,
        );
      });

      test('every upstream had traffic before the kill, and the loop really ran', () => {
        assert.ok(gets.length >= 200, `only ${gets.length} GETs in the loop`);
        assert.ok(posts.length >= 50, `only ${posts.length} POSTs in the loop`);
        for (const s of K)
          assert.ok(
            served(s.requests).some((r) => r.at < killedAt),
            `upstream ${s.port} got nothing before the kill`,
          );
      });

      test('zero failed client GETs', () => {
        const failed = gets.filter((o) => o.status !== 200);
        assert.deepEqual(
          failed.slice(0, 10).map((o) => ({ id: o.id, status: o.status, error: o.error, startVsKill: o.start - killedAt, ms: o.end - o.start })),
          [],
          `${failed.length} of ${gets.length} GETs failed`,
        );
      });

      test('the killed upstream is out within the passive window: one "upstream down" line, no try goes to it until it is back', () => {
        const downs = transitions(proxy, ROUTE, victim.origin, 'upstream down').filter((l) => timeOf(l) >= killedAt - 5);
        assert.ok(
          downs.length >= 1,
          `no "upstream down" line for ${victim.origin}; health lines: ${JSON.stringify(proxy.lines.filter((l) => l.msg.startsWith('upstream')))}`,
        );
        const down = downs[0] as LogLine;
        log(runtime, `kill: down ${timeOf(down) - killedAt} ms after the kill: ${JSON.stringify(down)}`);
        assert.equal(down.level, 'warn');
        assert.ok(down.source === 'passive' || down.source === 'active', `source: ${down.source}`);
        assert.ok(typeof down.reason === 'string' && down.reason.length > 0, `reason: ${down.reason}`);
        assert.ok(timeOf(down) - killedAt <= OUT_WITHIN, `"upstream down" ${timeOf(down) - killedAt} ms after the kill (bound ${OUT_WITHIN} ms)`);
        const downAt = timeOf(down);
        const firstUp = transitions(proxy, ROUTE, victim.origin, 'upstream up').find((l) => timeOf(l) >= killedAt);
        const upAt = firstUp ? timeOf(firstUp) : stoppedAt;
        assert.equal(downs.filter((l) => timeOf(l) <= upAt).length, 1, `"upstream down" logged more than once for one outage: ${JSON.stringify(downs)}`);
        const lines = accessOf(proxy, 'kill.test');
        const triedVictim = lines.filter((l) => timeOf(l) >= killedAt && timeOf(l) < readyAt && triedOf(l).includes(victim.origin));
        const late = triedVictim.filter((l) => timeOf(l) > downAt + 200);
        assert.deepEqual(late.slice(0, 5), [], `${late.length} requests still tried ${victim.origin} more than 200 ms after "upstream down"`);
        // Only requests already under way, or picked before the first failure was seen: at most
        // one per load worker (a request never tries one upstream twice).
        const workers = GET_WORKERS + POST_WORKERS;
        assert.ok(
          triedVictim.length <= workers + 2,
          `${triedVictim.length} requests tried the dead upstream (bound ${workers + 2}): ${JSON.stringify(triedVictim.slice(0, 5))}`,
        );
      });

      test('it is back within two health intervals after it answers again (one "upstream up", source active)', () => {
        assert.ok(readyAt > 0, 'the stub was not restarted');
        const ups = transitions(proxy, ROUTE, victim.origin, 'upstream up').filter((l) => timeOf(l) >= readyAt - 5);
        assert.ok(ups.length >= 1, `no "upstream up" line for ${victim.origin} after its restart`);
        const up = ups[0] as LogLine;
        log(runtime, `kill: up ${timeOf(up) - readyAt} ms after it listened again: ${JSON.stringify(up)}`);
        assert.equal(up.level, 'info');
        assert.equal(up.source, 'active', `the cool-down (10 s) had not run out, so only an active check brings it back: ${JSON.stringify(up)}`);
        assert.ok(timeOf(up) - readyAt <= BACK_WITHIN, `"upstream up" ${timeOf(up) - readyAt} ms after the upstream listened again (bound ${BACK_WITHIN} ms)`);
        const firstServed = served(victim.requests).find((r) => r.gen === 2);
        assert.ok(firstServed, 'the restarted upstream got no requests');
        assert.ok(
          firstServed.at - readyAt <= BACK_WITHIN,
          `first request at the restarted upstream ${firstServed.at - readyAt} ms after it listened (bound ${BACK_WITHIN} ms)`,
        );
        assert.equal(ups.length, 1, `"upstream up" logged more than once: ${JSON.stringify(ups)}`);
        const downsAfter = transitions(proxy, ROUTE, victim.origin, 'upstream down').filter((l) => timeOf(l) > timeOf(up));
        assert.deepEqual(downsAfter, [], 'taken out again after coming back');
      });

      test('no POST delivered twice; POSTs that failed got 502/504; refused tries were retried and delivered once', () => {
        const deliveries = tally(
          K.flatMap((s) => s.requests)
            .filter((r) => r.method === 'POST')
            .map((r) => r.id),
        );
        const twice = [...deliveries].filter(([, n]) => n > 1);
        assert.deepEqual(twice, [], 'POSTs delivered more than once');
        const failed = posts.filter((o) => o.status !== 200);
        log(runtime, `kill: ${failed.length} of ${posts.length} POSTs failed: ${JSON.stringify([...tally(failed.map((o) => o.status || o.error))])}`);
        for (const o of posts) {
          if (o.status === 200) {
            assert.equal(deliveries.get(o.id), 1, `POST ${o.id} answered 200 but delivered ${deliveries.get(o.id) ?? 0} times`);
            const at = K.find((s) => s.port === o.stub);
            assert.ok(
              at?.requests.some((r) => r.id === o.id),
              `POST ${o.id} answered by ${o.stub}, which never saw it`,
            );
          } else {
            assert.equal(o.error, null, `POST ${o.id} got no answer at all: ${o.error}`);
            assert.ok(o.status === 502 || o.status === 504, `POST ${o.id} failed with ${o.status}`);
          }
        }
        const lines = accessOf(proxy, 'kill.test').filter((l) => l.method === 'POST' && (l.tries as number) > 1);
        for (const l of lines) {
          const id = String(l.path).replace('/load/', '');
          assert.equal(l.status, 200, `a retried POST ended ${l.status}: ${JSON.stringify(l)}`);
          assert.equal(deliveries.get(id), 1, `retried POST ${id} delivered ${deliveries.get(id) ?? 0} times: ${JSON.stringify(l)}`);
          assert.equal((l.upstreams as string[])[0], victim.origin, `a POST retried away from a live upstream: ${JSON.stringify(l)}`);
        }
      });

      test('retried requests say so in the access line: tries, upstreams (dead one first), upstream = the last', () => {
        const lines = accessOf(proxy, 'kill.test');
        for (const l of lines) assertTryList(l);
        const retried = lines.filter((l) => (l.tries as number) > 1);
        log(runtime, `kill: ${retried.length} retried requests, e.g. ${JSON.stringify(retried[0])}`);
        // Either a request met the dead upstream and was retried away from it, or the first
        // failure was a request already in flight at the kill (a reset: not retried once sent,
        // e.g. a POST), which took it out before any request could meet it.
        const away = retried.some((l) => l.status === 200 && (l.upstreams as string[])[0] === victim.origin);
        const down = proxy.lines.find((l) => l.msg === 'upstream down' && l.upstream === victim.origin);
        assert.ok(
          away || /ECONNRESET|failed before responding|closed/.test(String(down?.reason)),
          `no request was retried away from the dead upstream, and it was not taken out by a request in flight: ${JSON.stringify(down)}`,
        );
      });
    });

    describe('hang: one of three upstreams stops answering (SIGSTOP) under load, then continues', () => {
      const WORKERS = 4;
      const ROUTE = 'hang.test/';
      let victim: Stub;
      let outs: Outcome[] = [];
      let pausedAt = 0;
      let resumedAt = 0;

      before(async () => {
        victim = H[0] as Stub;
        const load = startLoad({
          port: proxy.port,
          host: 'hang.test',
          workers: WORKERS,
          pauseMs: 10,
          maxRequests: 20_000,
          maxMs: 10_000,
          prefix: `${runtime}-h`,
        });
        try {
          await sleep(1000);
          pausedAt = victim.pause();
          await sleep(2500);
          resumedAt = victim.resume();
          await proxy
            .waitForLine((l) => l.msg === 'upstream up' && l.route === ROUTE && l.upstream === victim.origin && timeOf(l) >= resumedAt - 5, BACK_WITHIN + 2000)
            .catch(() => {});
          await sleep(700);
        } finally {
          if (pausedAt && !resumedAt) resumedAt = victim.resume();
          outs = await load.stop();
        }
        await sleep(300);
        const slowOnes = outs.filter((o) => o.end - o.start >= HANG_TIMEOUT - 50);
        log(runtime, `hang: ${outs.length} GETs, ${slowOnes.length} waited a head timeout, statuses ${JSON.stringify([...tally(outs.map((o) => o.status))])}`);
      });

      test('clients see only 200s or 504s, each within one head timeout (plus 500 ms)', () => {
        assert.ok(outs.length >= 100, `only ${outs.length} GETs in the loop`);
        const bad = outs.filter((o) => o.status !== 200 && o.status !== 504);
        assert.deepEqual(bad.slice(0, 5), [], `${bad.length} answers other than 200/504`);
        // A request waits for the hung upstream at most once (a retry never takes it again).
        const budget = HANG_TIMEOUT + 500;
        const long = outs.filter((o) => o.end - o.start > budget);
        assert.deepEqual(
          long.slice(0, 5).map((o) => ({ ...o, ms: o.end - o.start, startVsPause: o.start - pausedAt })),
          [],
          `${long.length} requests took longer than ${budget} ms`,
        );
      });

      test('then it is routed around: "upstream down", and no request waits a head timeout after that', () => {
        const downs = transitions(proxy, ROUTE, victim.origin, 'upstream down').filter((l) => timeOf(l) >= pausedAt - 5);
        assert.ok(downs.length >= 1, `no "upstream down" line for the hung ${victim.origin}`);
        const down = downs[0] as LogLine;
        log(runtime, `hang: down ${timeOf(down) - pausedAt} ms after SIGSTOP: ${JSON.stringify(down)}`);
        assert.ok(down.source === 'passive' || down.source === 'active', `source: ${down.source}`);
        assert.ok(typeof down.reason === 'string' && down.reason.length > 0, `reason: ${down.reason}`);
        assert.ok(timeOf(down) - pausedAt <= HANG_TIMEOUT + 600, `"upstream down" ${timeOf(down) - pausedAt} ms after SIGSTOP (bound ${HANG_TIMEOUT + 600})`);
        const slowOnes = outs.filter((o) => o.end - o.start >= HANG_TIMEOUT - 50);
        const lateSlow = slowOnes.filter((o) => o.start > timeOf(down) + 100);
        assert.deepEqual(
          lateSlow.slice(0, 5).map((o) => ({ id: o.id, status: o.status, ms: o.end - o.start, startVsDown: o.start - timeOf(down) })),
          [],
          'requests started after "upstream down" still waited a head timeout',
        );
        assert.ok(slowOnes.length <= WORKERS + 1, `${slowOnes.length} requests waited a head timeout (bound: one per worker, ${WORKERS} + 1)`);
        for (const l of accessOf(proxy, 'hang.test')) assertTryList(l);
      });

      test('after SIGCONT it is back within two health intervals and gets requests again', () => {
        const ups = transitions(proxy, ROUTE, victim.origin, 'upstream up').filter((l) => timeOf(l) >= resumedAt - 5);
        assert.ok(ups.length >= 1, `no "upstream up" line after SIGCONT`);
        const up = ups[0] as LogLine;
        log(runtime, `hang: up ${timeOf(up) - resumedAt} ms after SIGCONT: ${JSON.stringify(up)}`);
        assert.ok(timeOf(up) - resumedAt <= BACK_WITHIN, `"upstream up" ${timeOf(up) - resumedAt} ms after SIGCONT (bound ${BACK_WITHIN} ms)`);
        const again = outs.filter((o) => o.stub === victim.port && o.start > resumedAt);
        assert.ok(again.length > 0, 'no request answered by it after SIGCONT');
      });
    });

    test('first: all to the first; first killed -> all to the second at once; first back (health) -> all to the first again', async () => {
      const [a, b] = F as [Stub, Stub];
      const initial = await sequence(proxy.port, 'first.test', 20);
      assert.deepEqual(tally(initial), new Map([[a.port, 20]]));
      const killedAt = await a.kill();
      const during = await sequence(proxy.port, 'first.test', 30);
      assert.deepEqual(tally(during), new Map([[b.port, 30]]), 'with the first dead, every request goes to the second (and succeeds)');
      const readyAt = await a.restart();
      let backAt = 0;
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const end = Date.now() + BACK_WITHIN + 2000;
        while (Date.now() < end) {
          const t = Date.now();
          const r = await call(proxy.port, 'first.test', { agent });
          assert.equal(r.status, 200);
          if (r.stub === a.port) {
            backAt = t;
            break;
          }
          await sleep(20);
        }
      } finally {
        agent.destroy();
      }
      log(runtime, `first: back on the first ${backAt ? backAt - readyAt : 'never'} ms after it listened again`);
      assert.ok(backAt > 0, `requests did not return to the first within ${BACK_WITHIN + 2000} ms`);
      assert.ok(backAt - readyAt <= BACK_WITHIN, `back on the first ${backAt - readyAt} ms after it listened again (bound ${BACK_WITHIN} ms)`);
      const afterBack = await sequence(proxy.port, 'first.test', 20);
      assert.deepEqual(tally(afterBack), new Map([[a.port, 20]]));
      const down = transitions(proxy, 'first.test/', a.origin, 'upstream down').find((l) => timeOf(l) >= killedAt - 5);
      const up = transitions(proxy, 'first.test/', a.origin, 'upstream up').find((l) => timeOf(l) >= readyAt - 5);
      assert.ok(down, 'no "upstream down" line for the first');
      assert.ok(up, 'no "upstream up" line for the first');
      assert.equal(up.source, 'active');
    });

    test('round_robin with weights 3:1 over 400 requests: exactly 300:100, smoothly interleaved (one in every 4)', async () => {
      const [a, b] = wrr as [Named, Named];
      const got = await sequence(proxy.port, 'wrr.test', 400);
      const t = tally(got);
      assert.equal(t.get(a.port), 300, `counts ${JSON.stringify([...t])}`);
      assert.equal(t.get(b.port), 100, `counts ${JSON.stringify([...t])}`);
      for (let i = 0; i + 4 <= got.length; i++) {
        const window = got.slice(i, i + 4).filter((s) => s === b.port).length;
        assert.equal(
          window,
          1,
          `requests ${i}..${i + 3} hold ${window} for the weight-1 upstream: ${got
            .slice(0, 24)
            .map((s) => (s === a.port ? 'a' : 'b'))
            .join('')}...`,
        );
      }
    });

    test('random with weights 3:1 over 800 requests: the heavy one gets 75% within 5 sigma (539..661)', async () => {
      const [a, b] = rnd as [Named, Named];
      const got = await sequence(proxy.port, 'random.test', 800);
      const t = tally(got);
      log(runtime, `random 3:1: ${t.get(a.port)}:${t.get(b.port)}`);
      const heavy = t.get(a.port) ?? 0;
      assert.ok(heavy >= 539 && heavy <= 661, `heavy one got ${heavy} of 800 (expected 600 +- 61)`);
      assert.equal(heavy + (t.get(b.port) ?? 0), 800);
    });

    test('least_conn: while the slow upstream holds a request, the next ones go to the idle one', async () => {
      const pending: Promise<Awaited<ReturnType<typeof call>>>[] = [];
      // 20 requests 25 ms apart, all inside the slow one's 1 s answer time.
      for (let i = 0; i < 20; i++) {
        pending.push(call(proxy.port, 'lc.test', { path: `/lc/${i}` }));
        await sleep(25);
      }
      const answers = await Promise.all(pending);
      assert.deepEqual(
        answers.map((a) => a.status).filter((s) => s !== 200),
        [],
      );
      const toSlow = answers.filter((a) => a.stub === slow.port).length;
      log(runtime, `least_conn: slow ${toSlow}, idle ${answers.length - toSlow}`);
      assert.ok(toSlow <= 1, `the busy slow upstream got ${toSlow} of 20 (round robin would give 10; least_conn at most the first tie)`);
    });

    test('hash by header: a key always reaches one upstream, 60 keys reach all three; removing one moves only its keys', async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const keys = Array.from({ length: 60 }, (_, i) => `user-${i}`);
        const home = new Map<string, number>();
        for (const k of keys)
          for (let r = 0; r < 3; r++) {
            const a = await call(proxy.port, 'hash.test', { agent, path: `/h/${r}`, headers: { 'x-user': k } });
            assert.equal(a.status, 200);
            if (r === 0) home.set(k, a.stub as number);
            else assert.equal(a.stub, home.get(k), `key ${k} moved from ${home.get(k)} to ${a.stub} with nothing changed`);
          }
        const spread = tally([...home.values()]);
        log(runtime, `hash header: ${JSON.stringify([...spread])}`);
        assert.equal(spread.size, 3, `60 keys reached only ${spread.size} upstreams`);
        const gone = hashed[2] as Named;
        await gone.close();
        const moved: string[] = [];
        for (const k of keys) {
          const a = await call(proxy.port, 'hash.test', { agent, headers: { 'x-user': k } });
          const b = await call(proxy.port, 'hash.test', { agent, headers: { 'x-user': k } });
          assert.equal(a.status, 200, `key ${k} after one upstream went away: ${a.status} ${a.body}`);
          assert.equal(b.stub, a.stub, `key ${k} is not stable after one upstream went away`);
          if (home.get(k) !== gone.port) {
            if (a.stub !== home.get(k)) moved.push(k);
          } else assert.notEqual(a.stub, gone.port);
        }
        assert.deepEqual(moved, [], 'keys of the remaining upstreams moved when another was removed');
      } finally {
        agent.destroy();
      }
    });

    test('hash by ip: each client address always reaches one upstream; 30 addresses reach all three', async () => {
      const home = new Map<string, number>();
      for (let i = 0; i < 30; i++) {
        const addr = `127.0.0.${10 + i}`;
        for (let r = 0; r < 3; r++) {
          const a = await call(proxy.port, 'iphash.test', { localAddress: addr, path: `/ip/${i}/${r}` });
          assert.equal(a.status, 200);
          if (r === 0) home.set(addr, a.stub as number);
          else assert.equal(a.stub, home.get(addr), `${addr} moved from ${home.get(addr)} to ${a.stub}`);
        }
      }
      const seen = await lineFor(proxy, 'iphash.test', '/ip/5/0');
      assert.equal(seen.client, '127.0.0.15', 'the proxy did not see the bound client address (the premise of this case)');
      const spread = tally([...home.values()]);
      log(runtime, `hash ip: ${JSON.stringify([...spread])}`);
      assert.equal(spread.size, 3, `30 addresses reached only ${spread.size} upstreams`);
    });

    describe('sticky cookies', () => {
      /** Cookie value by upstream port, on sticky.test. */
      const cookies = new Map<number, string>();
      let otherRouteCookie = '';

      test("the first answer sets `lb=<v>; Path=/; HttpOnly; SameSite=Lax; Max-Age=120` next to the upstream's own cookie; the cookie pins its upstream", async () => {
        for (let i = 0; i < 3; i++) {
          const a = await call(proxy.port, 'sticky.test', { path: '/with-cookie' });
          assert.equal(a.status, 200);
          const set = setCookiesFor(a, 'lb');
          assert.equal(set.length, 1, `Set-Cookie: ${JSON.stringify(a.headers['set-cookie'])}`);
          assert.deepEqual(set[0]?.attributes, ['httponly', 'max-age=120', 'path=/', 'samesite=lax'], `Set-Cookie: ${JSON.stringify(a.headers['set-cookie'])}`);
          assert.ok((set[0]?.value ?? '').length > 0);
          assert.ok(setCookiesFor(a, 'app').length === 1, `the upstream's own Set-Cookie was lost: ${JSON.stringify(a.headers['set-cookie'])}`);
          cookies.set(a.stub as number, set[0]?.value as string);
        }
        log(runtime, `sticky: cookies ${JSON.stringify([...cookies])}`);
        assert.equal(cookies.size, 3, 'three requests without a cookie did not reach three upstreams (round robin fallback)');
        assert.equal(new Set(cookies.values()).size, 3);
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        try {
          for (const [port, value] of cookies)
            for (let i = 0; i < 10; i++) {
              const a = await call(proxy.port, 'sticky.test', { agent, headers: { cookie: i % 2 ? `a=1; lb=${value}; b=2` : `lb=${value}` } });
              assert.equal(a.status, 200);
              assert.equal(a.stub, port, `request ${i} with the cookie of ${port} went to ${a.stub}`);
            }
        } finally {
          agent.destroy();
        }
      });

      test('defaults: cookie `switchyard_upstream`, Path=/; HttpOnly; SameSite=Lax, no Max-Age; a pinned upstream that went away is replaced', async () => {
        const a = await call(proxy.port, 'sticky2.test');
        assert.equal(a.status, 200);
        const set = setCookiesFor(a, 'switchyard_upstream');
        assert.equal(set.length, 1, `Set-Cookie: ${JSON.stringify(a.headers['set-cookie'])}`);
        assert.deepEqual(set[0]?.attributes, ['httponly', 'path=/', 'samesite=lax']);
        otherRouteCookie = set[0]?.value ?? '';
        const cookie = `switchyard_upstream=${set[0]?.value}`;
        for (let i = 0; i < 5; i++) assert.equal((await call(proxy.port, 'sticky2.test', { headers: { cookie } })).stub, a.stub);
        const pinned = sticky2.find((u) => u.port === a.stub) as Named;
        await pinned.close();
        const b = await call(proxy.port, 'sticky2.test', { headers: { cookie } });
        assert.equal(b.status, 200, `the cookie's upstream is gone: ${b.status} ${b.body}`);
        assert.notEqual(b.stub, pinned.port);
        log(runtime, `sticky: pinned upstream gone -> ${b.stub}, Set-Cookie ${JSON.stringify(b.headers['set-cookie'] ?? null)}`);
      });

      test('tamper-proof: altered, spliced and made-up values are ignored (a normal pick, a fresh Set-Cookie), never an error', async () => {
        assert.equal(cookies.size, 3, 'needs the cookies of the first sticky case');
        const [[, va], , [pc, vc]] = [...cookies] as [[number, string], [number, string], [number, string]];
        const valid = new Set(cookies.values());
        const forged = new Set<string>();
        for (let i = 0; i < va.length; i++) forged.add(mutateAt(va, i));
        for (let k = 1; k < Math.max(va.length, vc.length); k++) {
          forged.add(va.slice(0, k) + vc.slice(k));
          forged.add(vc.slice(0, k) + va.slice(k));
        }
        for (const s of sticky)
          for (const v of [
            String(s.port),
            s.origin,
            `127.0.0.1:${s.port}`,
            Buffer.from(s.origin).toString('base64url'),
            Buffer.from(s.origin).toString('base64'),
          ])
            forged.add(v);
        for (const v of ['', 'x', '0', '1', '2', '3', '-1', `${va}x`, va.slice(1), va.slice(0, -1), va + va, va.toUpperCase(), encodeURIComponent(va)])
          forged.add(v);
        // The cookie of the other sticky route (another, random key) is not valid here either.
        if (otherRouteCookie) forged.add(otherRouteCookie);
        for (const v of valid) forged.delete(v);
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        const honoured: string[] = [];
        try {
          for (const v of forged) {
            const a = await call(proxy.port, 'sticky.test', { agent, headers: { cookie: `lb=${v}` } });
            assert.equal(a.status, 200, `cookie lb=${JSON.stringify(v)}: ${a.status} ${a.body}`);
            const set = setCookiesFor(a, 'lb');
            if (set.length !== 1 || set[0]?.value === v) honoured.push(v);
          }
          assert.deepEqual(honoured.slice(0, 10), [], `${honoured.length} of ${forged.size} forged values were taken as valid (no fresh Set-Cookie)`);
          // Aiming at one upstream with a forged value does not pin it: six tries reach more than one.
          const aimed = mutateAt(vc, vc.length - 1);
          const reached = new Set<number>();
          for (let i = 0; i < 6; i++) reached.add((await call(proxy.port, 'sticky.test', { agent, headers: { cookie: `lb=${aimed}` } })).stub as number);
          assert.ok(reached.size > 1, `a forged value pinned upstream ${[...reached]} (the cookie of ${pc} altered by one character)`);
        } finally {
          agent.destroy();
        }
      });
    });

    test('all upstreams down: 503 at once with Retry-After, access line "no upstream available"', async () => {
      const first = await call(proxy.port, 'down.test', { path: '/first' });
      assert.ok(first.status === 502 || first.status === 503, `both refused: ${first.status} ${first.body}`);
      const firstLine = await lineFor(proxy, 'down.test', '/first');
      assertTryList(firstLine);
      if (first.status === 502) {
        assert.equal(firstLine.tries, 2, `retries default to the number of targets: ${JSON.stringify(firstLine)}`);
        assert.deepEqual(new Set(firstLine.upstreams as string[]), new Set(dead.slice(0, 2).map((p) => `http://127.0.0.1:${p}`)));
      }
      const again = await call(proxy.port, 'down.test', { path: '/again' });
      assert.equal(again.status, 503, `both in cool-down: ${again.status} ${again.body}`);
      assert.ok(again.ms < 500, `503 after ${again.ms.toFixed(0)} ms, not at once`);
      const retryAfter = String(again.headers['retry-after'] ?? '');
      assert.match(retryAfter, /^\d+$/, `Retry-After: ${JSON.stringify(again.headers['retry-after'])}`);
      assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 10, `Retry-After ${retryAfter} (cool-down is 10 s)`);
      const line = await lineFor(proxy, 'down.test', '/again');
      assert.equal(line.status, 503);
      assert.match(String(line.error), /^no upstream available/, JSON.stringify(line));
      const downs = proxy.lines.filter((l) => l.msg === 'upstream down' && l.route === 'down.test/');
      assert.equal(downs.length, 2, `one "upstream down" per refused upstream: ${JSON.stringify(downs)}`);
      for (const d of downs) assert.equal(d.source, 'passive');
      // Last: the line must not name an upstream nothing was sent to (AccessEntry.upstream: "or null when none was").
      assert.equal(line.upstream, null, `nothing was tried: ${JSON.stringify(line)}`);
    });

    test('maxInFlight 1: a second request while one is in flight gets 503 at once with Retry-After; served again once free', async () => {
      const held = call(proxy.port, 'cap.test', { path: '/held', headers: { 'x-delay-ms': '1000' } });
      await until(() => capped.hits() >= 1, 3000, 'the held request reaches the upstream');
      const over = await call(proxy.port, 'cap.test', { path: '/over' });
      assert.equal(over.status, 503, `${over.status} ${over.body}`);
      assert.ok(over.ms < 500, `503 after ${over.ms.toFixed(0)} ms, not at once`);
      assert.match(String(over.headers['retry-after'] ?? ''), /^[1-9]\d*$/, `Retry-After: ${JSON.stringify(over.headers['retry-after'])}`);
      assert.equal(capped.hits(), 1, 'the request over the cap reached the upstream');
      assert.equal((await held).status, 200);
      const line = await lineFor(proxy, 'cap.test', '/over');
      assert.match(String(line.error), /^no upstream available/, JSON.stringify(line));
      const free = await call(proxy.port, 'cap.test', { path: '/free' });
      assert.equal(free.status, 200, 'not served again once the cap was free (a cap must not count as a failure)');
    });

    test('hash by path and by cookie: a key always reaches one upstream, 60 keys reach all three; no cookie goes round robin', async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const pathHome = new Map<string, number>();
        const cookieHome = new Map<string, number>();
        for (let i = 0; i < 60; i++)
          for (let r = 0; r < 2; r++) {
            const p = await call(proxy.port, 'path.test', { agent, path: `/page/${i}` });
            assert.equal(p.status, 200);
            if (r === 0) pathHome.set(`/page/${i}`, p.stub as number);
            else assert.equal(p.stub, pathHome.get(`/page/${i}`), `path /page/${i} moved`);
            const c = await call(proxy.port, 'cookie.test', { agent, path: `/c/${r}`, headers: { cookie: `x=1; sid=s${i}` } });
            assert.equal(c.status, 200);
            if (r === 0) cookieHome.set(`s${i}`, c.stub as number);
            else assert.equal(c.stub, cookieHome.get(`s${i}`), `cookie sid=s${i} moved`);
          }
        log(runtime, `hash path: ${JSON.stringify([...tally([...pathHome.values()])])}, cookie: ${JSON.stringify([...tally([...cookieHome.values()])])}`);
        assert.equal(new Set(pathHome.values()).size, 3, '60 paths did not reach all three upstreams');
        assert.equal(new Set(cookieHome.values()).size, 3, '60 cookies did not reach all three upstreams');
        const without = await sequence(proxy.port, 'cookie.test', 3, { agent });
        assert.equal(new Set(without).size, 3, `three requests without the cookie: ${without} (round robin)`);
      } finally {
        agent.destroy();
      }
    });

    test('p2c over three equal upstreams, 300 sequential requests: each gets at least 15% (a third expected)', async () => {
      const got = tally(await sequence(proxy.port, 'p2c.test', 300));
      log(runtime, `p2c: ${JSON.stringify([...got])}`);
      for (const u of twoChoices) assert.ok((got.get(u.port) ?? 0) >= 45, `p2c: ${u.port} got ${got.get(u.port) ?? 0} of 300: ${JSON.stringify([...got])}`);
    });

    test('maxInFlight on one of two: at its cap the next upstream takes the request (no 503); free again, the first', async () => {
      const [a, b] = capPair as [Named, Named];
      const held = call(proxy.port, 'cap2.test', { path: '/held', headers: { 'x-delay-ms': '800' } });
      await until(() => a.hits() >= 1, 3000, 'the held request reaches the first upstream');
      const next = await call(proxy.port, 'cap2.test', { path: '/next' });
      assert.equal(next.status, 200, `${next.status} ${next.body}`);
      assert.equal(next.stub, b.port, 'the capped first upstream took a second request');
      assert.equal((await held).stub, a.port);
      const again = await call(proxy.port, 'cap2.test', { path: '/again' });
      assert.equal(again.stub, a.port, 'the first did not take requests again once under its cap');
    });

    test('a client that disconnects does not count against the upstream', async () => {
      const [a] = leave as [Named, Named];
      const n = a.hits();
      const req = http.request({ host: '127.0.0.1', port: proxy.port, path: '/leaving', headers: { host: 'leave.test', 'x-delay-ms': '1500' }, agent: false });
      req.on('error', () => {});
      req.end();
      await until(() => a.hits() > n, 3000, 'the request reaches the upstream');
      await sleep(100);
      req.destroy();
      await sleep(400);
      const downs = proxy.lines.filter((l) => l.msg === 'upstream down' && l.route === 'leave.test/');
      assert.deepEqual(downs, [], 'a client that left put the upstream down');
      const later = await sequence(proxy.port, 'leave.test', 5);
      assert.deepEqual(tally(later), new Map([[a.port, 5]]), 'requests left the first upstream after a client disconnected');
    });

    test('a refused try goes to the next upstream for GET and POST (kept, streamed and chunked bodies): tries 2, upstreams [dead, live], each POST delivered once', async () => {
      const deadOrigin = `http://127.0.0.1:${dead[2]}`;
      const get = await call(proxy.port, 'retry.test', { path: '/r-get' });
      assert.equal(get.status, 200);
      assert.equal(get.stub, live.port);
      const gl = await lineFor(proxy, 'retry.test', '/r-get');
      assert.equal(gl.tries, 2, JSON.stringify(gl));
      assert.deepEqual(gl.upstreams, [deadOrigin, live.origin]);
      assert.equal(gl.upstream, live.origin);
      const id = `${runtime}-refused-post`;
      const post = await call(proxy.port, 'retry.test', { path: '/r-post', method: 'POST', headers: { 'x-req-id': id }, body: JSON.stringify({ id }) });
      assert.equal(post.status, 200, `${post.status} ${post.body}`);
      assert.equal(idsAt(live, id), 1, 'the POST was not delivered exactly once');
      assert.equal(JSON.parse(post.body).bytes, Buffer.byteLength(JSON.stringify({ id })), 'the replayed body arrived whole');
      const pl = await lineFor(proxy, 'retry.test', '/r-post');
      assert.equal(pl.tries, 2, JSON.stringify(pl));
      assert.deepEqual(pl.upstreams, [deadOrigin, live.origin]);
      // Bodies too large to keep (over replayBodyBytes, and chunked) are streamed: a refused try
      // took none of them, so the next try still gets them, once and whole.
      const big = 'b'.repeat(300_000);
      const bigId = `${runtime}-refused-big-post`;
      const bigPost = await call(proxy.port, 'retry.test', { path: '/r-big', method: 'POST', headers: { 'x-req-id': bigId }, body: big });
      assert.equal(bigPost.status, 200, `${bigPost.status} ${bigPost.body.slice(0, 200)}`);
      assert.equal(idsAt(live, bigId), 1, 'the streamed POST was not delivered exactly once');
      assert.equal(JSON.parse(bigPost.body).bytes, big.length, 'the streamed body arrived whole');
      assert.equal((await lineFor(proxy, 'retry.test', '/r-big')).tries, 2);
      const chunkedId = `${runtime}-refused-chunked-post`;
      const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request(
          { host: '127.0.0.1', port: proxy.port, path: '/r-chunked', method: 'POST', headers: { host: 'retry.test', 'x-req-id': chunkedId }, agent: false },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => {
              body += c;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        req.write(big.slice(0, 100_000));
        setTimeout(() => req.end(big.slice(100_000)), 50);
      });
      assert.equal(chunked.status, 200, `${chunked.status} ${chunked.body.slice(0, 200)}`);
      assert.equal(idsAt(live, chunkedId), 1, 'the chunked POST was not delivered exactly once');
      assert.equal(JSON.parse(chunked.body).bytes, big.length, 'the chunked body arrived whole');
      assert.equal((await lineFor(proxy, 'retry.test', '/r-chunked')).tries, 2);
      await call(proxy.port, 'plain.test', { path: '/single' });
      const single = await lineFor(proxy, 'plain.test', '/single');
      assert.ok(!('tries' in single) && !('upstreams' in single), `a single-try line carries tries/upstreams: ${JSON.stringify(single)}`);
    });

    test('retry.statuses: an idempotent request (body kept for replay) goes on to the next; POST and bodies over replayBodyBytes do not', async () => {
      const get = await call(proxy.port, 'status.test', { path: '/s-get' });
      assert.equal(get.status, 200, `${get.status} ${get.body}`);
      assert.equal(get.stub, live.port);
      const gl = await lineFor(proxy, 'status.test', '/s-get');
      assert.deepEqual(gl.upstreams, [failing.origin, live.origin], JSON.stringify(gl));
      const small = 'b'.repeat(500);
      const put = await call(proxy.port, 'status.test', { path: '/s-put', method: 'PUT', headers: { 'x-req-id': `${runtime}-put-small` }, body: small });
      assert.equal(put.status, 200, `${put.status} ${put.body}`);
      assert.equal(JSON.parse(put.body).bytes, 500, 'the replayed body did not arrive whole');
      const big = 'B'.repeat(5000);
      const bigPut = await call(proxy.port, 'status.test', { path: '/s-bigput', method: 'PUT', headers: { 'x-req-id': `${runtime}-put-big` }, body: big });
      assert.equal(bigPut.status, 503, `a body over replayBodyBytes was sent twice: ${bigPut.status} ${bigPut.body}`);
      assert.equal(idsAt(live, `${runtime}-put-big`), 0);
      const post = await call(proxy.port, 'status.test', { path: '/s-post', method: 'POST', headers: { 'x-req-id': `${runtime}-post-503` }, body: small });
      assert.equal(post.status, 503, `a POST went on to the next upstream after a 503: ${post.status}`);
      assert.equal(idsAt(live, `${runtime}-post-503`), 0);
    });

    test('head timeout per try: a GET tries both hung upstreams then 504; a POST is not retried once sent; onTimeout false stops at one', async () => {
      const get = await call(proxy.port, 'hang2.test', { path: '/t-get' });
      assert.equal(get.status, 504);
      assert.ok(get.ms >= 2 * SHORT_TIMEOUT - 30 && get.ms < 2 * SHORT_TIMEOUT + 800, `504 after ${get.ms.toFixed(0)} ms (two tries of ${SHORT_TIMEOUT})`);
      const gl = await lineFor(proxy, 'hang2.test', '/t-get');
      assert.equal(gl.tries, 2, JSON.stringify(gl));
      assert.deepEqual(new Set(gl.upstreams as string[]), new Set(never.map((u) => u.origin)));
      const id = `${runtime}-timeout-post`;
      const post = await call(proxy.port, 'hang2.test', { path: '/t-post', method: 'POST', headers: { 'x-req-id': id }, body: 'p'.repeat(100) });
      assert.equal(post.status, 504);
      assert.ok(post.ms >= SHORT_TIMEOUT - 30 && post.ms < SHORT_TIMEOUT + 800, `POST 504 after ${post.ms.toFixed(0)} ms (one try of ${SHORT_TIMEOUT})`);
      assert.equal(idsAt(never[0] as Upstream, id) + idsAt(never[1] as Upstream, id), 1, 'the timed-out POST was not delivered exactly once');
      const once = await call(proxy.port, 'hang3.test', { path: '/t-once' });
      assert.equal(once.status, 504);
      assert.ok(once.ms >= SHORT_TIMEOUT - 30 && once.ms < SHORT_TIMEOUT + 800, `onTimeout false: 504 after ${once.ms.toFixed(0)} ms`);
      const ol = await lineFor(proxy, 'hang3.test', '/t-once');
      assert.ok(!('tries' in ol), `onTimeout false still retried: ${JSON.stringify(ol)}`);
    });

    test('connectTimeoutMs: a connect that hangs is cut and the next upstream tried (GET and POST); alone it is a 504', async () => {
      const get = await call(proxy.port, 'connect.test', { path: '/c-get' });
      assert.equal(get.status, 200, `${get.status} ${get.body}`);
      assert.ok(get.ms >= CONNECT_TIMEOUT - 30 && get.ms < CONNECT_TIMEOUT + 800, `answered after ${get.ms.toFixed(0)} ms`);
      const gl = await lineFor(proxy, 'connect.test', '/c-get');
      assert.deepEqual(gl.upstreams, [(blackhole as Stub).origin, live.origin], JSON.stringify(gl));
      const id = `${runtime}-connect-post`;
      const post = await call(proxy.port, 'connect.test', { path: '/c-post', method: 'POST', headers: { 'x-req-id': id }, body: 'q'.repeat(100) });
      assert.equal(post.status, 200, `a POST whose connect timed out was not retried: ${post.status}`);
      assert.equal(idsAt(live, id), 1);
      const alone = await call(proxy.port, 'connect1.test', { path: '/c-alone' });
      assert.equal(alone.status, 504, `${alone.status} ${alone.body}`);
      assert.ok(alone.ms >= CONNECT_TIMEOUT - 30 && alone.ms < CONNECT_TIMEOUT + 1000, `504 after ${alone.ms.toFixed(0)} ms`);
    });

    // Three stalled responses started a third of a second apart, so a timer of coarse (1 s)
    // resolution is caught at every phase of its tick.
    const stalled = async (path: string) =>
      Promise.all(
        [0, 333, 666].map(async (offset) => {
          await sleep(offset);
          const t0 = performance.now();
          const outcome = await call(proxy.port, 'bodyidle.test', { path, timeoutMs: 5000 }).then(
            (a) => ({ status: a.status, text: `${a.status} with ${a.body.length} bytes` }),
            (e: Error) => ({ status: 0, text: e.message }),
          );
          return { ...outcome, ms: Math.round(performance.now() - t0) };
        }),
      );

    test('bodyIdleTimeoutMs: a small (collected) response body that stops gets 504 after the idle time, not before', async () => {
      const got = await stalled('/small');
      log(runtime, `body idle: small body ${JSON.stringify(got)}`);
      for (const g of got) {
        assert.equal(g.status, 504, `a small body that stalls, nothing sent yet: ${g.text}`);
        assert.ok(g.ms >= BODY_IDLE - 50 && g.ms < BODY_IDLE + 2000, `504 after ${g.ms} ms (bodyIdleTimeoutMs ${BODY_IDLE}): ${JSON.stringify(got)}`);
      }
    });

    test('bodyIdleTimeoutMs: a streamed response body that stops is cut after the idle time, not before (the client sees a broken response)', async () => {
      const got = await stalled('/chunked');
      log(runtime, `body idle: streamed body ${JSON.stringify(got)}`);
      for (const g of got) {
        assert.equal(g.status, 0, `a streamed body that stalls ended cleanly: ${g.text}`);
        assert.doesNotMatch(g.text, /no answer within/, 'not cut at all');
        assert.ok(g.ms >= BODY_IDLE - 50 && g.ms < BODY_IDLE + 2000, `cut after ${g.ms} ms (bodyIdleTimeoutMs ${BODY_IDLE}): ${JSON.stringify(got)}`);
      }
    });
  });
}
