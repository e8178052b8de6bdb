// WebSocket tunnels, black box on every runtime: messages of every kind both ways, the
// handshake fields each end sees (forwarding headers, subprotocol, permessage-deflate, the 101
// head byte for byte), backpressure both ways with the proxy's memory measured, refused and
// malformed upgrades, every way a tunnel closes, SIGTERM's 1001 goodbye, the idle timeout, the
// tunnel cap, the access line, and wss on both sides. Helpers in ws-harness.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { createTlsFixtures } from '../support/tls-fixtures.ts';
import { sleep, until, within } from '../support/wait.ts';
import { type LogLine, mib, type ProxyHandle, RUNTIMES, rssKiB, sampleRss, startProxy } from './harness.ts';
import {
  type Client,
  closedPort,
  closePayload,
  encodeFrame,
  expectRefused,
  type Frame,
  FrameParser,
  flood,
  Inbox,
  type OpenOptions,
  openClient,
  pattern,
  rawExchange,
  rawUpgrade,
  SAMPLE_ACCEPT,
  SAMPLE_KEY,
  startWsUpstream,
  untilStalled,
  verifyFlood,
  type WsUpstream,
  wsHead,
} from './ws-harness.ts';

const fx = createTlsFixtures();
process.on('exit', () => fx.cleanup());
const ROOT_CA = readFileSync(fx.path('root.pem'), 'utf8');

/** Allowed growth of the proxy's RSS while one side floods and the other has stopped reading. */
const STALL_HEADROOM_KIB = 96 * 1024;
const FRAME = 1 << 20;

let seq = 0;
const uid = (what: string) => `${what}-${++seq}`;

/** The access line of the tunnel (or request) the upstream saw with `requestId`. */
const accessOf = (proxy: ProxyHandle, requestId: string, ms = 5000): Promise<LogLine> =>
  proxy.waitForLine((l) => l.msg === 'access' && l.request_id === requestId, ms);

const fields = (headers: [string, string][], name: string) => headers.filter(([n]) => n === name).map(([, v]) => v);

