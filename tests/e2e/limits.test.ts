// Client limits, black box on every runtime: slowloris heads (1,000 of them, and the head
// timeout), slow and stalled request bodies, idle keep-alive connections, the connection caps
// (whole process and per address, with the rate-limited `connections refused` log line), slow
// and stopped readers (memory, upstream backpressure, the send timeout), a burst of 10,000
// pipelined requests, and the head timeout and cap on the TLS listener. Loopback only: clients
// bind 127.0.0.2-127.0.0.9 to act as other addresses. Every wait has a deadline; numbers are
// printed as `[limits] <runtime> ...`.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { sleep, until } from '../support/wait.ts';
import { generator, type LogLine, mib, type ProxyHandle, RUNTIMES, rssKiB, sampleRss, send, startProxy, startUpstream, type Upstream } from './harness.ts';
import { fixtures, pem, startTlsProxy, type TlsProxy } from './tls-harness.ts';

fixtures();
const PAIRS = [{ cert: 'certs/a-chain.pem', key: 'certs/a.key' }];
const tlsBlock = { listen: '127.0.0.1:0', certificates: PAIRS, redirectHttp: false };

/** Small client timeouts (the timeout cases) on `quick`; defaults on `roomy`; caps on `capped`. */
const QUICK = { headerTimeoutMs: 2000, bodyTimeoutMs: 2000, idleTimeoutMs: 1000, sendTimeoutMs: 2000 };
const CAPS = { maxConnections: 50, maxConnectionsPerIp: 10, idleTimeoutMs: 60_000, headerTimeoutMs: 60_000 };

const BIG = 256 * 1024 * 1024;
const SMALL_BODY = 1000;
const log = (runtime: string, text: string) => console.log(`[limits] ${runtime} ${text}`);

// --- clients -----------------------------------------------------------------------------------

/** A raw client socket (plain or TLS) and what it has seen. */
interface Peer {
  readonly socket: net.Socket;
  /** When the connection (or handshake) completed. */
  readonly t0: number;
  /** Bytes received so far (only while `collect`). */
  bytes(): Buffer;
  text(): string;
  /** Time the server ended or reset the connection (0: still open). */
  endedAt: number;
  /** Resolves with the end time once the server ended/reset the connection, or rejects after `ms`. */
  ended(ms: number, what?: string): Promise<number>;
  /** Status of the first response (0: none yet). */
  status(): number;
}

function track(socket: net.Socket, t0: number, collect: boolean): Peer {
  const chunks: Buffer[] = [];
  const peer: Peer = {
    socket,
    t0,
    endedAt: 0,
    bytes: () => Buffer.concat(chunks),
    text: () => Buffer.concat(chunks).toString('latin1'),
    ended: async (ms, what = 'the server closes the connection') => {
      await until(
        () => peer.endedAt !== 0,
        ms,
        () => `${what}; got ${JSON.stringify(peer.text().slice(0, 300))}`,
      );
      return peer.endedAt;
    },
    status: () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(peer.text());
      return m ? Number(m[1]) : 0;
    },
  };
  if (collect) socket.on('data', (c: Buffer) => chunks.push(c));
  const mark = () => {
    if (peer.endedAt === 0) peer.endedAt = performance.now();
  };
  socket.on('end', mark);
  socket.on('close', mark);
  socket.on('error', mark);
  return peer;
}

/** Opens a plain TCP connection from `localAddress` (default 127.0.0.1). */
function open(port: number, localAddress = '127.0.0.1', collect = true): Promise<Peer> {
  return new Promise((resolve, reject) => {
    // Timed from before connect(): the proxy's clock starts at its accept, which a loaded
    // client's 'connect' event can trail by over 100 ms (one silent connection read 1887 ms for
    // the 2000 ms head timeout in CI that way).
    const t0 = performance.now();
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no connection to ${port} from ${localAddress} within 3000 ms`));
    }, 3000);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(track(socket, t0, collect));
    });
    socket.once('error', (e: Error) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** A TLS connection (HTTP/1.1 by ALPN, SNI a.test, verified) from `localAddress`; rejects when the handshake fails. */
function openTls(port: number, localAddress = '127.0.0.1'): Promise<Peer> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      port,
      host: '127.0.0.1',
      localAddress,
      servername: 'a.test',
      ca: pem('root.pem'),
      ALPNProtocols: ['http/1.1'],
    } as tls.ConnectionOptions);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no TLS handshake with ${port} within 3000 ms`));
    }, 3000);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      resolve(track(socket, performance.now(), true));
    });
    socket.once('error', (e: Error) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      reject(new Error('closed before the handshake'));
    });
  });
}

