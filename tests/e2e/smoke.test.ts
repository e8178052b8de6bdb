// Smoke: the seed routes forward to three upstreams on every runtime.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { echoOf, type ProxyHandle, RUNTIMES, send, startProxy, startUpstream, type Upstream } from './harness.ts';

for (const runtime of RUNTIMES) {
  describe(`smoke on ${runtime}`, () => {
    let a: Upstream;
    let b: Upstream;
    let c: Upstream;
    let proxy: ProxyHandle;
    before(async () => {
      [a, b, c] = await Promise.all([startUpstream(), startUpstream(), startUpstream()]);
      proxy = await startProxy(runtime, {
        routes: [
          { host: 'sub1.xyz.com', upstream: a.origin },
          { host: '*.xyz.com', upstream: b.origin },
          { host: '*', upstream: c.origin },
        ],
      });
    });
    after(async () => {
      await proxy?.stop();
      await Promise.all([a?.close(), b?.close(), c?.close()]);
    });

    test('seed hosts reach their upstreams', async () => {
      const r1 = await send(`${proxy.origin}/x`, { headers: { host: 'sub1.xyz.com' } });
      const r2 = await send(`${proxy.origin}/y`, { headers: { host: 'sub2.xyz.com' } });
      const r3 = await send(`${proxy.origin}/z`, { headers: { host: 'other.example' } });
      assert.equal(r1.status, 200);
      assert.equal(echoOf(r1).url, '/x');
      assert.equal(a.requests.length, 1);
      assert.equal(b.requests.length, 1);
      assert.equal(c.requests.length, 1);
      assert.equal(echoOf(r2).url, '/y');
      assert.equal(echoOf(r3).url, '/z');
    });

    test('first log line announces address and port', () => {
      const first = proxy.lines[0];
      assert.equal(first?.msg, 'listening');
      assert.equal(first?.address, '127.0.0.1');
      assert.equal(first?.port, proxy.port);
    });
  });
}