for (const runtime of RUNTIMES) {
  describe(`websocket on ${runtime}`, () => {
    let up: WsUpstream;
    let tlsUp: WsUpstream;
    let proxy: ProxyHandle;
    let httpsPort = 0;
    const clients: Client[] = [];

    before(async () => {
      [up, tlsUp] = await Promise.all([
        startWsUpstream(),
        startWsUpstream({ tls: { cert: readFileSync(fx.path('ip.pem'), 'utf8'), key: readFileSync(fx.path('ip.key'), 'utf8') } }),
      ]);
      const dead = await closedPort();
      proxy = await startProxy(
        runtime,
        {
          listen: '127.0.0.1:0',
          timeouts: { shutdownGraceMs: 2000 },
          tls: { listen: '127.0.0.1:0', certificates: [{ cert: fx.path('a-chain.pem'), key: fx.path('a.key') }], redirectHttp: false },
          routes: [
            { host: '*', upstream: up.origin },
            { host: 'hostup.test', upstream: up.origin, hostHeader: 'upstream' },
            { host: 'nows.test', upstream: up.origin, websocket: false },
            { host: 'dead.test', upstream: `ws://127.0.0.1:${dead}` },
            { host: 'slow.test', upstream: up.origin, timeoutMs: 1000 },
            { host: 'idle.test', upstream: up.origin, websocket: { idleTimeoutMs: 1000 } },
            { host: 'cap.test', upstream: up.origin, websocket: { maxTunnels: 2 } },
            { host: 'wssup.test', upstream: tlsUp.origin, upstreamTls: { ca: fx.path('root.pem') } },
            // A group whose first choice refuses: the handshake moves on to the next upstream.
            { host: 'lb.test', upstream: { targets: [`ws://127.0.0.1:${dead}`, up.origin], policy: 'first', passive: false } },
          ],
        },
        { listeners: ['http', 'https'] },
      );
      httpsPort = (proxy.listening.https as LogLine).port as number;
    });
    after(async () => {
      for (const c of clients) c.ws.terminate();
      // Tunnels wind down before the stop: a SIGTERM meeting a half-closed tunnel is a case of its own.
      await until(() => up.openCount() + tlsUp.openCount() === 0, 3000, 'tunnels closed').catch(() => {});
      await proxy?.stop();
      await Promise.all([up?.close(), tlsUp?.close()]);
    });

    const url = (path: string) => `ws://127.0.0.1:${proxy.port}${path}`;
    /** A ws client through the proxy's plain listener with Host `host`; terminated after the suite. */
    const open = async (host: string, path: string, options: OpenOptions = {}) => {
      const c = await openClient(url(path), { ...options, headers: { Host: host, ...options.headers } });
      clients.push(c);
      return c;
    };
    /** Client and upstream ends of one fresh tunnel. */
    const pair = async (host: string, path: string, options: OpenOptions = {}) => {
      const id = uid(path.replace(/\W/g, ''));
      const c = await open(host, `${path}?id=${id}`, options);
      const s = await up.conn(id);
      return { id, c, s, requestId: String(s.handshake.headers['x-request-id']) };
    };

    // --- 1. messages ---------------------------------------------------------------------------

    test('text, binary, fragmented and 16 MiB messages arrive intact both ways', { timeout: 30_000 }, async () => {
      const { c, s } = await pair('echo.test', '/echo');
      const text = 'héllo ✓ switchyard';
      c.ws.send(text);
      let up1 = await s.messages.next(2000, 'text at the upstream');
      assert.equal(up1.binary, false);
      assert.equal(up1.data.toString('utf8'), text);
      let back = await c.messages.next(2000, 'text echo');
      assert.equal(back.binary, false);
      assert.equal(back.data.toString('utf8'), text);

      const bin = pattern(1000, 5);
      c.ws.send(bin);
      up1 = await s.messages.next(2000, 'binary at the upstream');
      assert.equal(up1.binary, true);
      assert.ok(up1.data.equals(bin));
      back = await c.messages.next(2000, 'binary echo');
      assert.equal(back.binary, true);
      assert.ok(back.data.equals(bin), 'binary echo differs');

      // One text message in three frames, one binary in two: the upstream sees each as one message.
      c.ws.send('frag-', { fin: false });
      c.ws.send('men', { fin: false });
      c.ws.send('ted ✓', { fin: true });
      c.ws.send(Buffer.from([1, 2, 3]), { binary: true, fin: false });
      c.ws.send(Buffer.from([4, 5]), { binary: true, fin: true });
      up1 = await s.messages.next(2000, 'fragmented text at the upstream');
      assert.deepEqual([up1.binary, up1.data.toString('utf8')], [false, 'frag-mented ✓']);
      up1 = await s.messages.next(2000, 'fragmented binary at the upstream');
      assert.deepEqual([up1.binary, [...up1.data]], [true, [1, 2, 3, 4, 5]]);
      back = await c.messages.next(2000, 'fragmented text echo');
      assert.deepEqual([back.binary, back.data.toString('utf8')], [false, 'frag-mented ✓']);
      back = await c.messages.next(2000, 'fragmented binary echo');
      assert.deepEqual([back.binary, [...back.data]], [true, [1, 2, 3, 4, 5]]);

      const big = pattern(16 << 20, 9);
      c.ws.send(big);
      up1 = await s.messages.next(20_000, '16 MiB at the upstream');
      assert.equal(up1.data.length, big.length);
      assert.ok(up1.data.equals(big), '16 MiB message corrupted on the way up');
      back = await c.messages.next(20_000, '16 MiB echo');
      assert.equal(back.data.length, big.length);
      assert.ok(back.data.equals(big), '16 MiB message corrupted on the way down');
      assert.equal(c.messages.pending + s.messages.pending, 0, 'extra messages');
    });

    test('ping and pong with payloads pass both ways', async () => {
      const { c, s } = await pair('echo.test', '/quiet');
      c.ws.ping('client-ping');
      assert.equal((await s.pings.next(2000, 'client ping at the upstream')).toString(), 'client-ping');
      assert.equal((await c.pongs.next(2000, "upstream's pong at the client")).toString(), 'client-ping');
      s.ws.ping(Buffer.from([0, 255, 7]));
      assert.deepEqual([...(await c.pings.next(2000, 'upstream ping at the client'))], [0, 255, 7]);
      assert.deepEqual([...(await s.pongs.next(2000, "client's pong at the upstream"))], [0, 255, 7]);
    });

    test("the client's close code and reason reach the upstream, and its answer the client", async () => {
      const { c, s } = await pair('echo.test', '/echo');
      c.ws.close(4001, 'client says bye ✓');
      const atUpstream = await within(s.closed, 2000, 'close at the upstream');
      assert.deepEqual([atUpstream.code, atUpstream.reason], [4001, 'client says bye ✓']);
      const atClient = await within(c.closed, 2000, 'close at the client');
      assert.deepEqual([atClient.code, atClient.reason], [4001, 'client says bye ✓']);
    });

    test("the upstream's close code and reason reach the client", async () => {
      const { c, s } = await pair('echo.test', '/echo');
      s.ws.close(4002, 'upstream says bye');
      const atClient = await within(c.closed, 2000, 'close at the client');
      assert.deepEqual([atClient.code, atClient.reason], [4002, 'upstream says bye']);
      const atUpstream = await within(s.closed, 2000, 'close at the upstream');
      assert.equal(atUpstream.code, 4002);
    });

    // --- 2. handshake fields -------------------------------------------------------------------

    test('the upstream sees the forwarding headers, Host, subprotocols, Cookie and Authorization; the client gets its pick', async () => {
      const { c, s, requestId } = await pair('echo.test', '/echo', {
        protocols: ['chat.v1', 'chat.v2'],
        headers: { Cookie: 'sid=abc; theme=dark', Authorization: 'Bearer t0ken' },
      });
      const h = s.handshake.headers;
      assert.equal(h['x-forwarded-for'], '127.0.0.1');
      assert.equal(h['x-forwarded-proto'], 'http');
      assert.equal(h['x-forwarded-host'], 'echo.test');
      assert.match(requestId, /\S{4,}/);
      assert.equal(h.host, 'echo.test');
      assert.deepEqual(String(h['sec-websocket-protocol']).split(/\s*,\s*/), ['chat.v1', 'chat.v2']);
      assert.equal(h.cookie, 'sid=abc; theme=dark');
      assert.equal(h.authorization, 'Bearer t0ken');
      assert.equal(h.upgrade?.toLowerCase(), 'websocket');
      assert.match(String(h.connection), /upgrade/i);
      assert.equal(h['sec-websocket-version'], '13');
      assert.equal(c.ws.protocol, 'chat.v2');
      assert.equal(c.response.headers['sec-websocket-protocol'], 'chat.v2');
      c.ws.send('after handshake');
      assert.equal((await c.messages.next(2000, 'echo')).data.toString(), 'after handshake');
    });

    test("hostHeader 'upstream': the upstream sees its own host:port, X-Forwarded-Host the client's", async () => {
      const { s } = await pair('hostup.test', '/echo');
      assert.equal(s.handshake.headers.host, `127.0.0.1:${up.port}`);
      assert.equal(s.handshake.headers['x-forwarded-host'], 'hostup.test');
    });

    test('permessage-deflate is negotiated end to end and compressed messages echo intact', async () => {
      const { c, s, requestId } = await pair('echo.test', '/deflate', { perMessageDeflate: { threshold: 0 } });
      assert.match(String(s.handshake.headers['sec-websocket-extensions']), /permessage-deflate/);
      assert.match(c.ws.extensions, /^permessage-deflate/);
      assert.match(String(c.response.headers['sec-websocket-extensions']), /permessage-deflate/);
      const text = 'compress me, switchyard ✓ '.repeat(10_000);
      const bin = Buffer.from('0123456789abcdef'.repeat(16_384));
      c.ws.send(text);
      c.ws.send(bin);
      const t = await c.messages.next(5000, 'text echo');
      assert.equal(t.binary, false);
      assert.equal(t.data.toString('utf8'), text);
      const b = await c.messages.next(5000, 'binary echo');
      assert.equal(b.binary, true);
      assert.ok(b.data.equals(bin), 'compressed binary echo differs');
      c.ws.close(1000);
      await within(c.closed, 3000, 'close');
      const line = await accessOf(proxy, requestId);
      const payload = Buffer.byteLength(text) + bin.length;
      assert.ok((line.bytes_in as number) < payload / 10, `bytes_in ${line.bytes_in} for ${payload} payload bytes: not compressed on the wire`);
      assert.ok((line.bytes as number) < payload / 10, `bytes ${line.bytes} for ${payload} payload bytes: not compressed on the wire`);
    });

    test('the 101 head (raw socket): no Keep-Alive, no field the upstream Connection named, two Set-Cookie fields', async () => {
      const id = uid('raw101');
      const t = await rawUpgrade(proxy.port, wsHead(`/echo?id=${id}`, 'echo.test'));
      try {
        assert.match(t.head, /^HTTP\/1\.1 101 [^\r\n]*\r\n/, t.head);
        assert.deepEqual(fields(t.headers, 'sec-websocket-accept'), [SAMPLE_ACCEPT], t.head);
        assert.deepEqual(
          fields(t.headers, 'upgrade').map((v) => v.toLowerCase()),
          ['websocket'],
          t.head,
        );
        assert.deepEqual(
          fields(t.headers, 'connection').map((v) => v.toLowerCase()),
          ['upgrade'],
          t.head,
        );
        for (const name of ['keep-alive', 'x-hop', 'transfer-encoding', 'content-length'])
          assert.deepEqual(fields(t.headers, name), [], `${name} in the 101:\n${t.head}`);
        assert.deepEqual(fields(t.headers, 'set-cookie'), ['a=1; Path=/', 'b=2; Path=/; HttpOnly'], t.head);
        assert.deepEqual(fields(t.headers, 'x-public'), ['yes'], t.head);
        const s = await up.conn(id);
        assert.equal(s.handshake.headers['sec-websocket-key'], 'dGhlIHNhbXBsZSBub25jZQ==');
        // And the connection is a tunnel: a masked frame goes up, the echo comes back unmasked.
        t.send(encodeFrame(0x1, 'raw hello'));
        const echo = await t.frames.next(2000, 'raw echo');
        assert.deepEqual([echo.fin, echo.opcode, echo.masked, echo.payload.toString()], [true, 0x1, false, 'raw hello']);
        t.send(encodeFrame(0x8, closePayload(1000, 'done')));
        const close = await t.frames.next(2000, 'close answer');
        assert.equal(close.opcode, 0x8);
        assert.equal(close.payload.readUInt16BE(0), 1000);
        await within(t.closed, 2000, 'raw socket closed after the close handshake');
      } finally {
        t.socket.destroy();
      }
    });

    test('a frame the upstream sends in the same segment as its 101 reaches the client', async () => {
      const c = await open('echo.test', `/greet?id=${uid('greet')}`);
      const m = await c.messages.next(2000, 'greeting');
      assert.deepEqual([m.binary, m.data.toString()], [false, 'greeting']);
    });

    test('a Firefox-style handshake (Connection: keep-alive, Upgrade; Upgrade: WebSocket) becomes a tunnel', async () => {
      const id = uid('firefox');
      const head = [
        `GET /echo?id=${id} HTTP/1.1`,
        'Host: echo.test',
        'Connection: keep-alive, Upgrade',
        'Upgrade: WebSocket',
        `Sec-WebSocket-Key: ${SAMPLE_KEY}`,
        'Sec-WebSocket-Version: 13',
        'Sec-WebSocket-Extensions: permessage-deflate',
        '',
        '',
      ].join('\r\n');
      const t = await rawUpgrade(proxy.port, head);
      try {
        assert.equal(t.status, 101, t.head);
        assert.deepEqual(fields(t.headers, 'sec-websocket-accept'), [SAMPLE_ACCEPT], t.head);
        t.send(encodeFrame(0x1, 'from firefox'));
        assert.equal((await t.frames.next(2000, 'echo')).payload.toString(), 'from firefox');
      } finally {
        t.socket.destroy();
      }
    });

    // --- 3. backpressure -----------------------------------------------------------------------

    // Each way: the sender floods, the reader has stopped (the client pauses its socket; the
    // upstream's /sink does so itself), the pile-up must stay at the sender.
    for (const stalled of ['client', 'upstream'] as const) {
      const sender = stalled === 'client' ? 'upstream' : 'client';
      test(`${sender === 'upstream' ? 'an upstream' : 'a client'} flooding ${stalled === 'client' ? 'a client' : 'an upstream'} that stopped reading: proxy memory bounded, the pile-up stays at the ${sender}, order kept`, {
        timeout: 40_000,
      }, async () => {
        const { c, s } = await pair('echo.test', stalled === 'client' ? '/flood' : '/sink');
        const [from, to] = stalled === 'client' ? [s, c] : [c, s];
        if (stalled === 'client') c.socket().pause();
        const base = rssKiB(proxy.pid);
        const rss = sampleRss(proxy.pid);
        const f = flood(from.ws, { frameBytes: FRAME, maxBytes: 1024 ** 3 });
        let peak = 0;
        let written = 0;
        try {
          written = await untilStalled(() => f.written(), 1000, 10_000, `${sender}'s flood into a stalled ${stalled}`);
        } finally {
          peak = rss.stop();
        }
        console.log(
          `[ws] ${runtime} rss stalled reader (${stalled}): +${mib(peak - base)} (baseline ${mib(base)}, peak ${mib(peak)}; ${sender} wrote ${mib(written / 1024)} before stalling, ${mib(from.ws.bufferedAmount / 1024)} queued at the ${sender})`,
        );
        assert.ok(peak - base < STALL_HEADROOM_KIB, `proxy RSS grew by ${mib(peak - base)} while the ${stalled} read nothing`);
        assert.ok(from.ws.bufferedAmount > 0, `nothing queued at the ${sender}'s side: the proxy kept reading`);
        assert.ok(f.offered < 1024 ** 3, 'the whole 1 GiB was taken');
        assert.ok(written < 256 << 20, `${mib(written / 1024)} went into the proxy while the ${stalled} read nothing`);
        f.stop();
        to.socket().resume();
        const frames = await verifyFlood(to.messages, FRAME, 30_000);
        assert.equal(frames, f.frames);
        assert.ok(frames >= 2, `only ${frames} frames were sent`);
      });
    }

    // --- 4. refused upgrades -------------------------------------------------------------------

    test("an upstream's 403 reaches the client with its body", async () => {
      const id = uid('reject');
      const r = await expectRefused(url(`/reject?id=${id}`), { headers: { Host: 'echo.test' } });
      assert.equal(r.status, 403);
      assert.equal(r.body, 'forbidden by upstream');
      assert.equal(r.headers['x-why'], 'nope');
      assert.ok(
        up.handshakes.some((h) => h.id === id),
        'the upstream never saw the upgrade',
      );
    });

    test('an upstream port that refuses connections: 502', async () => {
      const r = await expectRefused(url(`/echo?id=${uid('dead')}`), { headers: { Host: 'dead.test' } });
      assert.equal(r.status, 502, r.body);
      assert.ok(r.ms < 3000, `502 after ${r.ms.toFixed(0)} ms`);
    });

    test('a group: a handshake whose first upstream refuses goes to the next; one access line with both tries', async () => {
      const { c, s, requestId } = await pair('lb.test', '/echo');
      c.ws.send('through the second');
      assert.equal((await s.messages.next(2000, 'message at the upstream')).data.toString(), 'through the second');
      assert.equal((await c.messages.next(2000, 'echo')).data.toString(), 'through the second');
      c.ws.close(1000, 'done');
      const line = await proxy.waitForLine((l) => l.msg === 'access' && l.request_id === requestId, 5000);
      assert.equal(line.status, 101);
      assert.equal(line.upstream, `http://127.0.0.1:${up.port}`);
      assert.equal(line.tries, 2, JSON.stringify(line));
      assert.deepEqual((line.upstreams as string[]).slice(1), [`http://127.0.0.1:${up.port}`]);
    });

    test('an upstream that accepts and never answers (timeoutMs 1000): 504 in about a second, its connection closed', async () => {
      const id = uid('hang');
      const r = await expectRefused(url(`/hang?id=${id}`), { headers: { Host: 'slow.test' } });
      assert.equal(r.status, 504, r.body);
      assert.ok(r.ms >= 900 && r.ms < 2500, `504 after ${r.ms.toFixed(0)} ms`);
      assert.ok(
        up.handshakes.some((h) => h.id === id),
        'the upstream never saw the upgrade',
      );
      const socket = up.held.get(id);
      assert.ok(socket, 'no upstream connection for the upgrade');
      await until(() => socket.destroyed || socket.readableEnded, 2000, 'the proxy kept the abandoned upstream connection open');
    });

    // --- 5. malformed upgrades -----------------------------------------------------------------

    const notSeen = (id: string) => {
      assert.ok(!up.handshakes.some((h) => h.id === id), `the upstream saw an upgrade for ${id}`);
      assert.ok(!up.plain.some((p) => p.id === id), `the upstream saw a request for ${id}`);
    };
    const bad = (head: string) => rawExchange(proxy.port, head);

    test('POST with Upgrade: websocket -> 400, nothing reaches the upstream', async () => {
      const id = uid('post');
      const r = await bad(wsHead(`/echo?id=${id}`, 'echo.test').replace(/^GET/, 'POST'));
      assert.equal(r.status, 400, r.raw.toString('latin1'));
      notSeen(id);
    });

    test('no Sec-WebSocket-Key, or a malformed one -> 400; a body -> 400', async () => {
      const none = uid('nokey');
      let r = await bad(wsHead(`/echo?id=${none}`, 'echo.test').replace(/Sec-WebSocket-Key: [^\r]*\r\n/, ''));
      assert.equal(r.status, 400, r.raw.toString('latin1'));
      notSeen(none);
      const malformed = uid('badkey');
      r = await bad(wsHead(`/echo?id=${malformed}`, 'echo.test', [], { key: 'not-a-key', version: '13' }));
      assert.equal(r.status, 400, r.raw.toString('latin1'));
      notSeen(malformed);
      const body = uid('body');
      r = await bad(`${wsHead(`/echo?id=${body}`, 'echo.test', ['Content-Length: 5']).slice(0, -2)}\r\nhello`);
      assert.equal(r.status, 400, r.raw.toString('latin1'));
      notSeen(body);
    });

    test('Sec-WebSocket-Version: 8 -> 426 with Sec-WebSocket-Version: 13', async () => {
      const id = uid('v8');
      const r = await bad(wsHead(`/echo?id=${id}`, 'echo.test', [], { key: 'dGhlIHNhbXBsZSBub25jZQ==', version: '8' }));
      assert.equal(r.status, 426, r.raw.toString('latin1'));
      assert.deepEqual(fields(r.headers, 'sec-websocket-version'), ['13'], r.raw.toString('latin1'));
      notSeen(id);
    });

    for (const [name, lines] of [
      ['Upgrade: h2c', ['Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA']],
      ['Upgrade: foo', ['Connection: Upgrade', 'Upgrade: foo']],
    ] as const)
      test(`${name} is forwarded as an ordinary GET without Upgrade and answered 200`, async () => {
        const id = uid('other');
        const r = await bad([`GET /plain?id=${id} HTTP/1.1`, 'Host: echo.test', ...lines, '', ''].join('\r\n'));
        assert.equal(r.status, 200, r.raw.toString('latin1'));
        assert.ok(!up.handshakes.some((h) => h.id === id), 'the upstream got an upgrade');
        const seen = up.plain.find((p) => p.id === id);
        assert.ok(seen, 'the upstream saw no request');
        assert.equal(seen.method, 'GET');
        assert.equal(seen.headers.upgrade, undefined);
        assert.equal(seen.headers['http2-settings'], undefined);
        assert.doesNotMatch(String(seen.headers.connection ?? ''), /upgrade/i);
        assert.equal(JSON.parse(r.body.toString('utf8')).method, 'GET');
      });

    test('websocket: false on the route: a valid handshake is forwarded as an ordinary GET', async () => {
      const id = uid('nows');
      const r = await bad(wsHead(`/plain?id=${id}`, 'nows.test'));
      assert.equal(r.status, 200, r.raw.toString('latin1'));
      assert.ok(!up.handshakes.some((h) => h.id === id), 'the upstream got an upgrade');
      const seen = up.plain.find((p) => p.id === id);
      assert.ok(seen, 'the upstream saw no request');
      assert.equal(seen.method, 'GET');
      assert.equal(seen.headers.upgrade, undefined);
      assert.doesNotMatch(String(seen.headers.connection ?? ''), /upgrade/i);
    });

    // --- 6. closing ----------------------------------------------------------------------------

    test('client closes: the upstream sees the close within 1 s', async () => {
      const { c, s } = await pair('echo.test', '/echo');
      const t0 = performance.now();
      c.ws.close(1000, 'bye');
      const info = await within(s.closed, 1000, 'upstream saw the close');
      assert.equal(info.code, 1000);
      assert.ok(info.at - t0 < 1000);
      await within(c.closed, 1000, 'client closed');
    });

    test('upstream closes: the client sees it within 1 s', async () => {
      const { c, s } = await pair('echo.test', '/echo');
      s.ws.close(1000, 'bye');
      const info = await within(c.closed, 1000, 'client saw the close');
      assert.deepEqual([info.code, info.reason], [1000, 'bye']);
    });

    test("client's socket destroyed without a close frame: the upstream's connection closes within 1 s", async () => {
      const { c, s, requestId } = await pair('echo.test', '/echo');
      c.socket().destroy();
      const info = await within(s.closed, 1000, "upstream's connection closed");
      assert.equal(info.code, 1006);
      const line = await accessOf(proxy, requestId);
      assert.equal(line.first, 'client');
    });

    test("upstream's socket destroyed: the client's connection closes within 1 s", async () => {
      const { c, s, requestId } = await pair('echo.test', '/echo');
      s.socket().destroy();
      const info = await within(c.closed, 1000, "client's connection closed");
      assert.equal(info.code, 1006);
      const line = await accessOf(proxy, requestId);
      assert.equal(line.first, 'upstream');
    });

    test("client sends its close frame and FIN together (half-close): the upstream's close answer still reaches it", async () => {
      const id = uid('halfclient');
      const t = await rawUpgrade(proxy.port, wsHead(`/echo?id=${id}`, 'echo.test'));
      try {
        assert.equal(t.status, 101, t.head);
        const s = await up.conn(id);
        t.socket.end(encodeFrame(0x8, closePayload(4003, 'client done')));
        const atUpstream = await within(s.closed, 1000, 'close at the upstream');
        assert.deepEqual([atUpstream.code, atUpstream.reason], [4003, 'client done']);
        const answer = await t.frames.next(1000, "the upstream's close answer at the half-closed client");
        assert.deepEqual([answer.opcode, answer.payload.readUInt16BE(0)], [0x8, 4003]);
      } finally {
        t.socket.destroy();
      }
    });

    test("upstream sends its close frame and FIN together (half-close): the client's close answer still reaches it", async () => {
      const id = uid('halfupstream');
      const c = await open('echo.test', `/hold?id=${id}`);
      const ua = up.held.get(id) as net.Socket;
      const frames = new Inbox<Frame>();
      const parser = new FrameParser((f) => frames.push(f));
      ua.on('data', (d: Buffer) => parser.push(d));
      ua.end(encodeFrame(0x8, closePayload(4004, 'upstream done'), { mask: false }));
      const atClient = await within(c.closed, 1000, 'close at the client');
      assert.deepEqual([atClient.code, atClient.reason], [4004, 'upstream done']);
      const answer = await frames.next(1000, "the client's close answer at the half-closed upstream");
      assert.deepEqual([answer.opcode, answer.masked, answer.payload.readUInt16BE(0)], [0x8, true, 4004]);
    });

    // --- 8. idle -------------------------------------------------------------------------------

    test('idleTimeoutMs 1000: a silent tunnel closes after about 1 s (end idle); pings or one-way traffic keep one open', { timeout: 15_000 }, async () => {
      const [silent, pinging, oneway] = await Promise.all([pair('idle.test', '/quiet'), pair('idle.test', '/quiet'), pair('idle.test', '/quiet')]);
      const t0 = performance.now();
      const timers = [setInterval(() => pinging.c.ws.ping('keep'), 300), setInterval(() => oneway.s.ws.send('tick'), 300)];
      try {
        const atClient = await within(silent.c.closed, 3000, 'the silent tunnel closed at the client');
        const atUpstream = await within(silent.s.closed, 1000, 'the silent tunnel closed at the upstream');
        const ms = atClient.at - t0;
        assert.ok(ms > 800 && ms < 2500, `silent tunnel closed after ${ms.toFixed(0)} ms`);
        assert.ok(atUpstream.at - t0 > 800);
        const line = await accessOf(proxy, silent.requestId);
        assert.equal(line.end, 'idle');
        assert.equal(line.status, 101);
        await sleep(Math.max(0, 3000 - (performance.now() - t0)));
        for (const [name, p] of [
          ['pinging', pinging],
          ['one-way', oneway],
        ] as const) {
          assert.equal(p.c.ws.readyState, p.c.ws.OPEN, `${name} tunnel closed at the client`);
          assert.equal(p.s.ws.readyState, p.s.ws.OPEN, `${name} tunnel closed at the upstream`);
        }
        assert.ok(pinging.c.pongs.all.length >= 7, `${pinging.c.pongs.all.length} pongs in 3 s`);
        assert.ok(oneway.c.messages.all.length >= 7, `${oneway.c.messages.all.length} ticks in 3 s`);
      } finally {
        for (const t of timers) clearInterval(t);
      }
    });

    // --- 9. maxTunnels -------------------------------------------------------------------------

    test('maxTunnels 2: a third concurrent upgrade gets 503 (other routes unaffected); after one closes a new one opens', async () => {
      const a = await pair('cap.test', '/echo');
      const b = await pair('cap.test', '/echo');
      const id = uid('third');
      const r = await expectRefused(url(`/echo?id=${id}`), { headers: { Host: 'cap.test' } });
      assert.equal(r.status, 503, r.body);
      assert.ok(!up.handshakes.some((h) => h.id === id), 'the refused upgrade reached the upstream');
      const other = await pair('echo.test', '/echo');
      other.c.ws.close();
      a.c.ws.close(1000);
      await within(a.c.closed, 2000, 'first tunnel closed');
      await accessOf(proxy, a.requestId);
      const c = await pair('cap.test', '/echo');
      c.c.ws.send('room again');
      assert.equal((await c.c.messages.next(2000, 'echo')).data.toString(), 'room again');
      assert.equal(b.c.ws.readyState, b.c.ws.OPEN);
      b.c.ws.close();
      c.c.ws.close();
      await Promise.all([within(b.c.closed, 2000, 'b closed'), within(c.c.closed, 2000, 'c closed')]);
    });

    // --- 10. the access line -------------------------------------------------------------------

    test('one access line per tunnel: status 101, bytes each way, duration about its life', async () => {
      const id = uid('access');
      const t0 = performance.now();
      const t = await rawUpgrade(proxy.port, wsHead(`/echo?id=${id}`, 'echo.test'));
      const sent = [encodeFrame(0x1, 'hello'), encodeFrame(0x2, pattern(100_000, 3))];
      for (const f of sent) t.send(f);
      const e1 = await t.frames.next(2000, 'text echo');
      const e2 = await t.frames.next(2000, 'binary echo');
      assert.equal(e1.payload.toString(), 'hello');
      assert.ok(e2.payload.equals(pattern(100_000, 3)));
      await sleep(400);
      const close = encodeFrame(0x8, closePayload(1000, 'done'));
      t.send(close);
      await within(t.closed, 2000, 'closed after the close handshake');
      const life = performance.now() - t0;
      const s = await up.conn(id);
      const requestId = String(s.handshake.headers['x-request-id']);
      const line = await accessOf(proxy, requestId);
      await sleep(200);
      assert.equal(proxy.lines.filter((l) => l.msg === 'access' && l.request_id === requestId).length, 1, 'more than one access line');
      assert.equal(line.status, 101);
      assert.equal(line.method, 'GET');
      assert.equal(line.host, 'echo.test');
      assert.equal(line.path, `/echo?id=${id}`);
      assert.equal(line.end, 'closed');
      const bytesIn = sent.reduce((n, f) => n + f.length, 0) + close.length;
      assert.equal(line.bytes_in, bytesIn, 'bytes_in is not the bytes the client sent after the 101');
      const down = 5 + 100_000 + 6; // payloads of the two echoes and of the close answer
      assert.ok((line.bytes as number) >= down && (line.bytes as number) <= down + 40, `bytes ${line.bytes}, payloads ${down}`);
      const d = line.duration_ms as number;
      assert.ok(d >= 400 && d <= life + 100, `duration_ms ${d} for a tunnel that lived ${life.toFixed(0)} ms`);
      assert.ok(d >= life - 300, `duration_ms ${d} for a tunnel that lived ${life.toFixed(0)} ms`);
    });

    // --- 11. wss -------------------------------------------------------------------------------

    test('wss:// through the TLS listener (HTTP/1.1 by ALPN) echoes', async () => {
      const id = uid('wss');
      const c = await openClient(`wss://127.0.0.1:${httpsPort}/echo?id=${id}`, {
        headers: { Host: 'echo.test' },
        ca: ROOT_CA,
        servername: 'a.test',
        ALPNProtocols: ['http/1.1'],
      });
      clients.push(c);
      assert.equal((c.socket() as TLSSocket).alpnProtocol, 'http/1.1');
      const s = await up.conn(id);
      assert.equal(s.handshake.headers['x-forwarded-proto'], 'https');
      c.ws.send('over tls');
      assert.equal((await c.messages.next(2000, 'echo')).data.toString(), 'over tls');
      const big = pattern(1 << 20, 4);
      c.ws.send(big);
      assert.ok((await c.messages.next(5000, '1 MiB echo')).data.equals(big));
      c.ws.close(1000);
      await within(c.closed, 2000, 'closed');
    });

    test('a wss:// upstream (upstreamTls ca) echoes', async () => {
      const id = uid('wssup');
      const c = await open('wssup.test', `/echo?id=${id}`);
      const s = await tlsUp.conn(id);
      assert.equal(s.handshake.headers.host, 'wssup.test');
      c.ws.send('to a tls upstream');
      assert.equal((await c.messages.next(2000, 'echo')).data.toString(), 'to a tls upstream');
      const big = pattern(1 << 20, 6);
      c.ws.send(big);
      assert.ok((await c.messages.next(5000, '1 MiB echo')).data.equals(big));
      c.ws.close(1000);
      await within(c.closed, 2000, 'closed');
    });

    // --- 7. SIGTERM ----------------------------------------------------------------------------

    describe('SIGTERM with open tunnels (shutdownGraceMs 3000)', () => {
      const config = (shutdownGraceMs = 3000) => ({ listen: '127.0.0.1:0', timeouts: { shutdownGraceMs }, routes: [{ host: '*', upstream: up.origin }] });

      test('both peers get close 1001 and the proxy exits 0 well before the grace ends', async () => {
        const p = await startProxy(runtime, config());
        try {
          const id = uid('term');
          const c = await openClient(`ws://127.0.0.1:${p.port}/echo?id=${id}`);
          clients.push(c);
          const s = await up.conn(id);
          c.ws.send('still here');
          assert.equal((await c.messages.next(2000, 'echo')).data.toString(), 'still here');
          const t0 = performance.now();
          const exit = p.stop('SIGTERM');
          const [atClient, atUpstream] = await Promise.all([within(c.closed, 4000, 'close at the client'), within(s.closed, 4000, 'close at the upstream')]);
          assert.equal(atClient.code, 1001);
          assert.equal(atUpstream.code, 1001);
          const code = await within(exit, 5000, 'exit');
          const ms = performance.now() - t0;
          assert.equal(code, 0);
          assert.ok(ms < 2000, `exited ${ms.toFixed(0)} ms after SIGTERM though both peers answered`);
          const line = p.lines.find((l) => l.msg === 'access' && l.request_id === s.handshake.headers['x-request-id']);
          assert.equal(line?.end, 'stopped');
        } finally {
          await p.stop('SIGKILL');
        }
      });

      test('SIGTERM with a tunnel the client half-closed: its client and the next tunnel still get 1001, exit 0 with a stopped line', {
        timeout: 15_000,
      }, async () => {
        const p = await startProxy(runtime, config(1500));
        try {
          // Tunnel A: the client sends FIN (done sending, still reading); its upstream ignores the
          // FIN and never closes: A stays half-closed.
          const idA = uid('half');
          const a = await rawUpgrade(p.port, wsHead(`/hold?id=${idA}`, 'echo.test'));
          assert.equal(a.status, 101, a.head);
          const ua = up.held.get(idA) as net.Socket;
          const finSeen = new Promise<void>((r) => ua.once('end', r));
          ua.resume();
          a.socket.end();
          await within(finSeen, 2000, "the client's FIN passed on to the upstream");
          await sleep(100);
          assert.ok(!a.socket.destroyed && a.socket.readable, 'the proxy closed the connection of a client that only half-closed it');
          // Tunnel B, opened after A: an ordinary one.
          const idB = uid('after-half');
          const b = await openClient(`ws://127.0.0.1:${p.port}/echo?id=${idB}`);
          clients.push(b);
          const sb = await up.conn(idB);
          const t0 = performance.now();
          const exit = p.stop('SIGTERM');
          const outcome = await Promise.race([exit, sleep(5000).then(() => 'still running 5 s after SIGTERM')]);
          const ms = performance.now() - t0;
          assert.deepEqual(
            p.lines.filter((l) => l.level === 'error'),
            [],
            'errors logged at shutdown',
          );
          const atB = await within(b.closed, 100, 'B closed');
          assert.equal(atB.code, 1001);
          assert.ok(atB.at - t0 < 1000, `B got its goodbye ${(atB.at - t0).toFixed(0)} ms after SIGTERM`);
          assert.equal((await within(sb.closed, 100, 'B closed at the upstream')).code, 1001);
          const frame = await a.frames.next(100, 'close frame at the half-closed client');
          assert.deepEqual([frame.opcode, frame.payload.readUInt16BE(0)], [0x8, 1001]);
          assert.equal(outcome, 0);
          assert.ok(ms < 3000, `exited ${ms.toFixed(0)} ms after SIGTERM (grace 1500 ms)`);
          assert.ok(
            p.lines.some((l) => l.msg === 'stopped'),
            'no stopped line',
          );
        } finally {
          await p.stop('SIGKILL');
        }
      });

      test('SIGTERM just as a client leaves: no error, the next tunnel still gets 1001, exit 0 with a stopped line', { timeout: 15_000 }, async () => {
        const p = await startProxy(runtime, config(1500));
        try {
          const leaving = await openClient(`ws://127.0.0.1:${p.port}/echo?id=${uid('leaving')}`);
          clients.push(leaving);
          const idB = uid('staying');
          const b = await openClient(`ws://127.0.0.1:${p.port}/echo?id=${idB}`);
          clients.push(b);
          const sb = await up.conn(idB);
          // The client goes (FIN, no close frame) and SIGTERM follows at once: the proxy meets the
          // tunnel with one direction ended or ending.
          leaving.ws.terminate();
          const t0 = performance.now();
          const exit = p.stop('SIGTERM');
          const outcome = await Promise.race([exit, sleep(5000).then(() => 'still running 5 s after SIGTERM')]);
          const ms = performance.now() - t0;
          assert.deepEqual(
            p.lines.filter((l) => l.level === 'error'),
            [],
            'errors logged at shutdown',
          );
          const atB = await within(b.closed, 100, 'B closed');
          assert.equal(atB.code, 1001, 'the staying tunnel got no goodbye');
          assert.equal((await within(sb.closed, 100, 'B closed at the upstream')).code, 1001);
          assert.equal(outcome, 0);
          assert.ok(ms < 3000, `exited ${ms.toFixed(0)} ms after SIGTERM (grace 1500 ms)`);
          assert.ok(
            p.lines.some((l) => l.msg === 'stopped'),
            'no stopped line',
          );
        } finally {
          await p.stop('SIGKILL');
        }
      });

      test('a client that ignores the close frame: 1001 to both, the proxy exits after about the grace', { timeout: 15_000 }, async () => {
        const p = await startProxy(runtime, config());
        try {
          const id = uid('term-deaf');
          const t = await rawUpgrade(p.port, wsHead(`/echo?id=${id}`, 'echo.test'));
          assert.equal(t.status, 101, t.head);
          const s = await up.conn(id);
          const t0 = performance.now();
          const exit = p.stop('SIGTERM');
          const frame = await t.frames.next(3000, 'close frame at the raw client');
          assert.equal(frame.opcode, 0x8);
          assert.equal(frame.payload.readUInt16BE(0), 1001);
          const code = await within(exit, 8000, 'exit');
          const ms = performance.now() - t0;
          // The upstream answered at once, but its connection ends with the tunnel, at the grace.
          assert.equal((await within(s.closed, 1000, 'close at the upstream')).code, 1001);
          assert.equal(code, 0);
          assert.ok(ms > 2700 && ms < 5000, `exited ${ms.toFixed(0)} ms after SIGTERM with a grace of 3000 ms`);
          await within(t.closed, 1000, 'raw client disconnected at exit');
        } finally {
          await p.stop('SIGKILL');
        }
      });
    });
  });
}