const GET = (path: string, host = 'limits.test', extra = '') => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`;

/** Sends a GET on `peer` and waits for a whole response (Content-Length framed); 0 when the connection ends first. */
async function getOn(peer: Peer, path: string, ms = 3000): Promise<number> {
  const from = peer.bytes().length;
  const complete = () => {
    const text = peer.bytes().subarray(from).toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    if (end < 0) return false;
    const cl = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end));
    return cl !== null && text.length >= end + 4 + Number(cl[1]);
  };
  if (peer.endedAt !== 0) return 0;
  peer.socket.write(GET(path));
  await until(
    () => complete() || peer.endedAt !== 0,
    ms,
    () => `a response to ${path}; got ${JSON.stringify(peer.text().slice(from, from + 300))}`,
  );
  if (!complete()) return 0;
  const m = /^HTTP\/1\.1 (\d{3})/.exec(peer.bytes().subarray(from).toString('latin1'));
  return m ? Number(m[1]) : 0;
}

/** What became of one connection attempt against a cap. */
type Outcome = 'served' | 'refused-503' | 'refused-closed';

/** Connects (plain) from `localAddress`, sends a GET and says whether it was served or refused. */
async function attempt(port: number, localAddress: string, keep?: Peer[]): Promise<Outcome> {
  let peer: Peer;
  try {
    peer = await open(port, localAddress);
  } catch {
    return 'refused-closed';
  }
  peer.socket.write(GET('/hold'));
  await until(() => peer.endedAt !== 0 || /\r\n\r\n/.test(peer.text()), 3000, `an answer or a close for a connection from ${localAddress}`);
  const status = peer.status();
  if (status === 200) {
    if (keep) keep.push(peer);
    else peer.socket.destroy();
    return 'served';
  }
  if (status === 503) await peer.ended(2000, 'a refused connection is closed after its 503');
  peer.socket.destroy();
  if (status === 503) {
    assert.match(peer.text(), /\r\n\r\ntoo many connections\n?$/, 'the 503 says why');
    return 'refused-503';
  }
  assert.equal(status, 0, `unexpected answer: ${peer.text().slice(0, 200)}`);
  return 'refused-closed';
}

/** Connects with TLS from `localAddress`: 'served' (handshake done, GET answered 200) or 'refused-closed'. */
async function attemptTls(port: number, localAddress: string): Promise<Outcome> {
  let peer: Peer;
  try {
    peer = await openTls(port, localAddress);
  } catch {
    return 'refused-closed';
  }
  try {
    const status = await getOn(peer, '/hold');
    assert.equal(status, 200);
    return 'served';
  } finally {
    peer.socket.destroy();
  }
}

/** Trickles a request head one byte every `everyMs` (never finishing it). */
function trickle(peer: Peer, everyMs: number): () => void {
  peer.socket.write('GET /trickle HTTP/1.1\r\nHost: limits.test\r\nX-Trickle: ');
  const timer = setInterval(() => {
    if (peer.endedAt === 0) peer.socket.write('a');
  }, everyMs);
  return () => clearInterval(timer);
}

// --- the upstream ------------------------------------------------------------------------------

interface BigDownload {
  /** The `id` query parameter of the request. */
  id: string;
  /** Upstream bytes written to the proxy for this response. */
  written(): number;
  /** When the response's connection closed or the response was torn down (0: open). */
  closedAt: number;
  finished: boolean;
}

interface UploadSeen {
  id: string;
  bytes: number;
  complete: boolean;
  closedAt: number;
}

function limitsUpstream(): {
  start(): Promise<Upstream>;
  bigs: BigDownload[];
  uploads: UploadSeen[];
  small: { count: number; inFlight: number; maxInFlight: number };
} {
  const bigs: BigDownload[] = [];
  const uploads: UploadSeen[] = [];
  const small = { count: 0, inFlight: 0, maxInFlight: 0 };
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    switch (url.pathname) {
      case '/small': {
        small.count++;
        small.inFlight++;
        small.maxInFlight = Math.max(small.maxInFlight, small.inFlight);
        res.once('close', () => small.inFlight--);
        req.resume();
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(SMALL_BODY) });
        res.end(`${url.searchParams.get('i')}\n`.padEnd(SMALL_BODY, '.'));
        return;
      }
      case '/slow':
        req.resume();
        setTimeout(() => res.end('slow answer'), Number(url.searchParams.get('ms') ?? 1000));
        return;
      case '/big': {
        req.resume();
        const socket = req.socket;
        const base = socket.bytesWritten;
        const record: BigDownload = { id: url.searchParams.get('id') ?? '', written: () => socket.bytesWritten - base, closedAt: 0, finished: false };
        bigs.push(record);
        res.once('finish', () => (record.finished = true));
        res.once('close', () => (record.closedAt = performance.now()));
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG) });
        const source = generator(BIG);
        source.pipe(res);
        res.once('close', () => source.destroy());
        return;
      }
      case '/upload': {
        const seen: UploadSeen = { id: String(req.headers['x-id'] ?? ''), bytes: 0, complete: false, closedAt: 0 };
        uploads.push(seen);
        req.on('data', (c: Buffer) => (seen.bytes += c.length));
        req.on('end', () => {
          seen.complete = true;
          res.end(JSON.stringify({ bytes: seen.bytes }));
        });
        req.on('error', () => {});
        res.once('close', () => (seen.closedAt = performance.now()));
        return;
      }
      default:
        req.resume();
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
        res.end('ok');
    }
  };
  return { start: () => startUpstream(handler, { raw: true }), bigs, uploads, small };
}

/** An upload of `declared` bytes (Content-Length) on a fresh connection, written by `feed`. */
async function upload(port: number, id: string, declared: number, feed: (peer: Peer) => void | Promise<void>): Promise<Peer> {
  const peer = await open(port);
  peer.socket.write(
    `POST /upload HTTP/1.1\r\nHost: limits.test\r\nX-Id: ${id}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${declared}\r\n\r\n`,
  );
  await feed(peer);
  return peer;
}

/**
 * Allowed RSS growth while 10,000 pipelined requests are served. Node's grows by about 100 MiB
 * whatever the burst's size (3,000 or 30,000 requests: the heap of serving a few thousand
 * requests, not read-ahead); what shows read-ahead is the queues below.
 */
const PIPELINE_HEADROOM_KIB = 192 * 1024;

/** Send and receive queue of the loopback TCP socket `localPort` -> `remotePort` (/proc/net/tcp). */
function tcpQueues(localPort: number, remotePort: number): { tx: number; rx: number } | undefined {
  const hex = (port: number) => `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === hex(localPort) && f[2] === hex(remotePort)) {
      const [tx, rx] = (f[4] as string).split(':');
      return { tx: Number.parseInt(tx as string, 16), rx: Number.parseInt(rx as string, 16) };
    }
  }
  return undefined;
}

const refusedLines = (proxy: ProxyHandle): LogLine[] => proxy.lines.filter((l) => l.msg === 'connections refused');
const ms = (n: number) => `${n.toFixed(0)} ms`;

for (const runtime of RUNTIMES) {
  describe(`limits on ${runtime}`, () => {
    const up = limitsUpstream();
    let upstream: Upstream;
    /** QUICK limits, plain and TLS. */
    let quick: TlsProxy;
    /** Default limits. */
    let roomy: ProxyHandle;
    /** CAPS, plain and TLS. */
    let capped: TlsProxy;
    let cappedStopped = false;

    before(async () => {
      upstream = await up.start();
      const routes = [{ host: '*', upstream: upstream.origin }];
      [quick, roomy, capped] = await Promise.all([
        startTlsProxy(runtime, { listen: '127.0.0.1:0', tls: tlsBlock, routes, limits: QUICK }),
        startProxy(runtime, { listen: '127.0.0.1:0', routes }),
        startTlsProxy(runtime, { listen: '127.0.0.1:0', tls: tlsBlock, routes, limits: CAPS, timeouts: { shutdownGraceMs: 500 } }),
      ]);
    });
    after(async () => {
      await Promise.all([quick?.stop(), roomy?.stop(), cappedStopped ? undefined : capped?.stop()]);
      await upstream?.close();
    });

    test('1,000 slowloris heads do not slow down a new client', { timeout: 30_000 }, async () => {
      const loris: Peer[] = [];
      let tick: NodeJS.Timeout | undefined;
      try {
        const froms = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6'];
        for (let batch = 0; batch < 10; batch++) {
          const opened = await Promise.all(Array.from({ length: 100 }, (_, i) => open(roomy.port, froms[i % froms.length])));
          for (const peer of opened) {
            peer.socket.write(`GET /loris HTTP/1.1\r\nHost: loris.test\r\nUser-Agent: slowloris\r\nX-Slow-${loris.length}: `);
            loris.push(peer);
          }
        }
        // One more header byte per socket every 2.5 s: a tenth of them every 250 ms.
        let next = 0;
        tick = setInterval(() => {
          for (let i = 0; i < loris.length / 10; i++) {
            const peer = loris[next++ % loris.length] as Peer;
            if (peer.endedAt === 0) peer.socket.write('z');
          }
        }, 250);
        await sleep(500);
        const samples: number[] = [];
        for (let i = 0; i < 5; i++) {
          const t0 = performance.now();
          const r = await send(`${roomy.origin}/during-loris`, { headers: { host: 'fresh.test' }, timeoutMs: 5000 });
          samples.push(performance.now() - t0);
          assert.equal(r.status, 200);
          await sleep(600);
        }
        const stillOpen = loris.filter((p) => p.endedAt === 0).length;
        log(runtime, `new client during 1000 slowloris: ${samples.map(ms).join(', ')} (slowloris still open: ${stillOpen})`);
        assert.equal(stillOpen, 1000, 'the proxy holds every slowloris connection (head timeout 30 s): the new client was measured under that load');
        assert.ok(
          loris.every((p) => p.bytes().length === 0),
          'no slowloris connection got an answer',
        );
        for (const s of samples) assert.ok(s < 500, `a request took ${ms(s)} with 1000 slowloris connections open`);
      } finally {
        clearInterval(tick);
        for (const peer of loris) peer.socket.destroy();
      }
    });

    // The timeout cases wait most of the time: they run side by side. Where a cut must not come
    // early, ten connections start a fifth of a second apart (over two ticks of a once-a-second
    // sweep), so that a deadline counted from a stale clock reading shows on some of them.
    describe('timeouts', { concurrency: true }, () => {
      const STAGGER = [0, 200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800];

      test('head timeout (2 s): a trickled head and a silent connection get 408 and are closed, plain and TLS', { timeout: 15_000 }, async () => {
        const cases = ['trickle', 'silent', 'tls-trickle', 'tls-silent'] as const;
        const results = await Promise.all(
          cases.flatMap((kind) =>
            STAGGER.map(async (offset) => {
              await sleep(offset);
              const peer = kind.startsWith('tls') ? await openTls(quick.httpsPort) : await open(quick.port);
              const stop = kind.endsWith('trickle') ? trickle(peer, 500) : () => {};
              try {
                const endedAt = await peer.ended(6000, `${kind}: the proxy closes a slow head`);
                return { kind, took: endedAt - peer.t0, status: peer.status(), text: peer.text() };
              } finally {
                stop();
                peer.socket.destroy();
              }
            }),
          ),
        );
        for (const kind of cases)
          log(
            runtime,
            `head timeout 2000 ms, ${kind} (a byte every 500 ms or nothing): 408 and close after ${results
              .filter((r) => r.kind === kind)
              .map((r) => ms(r.took))
              .join(', ')}`,
          );
        for (const r of results) {
          assert.equal(r.status, 408, `${r.kind}: ${JSON.stringify(r.text.slice(0, 200))}`);
          assert.match(r.text, /\r\nconnection: close\r\n/i, `${r.kind}: the 408 says the connection closes`);
        }
        for (const r of results) assert.ok(r.took <= 4000, `${r.kind}: cut only after ${ms(r.took)}`);
        for (const r of results) assert.ok(r.took >= 1900, `${r.kind}: cut after ${ms(r.took)}, before the 2000 ms head timeout`);
        assert.ok(quick.alive());
      });

      test('slow bodies (body timeout 2 s): a trickle and a stall get 408, a quick 10 MiB upload passes', { timeout: 20_000 }, async () => {
        const tag = `${runtime}-${Date.now()}`;
        // One byte every 500 ms: resets any plain idle timer, but averages 2 bytes/s.
        const trickled = upload(quick.port, `trickle-${tag}`, 100_000, (peer) => {
          const timer = setInterval(() => (peer.endedAt === 0 ? peer.socket.write('b') : clearInterval(timer)), 500);
          peer.socket.once('close', () => clearInterval(timer));
        });
        // Half the body, then nothing.
        const stalled = STAGGER.map(async (offset, i) => {
          await sleep(offset);
          return upload(quick.port, `stall-${i}-${tag}`, 100_000, (peer) => void peer.socket.write(Buffer.alloc(50_000, 0x62)));
        });
        const big = 10 * 1024 * 1024;
        const t0 = performance.now();
        const quickUpload = await upload(quick.port, `quick-${tag}`, big, async (peer) => {
          await new Promise<void>((r) => peer.socket.write(Buffer.alloc(big, 0x63), () => r()));
        });
        await until(
          () => quickUpload.endedAt !== 0 || /\}$/.test(quickUpload.text()),
          10_000,
          () => `the 10 MiB upload's answer: ${quickUpload.text().slice(0, 200)}`,
        );
        const quickMs = performance.now() - t0;
        quickUpload.socket.destroy();

        const trickler = await trickled;
        const trickleMs = (await trickler.ended(8000, 'the trickled body is cut')) - trickler.t0;
        const stalls = await Promise.all(stalled);
        const stallTimes = await Promise.all(stalls.map(async (p) => (await p.ended(8000, 'the stalled body is cut')) - p.t0));
        log(
          runtime,
          `slow bodies: 1 byte/500 ms cut after ${ms(trickleMs)} (${trickler.status()}); half a body then silence cut after ${stallTimes.map(ms).join(', ')} (${stalls.map((p) => p.status()).join(' ')}); 10 MiB upload ${ms(quickMs)} (${quickUpload.status()})`,
        );
        for (const p of [trickler, ...stalls]) p.socket.destroy();

        assert.equal(quickUpload.status(), 200, quickUpload.text().slice(0, 300));
        assert.match(quickUpload.text(), new RegExp(`\\{"bytes":${big}\\}$`));
        const quickSeen = up.uploads.find((u) => u.id === `quick-${tag}`);
        assert.ok(quickSeen?.complete && quickSeen.bytes === big, `the upstream got ${quickSeen?.bytes} of ${big}`);

        assert.equal(trickler.status(), 408, trickler.text().slice(0, 300));
        assert.ok(trickleMs <= 5000, `the trickle was cut only after ${ms(trickleMs)}`);
        assert.ok(trickleMs >= 1900, `the trickle was cut after ${ms(trickleMs)}: before 2000 ms of waiting`);
        const trickleSeen = up.uploads.find((u) => u.id === `trickle-${tag}`);
        assert.ok(
          trickleSeen === undefined || (!trickleSeen.complete && trickleSeen.bytes < 100_000),
          `the upstream got the trickled body: ${JSON.stringify(trickleSeen)}`,
        );

        stalls.forEach((p, i) => {
          assert.equal(p.status(), 408, `stall ${i}: ${p.text().slice(0, 300)}`);
          const seen = up.uploads.find((u) => u.id === `stall-${i}-${tag}`);
          assert.ok(seen === undefined || !seen.complete, `the upstream saw a complete body for stall ${i}`);
        });
        for (const took of stallTimes) assert.ok(took <= 4000, `a stalled body was cut only after ${ms(took)}`);
        for (const took of stallTimes) assert.ok(took >= 1900, `a stalled body was cut after ${ms(took)}, before the 2000 ms body timeout`);
      });

      test('idle keep-alive (1 s): closed after about 1 s; a connection in use is not cut', { timeout: 15_000 }, async () => {
        const idle = Promise.all(
          STAGGER.map(async (offset) => {
            await sleep(offset);
            const peer = await open(quick.port);
            assert.equal(await getOn(peer, '/idle'), 200);
            const answered = performance.now();
            const endedAt = await peer.ended(5000, 'the proxy closes an idle keep-alive connection');
            peer.socket.destroy();
            return endedAt - answered;
          }),
        );
        // A response that takes 2.5 s (longer than the idle timeout) on a keep-alive connection.
        const slow = (async () => {
          const peer = await open(quick.port);
          try {
            return { status: await getOn(peer, '/slow?ms=2500', 5000), open: peer.endedAt === 0 };
          } finally {
            peer.socket.destroy();
          }
        })();
        // Requests 400 ms apart on one connection for 3.2 s: never idle for 1 s.
        const chatty = (async () => {
          const peer = await open(quick.port);
          const statuses: number[] = [];
          try {
            for (let i = 0; i < 8 && peer.endedAt === 0; i++) {
              statuses.push(await getOn(peer, `/chatty?i=${i}`));
              await sleep(400);
            }
            return { statuses, open: peer.endedAt === 0 };
          } finally {
            peer.socket.destroy();
          }
        })();
        const [idleTimes, slowResult, chattyResult] = await Promise.all([idle, slow, chatty]);
        log(
          runtime,
          `idle keep-alive 1000 ms: closed after ${idleTimes.map(ms).join(', ')}; a 2.5 s response: ${slowResult.status}; requests 400 ms apart: ${chattyResult.statuses.join(' ')} (still open: ${chattyResult.open})`,
        );
        for (const t of idleTimes) assert.ok(t <= 3000, `an idle connection was closed only after ${ms(t)}`);
        assert.equal(slowResult.status, 200, 'a request in flight longer than the idle timeout is answered');
        assert.ok(slowResult.open, 'and its connection stays open');
        assert.deepEqual(chattyResult.statuses, Array(8).fill(200), 'requests 400 ms apart on one keep-alive connection are all answered on it');
        assert.ok(chattyResult.open, 'the busy connection is still open');
        // Measured from when this client read the answer, which on a loaded machine lags the
        // proxy's write (the idle clock's start) by tens of ms: 942 ms was seen once with a
        // benchmark running beside the suite.
        for (const t of idleTimes) assert.ok(t >= 900, `an idle connection was closed after ${ms(t)}, before the 1000 ms idle timeout`);
      });

      test('slow readers: a 1 KB/s reader holds the upstream back with flat memory; stopped ones are cut after the send timeout', {
        timeout: 30_000,
      }, async () => {
        const tag = `${runtime}-${Date.now()}`;
        // Slow reader, default limits (send timeout 60 s): 100 bytes every 100 ms for 5 s.
        const baseline = rssKiB(roomy.pid);
        const rss = sampleRss(roomy.pid);
        const reader = await open(roomy.port, '127.0.0.1', false);
        reader.socket.write(GET(`/big?id=slow-${tag}`, 'big.test'));
        let read = 0;
        const head: Buffer[] = [];
        const pace = setInterval(() => {
          const chunk = reader.socket.read(100) as Buffer | null;
          if (chunk) {
            read += chunk.length;
            if (head.length < 10) head.push(chunk);
          }
        }, 100);
        // Stopped readers, send timeout 2 s: they never read past what node buffers for them.
        const stopped = await Promise.all(
          STAGGER.slice(0, 5).map(async (offset, i) => {
            await sleep(offset);
            const peer = await open(quick.port, '127.0.0.1', false);
            peer.socket.write(GET(`/big?id=stopped-${i}-${tag}`, 'big.test'));
            return { peer, sentAt: performance.now(), id: `stopped-${i}-${tag}` };
          }),
        );
        await sleep(5000 - 800);
        clearInterval(pace);
        const peak = rss.stop();
        const slowRec = up.bigs.find((b) => b.id === `slow-${tag}`);
        assert.ok(slowRec, 'the slow download reached the upstream');
        const slowWritten = slowRec.written();
        log(
          runtime,
          `slow reader 1 KB/s for 5 s: read ${read} bytes; proxy RSS ${mib(baseline)} -> peak ${mib(peak)} (+${mib(peak - baseline)}); upstream wrote ${mib(slowWritten / 1024)} of ${mib(BIG / 1024)}`,
        );
        reader.socket.destroy();
        assert.match(Buffer.concat(head).toString('latin1'), /^HTTP\/1\.1 200 /);
        assert.ok(read >= 3000, `the slow reader got ${read} bytes in 5 s`);
        assert.equal(slowRec.closedAt, 0, 'the slow reader is still being served');
        assert.ok(peak - baseline < 64 * 1024, `proxy RSS grew by ${mib(peak - baseline)} for one slow reader`);
        assert.ok(slowWritten < 64 * 1024 * 1024, `the upstream wrote ${mib(slowWritten / 1024)}: not held back`);

        // The stopped readers: once each has been stopped 5 s (or its upstream response is gone),
        // reading again drains what the kernel holds, then the end the proxy sent (or a reset).
        const closed = (id: string) => (up.bigs.find((b) => b.id === id)?.closedAt ?? 0) !== 0;
        const lastSent = Math.max(...stopped.map((s) => s.sentAt));
        await until(() => stopped.every((s) => closed(s.id)), Math.max(0, lastSent + 5000 - performance.now()), '').catch(() => {});
        const outcomes = await Promise.all(
          stopped.map(async ({ peer, sentAt, id }) => {
            const rec = up.bigs.find((b) => b.id === id);
            const drainFrom = performance.now();
            let drained = 0;
            peer.socket.on('data', (c: Buffer) => (drained += c.length));
            const endedAt = await peer.ended(3000).catch(() => 0);
            peer.socket.destroy();
            return {
              upstreamClosed: rec?.closedAt ? rec.closedAt - sentAt : -1,
              finished: rec?.finished ?? false,
              written: rec?.written() ?? 0,
              drained,
              endAfterDrain: endedAt ? endedAt - drainFrom : -1,
            };
          }),
        );
        log(
          runtime,
          `stopped readers (send timeout 2000 ms): upstream response closed after ${outcomes.map((o) => (o.upstreamClosed >= 0 ? ms(o.upstreamClosed) : 'never')).join(', ')}; upstream wrote ${outcomes.map((o) => mib(o.written / 1024)).join(', ')}; the clients, reading again 4-5 s after their request, drained ${outcomes.map((o) => mib(o.drained / 1024)).join(', ')} and saw the end ${outcomes.map((o) => (o.endAfterDrain >= 0 ? ms(o.endAfterDrain) : 'never')).join(', ')} later`,
        );
        for (const o of outcomes) {
          assert.ok(o.upstreamClosed >= 0, 'the upstream connection of a client that stopped reading is closed');
          assert.ok(!o.finished, 'the upstream never finished its response');
          assert.ok(o.endAfterDrain >= 0, 'the client connection was ended by the proxy');
          assert.ok(o.drained < BIG, 'the client got a truncated body');
          assert.ok(o.upstreamClosed <= 5000, `the upstream was closed only ${ms(o.upstreamClosed)} after the request`);
        }
        for (const o of outcomes) assert.ok(o.upstreamClosed >= 1900, `cut ${ms(o.upstreamClosed)} after the request: before the 2000 ms send timeout`);
      });
    });

    test('connection caps: 50 whole-process, 10 per address, refusals logged at most once per 10 s', { timeout: 30_000 }, async () => {
      const holders: Peer[] = [];
      let refused = 0;
      const count = (o: Outcome) => {
        if (o !== 'served') refused++;
        return o;
      };
      const froms = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6'];
      try {
        // 50 connections, 10 from each of five addresses: all served, all kept open.
        const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) => attempt(capped.port, froms[i % 5] as string, holders)));
        assert.deepEqual(outcomes, Array(50).fill('served'), 'the first 50 connections are served');
        // The 51st (another address) is refused.
        const fiftyFirst = count(await attempt(capped.port, '127.0.0.7'));
        assert.notEqual(fiftyFirst, 'served', 'the 51st connection is refused');
        await capped.waitForLine((l) => l.msg === 'connections refused', 3000);
        // 200 more over two seconds, from three addresses.
        const t0 = performance.now();
        const flood: Outcome[] = [];
        for (let batch = 0; batch < 20; batch++) {
          const outs = await Promise.all(Array.from({ length: 10 }, (_, i) => attempt(capped.port, `127.0.0.${7 + (i % 3)}`)));
          flood.push(...outs.map(count));
          await sleep(Math.max(0, t0 + (batch + 1) * 100 - performance.now()));
        }
        const floodMs = performance.now() - t0;
        const by = (o: Outcome) => flood.filter((f) => f === o).length;
        // TLS is refused too (the cap is the process's): closed before its handshake.
        const tlsRefused = count(await attemptTls(capped.httpsPort, '127.0.0.7'));
        const linesNow = refusedLines(capped);
        log(
          runtime,
          `caps: 51st ${fiftyFirst}; 200 more over ${ms(floodMs)}: ${by('refused-503')} got 503, ${by('refused-closed')} closed, ${by('served')} served; TLS ${tlsRefused}; 'connections refused' lines so far: ${linesNow.length} (refused ${linesNow.map((l) => l.refused).join(', ')})`,
        );
        assert.equal(by('served'), 0, 'no connection past the cap is served');
        assert.equal(tlsRefused, 'refused-closed', 'a TLS connection past the cap is closed before its handshake');
        assert.equal(linesNow.length, 1, `one 'connections refused' line in the first interval, not one per connection: ${JSON.stringify(linesNow)}`);
        assert.equal(linesNow[0]?.refused, 1, 'the first refusal is reported at once, alone');
        assert.equal(linesNow[0]?.reason, 'max-connections');

        // Five holders leave: new connections are served again (a refusal while the proxy catches up is counted).
        for (const peer of holders.splice(0, 5)) peer.socket.destroy();
        let again: Outcome = 'refused-closed';
        const deadline = performance.now() + 3000;
        while (performance.now() < deadline) {
          again = count(await attempt(capped.port, '127.0.0.7', holders));
          if (again === 'served') break;
          await sleep(100);
        }
        assert.equal(again, 'served', 'once connections close, new ones are served again');

        // Per address: all closed, then 10 from 127.0.0.1 are served, the 11th is refused, 127.0.0.2 is served.
        for (const peer of holders.splice(0)) peer.socket.destroy();
        await sleep(300);
        const ten = await Promise.all(Array.from({ length: 10 }, () => attempt(capped.port, '127.0.0.1', holders)));
        assert.deepEqual(ten, Array(10).fill('served'), 'ten connections from 127.0.0.1 are served');
        const eleventh = count(await attempt(capped.port, '127.0.0.1'));
        const eleventhTls = count(await attemptTls(capped.httpsPort, '127.0.0.1'));
        const other = count(await attempt(capped.port, '127.0.0.2'));
        const otherTls = count(await attemptTls(capped.httpsPort, '127.0.0.3'));
        log(runtime, `per address: 11th from 127.0.0.1 ${eleventh} (TLS ${eleventhTls}); from 127.0.0.2 ${other}, TLS from 127.0.0.3 ${otherTls}`);
        assert.notEqual(eleventh, 'served', 'the 11th connection from 127.0.0.1 is refused');
        assert.equal(eleventhTls, 'refused-closed', 'and so is a TLS one from it');
        assert.equal(other, 'served', 'a connection from 127.0.0.2 is served meanwhile');
        assert.equal(otherTls, 'served', 'a TLS one from 127.0.0.3 too');
        const perIp = refusedLines(capped).length;
        assert.ok(perIp <= 2, `still at most two lines: ${JSON.stringify(refusedLines(capped))}`);
      } finally {
        for (const peer of holders) peer.socket.destroy();
      }

      // Stopping reports what the interval held: the lines add up to every refusal.
      cappedStopped = true;
      assert.equal(await capped.stop(), 0);
      const lines = refusedLines(capped);
      const sum = lines.reduce((n, l) => n + Number(l.refused), 0);
      log(
        runtime,
        `caps: ${refused} refusals seen by clients; ${lines.length} 'connections refused' lines, refused ${lines.map((l) => l.refused).join(' + ')} = ${sum}`,
      );
      assert.ok(lines.length <= 2, `at most two lines for one interval: ${JSON.stringify(lines)}`);
      assert.equal(sum, refused, `the refused counts add up to the ${refused} refusals: ${JSON.stringify(lines)}`);
    });

    test('10,000 pipelined requests: bounded memory, no unbounded read-ahead, answers in order', { timeout: 40_000 }, async () => {
      const N = 10_000;
      const pad = 'p'.repeat(1000);
      const burst = Buffer.from(Array.from({ length: N }, (_, i) => GET(`/small?i=${i}`, 'pipe.test', `X-Pad: ${pad}\r\n`)).join(''), 'latin1');
      const baseline = rssKiB(roomy.pid);
      const rss = sampleRss(roomy.pid);
      const countBefore = up.small.count;
      up.small.maxInFlight = 0;
      const peer = await open(roomy.port, '127.0.0.1', false);
      let written = false;
      peer.socket.write(burst, () => (written = true));
      await sleep(2000);
      const proxySide = tcpQueues(roomy.port, peer.socket.localPort as number);
      const clientSide = tcpQueues(peer.socket.localPort as number, roomy.port);
      const forwarded = up.small.count - countBefore;
      const peakUnread = rss.stop();
      log(
        runtime,
        `pipelining: ${N} requests (${mib(burst.length / 1024)}) in one write, no answer read for 2 s: proxy RSS ${mib(baseline)} -> peak ${mib(peakUnread)} (+${mib(peakUnread - baseline)}); write done: ${written}; unread in the proxy's receive queue ${mib((proxySide?.rx ?? 0) / 1024)}, in the client's send queue ${mib((clientSide?.tx ?? 0) / 1024)}; upstream saw ${forwarded} (at most ${up.small.maxInFlight} at once)`,
      );
      // The proxy stopped reading ahead: bytes wait unread in its socket's receive queue (or, when
      // the kernel's buffers are smaller than the burst, the client's write has not finished).
      // Whether the write finished alone says nothing: 10 MiB can fit the two kernel queues.
      assert.ok((proxySide?.rx ?? 0) > 0 || !written, 'the proxy read the whole burst without answers being read: nothing waits in its receive queue');
      assert.ok(forwarded < N, 'the proxy forwarded every request while no answer was read');
      assert.ok(peakUnread - baseline < PIPELINE_HEADROOM_KIB, `proxy RSS grew by ${mib(peakUnread - baseline)}`);

      // Now read: answers arrive in order.
      const rss2 = sampleRss(roomy.pid);
      const ids: number[] = [];
      let buf: Buffer = Buffer.alloc(0);
      let bad = '';
      peer.socket.on('data', (c: Buffer) => {
        buf = buf.length ? Buffer.concat([buf, c]) : c;
        let at = 0;
        for (;;) {
          const end = buf.indexOf('\r\n\r\n', at);
          if (end < 0) break;
          const headText = buf.toString('latin1', at, end);
          const cl = /\r\ncontent-length: *(\d+)/i.exec(headText);
          if (!headText.startsWith('HTTP/1.1 200 ') || cl === null) {
            bad ||= headText.slice(0, 300);
            break;
          }
          if (buf.length < end + 4 + Number(cl[1])) break;
          ids.push(Number.parseInt(buf.toString('latin1', end + 4, end + 4 + 12), 10));
          at = end + 4 + Number(cl[1]);
        }
        buf = buf.subarray(at);
      });
      const t0 = performance.now();
      await until(
        () => ids.length >= N || peer.endedAt !== 0 || bad !== '',
        30_000,
        () => `${N} answers; got ${ids.length}`,
      ).catch(() => {});
      const readMs = performance.now() - t0;
      const peak = Math.max(peakUnread, rss2.stop());
      peer.socket.destroy();
      const inOrder = ids.every((id, i) => id === i);
      log(runtime, `pipelining: ${ids.length} answers read in ${ms(readMs)}, in order: ${inOrder}; proxy RSS peak ${mib(peak)} (+${mib(peak - baseline)})`);
      assert.equal(bad, '', 'every answer is a 200 with a Content-Length');
      assert.ok(inOrder, `answers out of order: ${ids.slice(0, 20).join(',')}...`);
      assert.equal(ids.length, N, 'every pipelined request is answered');
      assert.ok(peak - baseline < PIPELINE_HEADROOM_KIB, `proxy RSS grew by ${mib(peak - baseline)}`);
    });
  });
}
