// The listener contract (types.ts) as cases written once, registered against any implementation
// by listener.test.ts: request facts, bodies both ways, keep-alive, client aborts, graceful stop,
// groups and the hand-over after a 101. Implementation quirks keep their own tests.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { connect, field, fieldValues, get } from '../../tests/support/raw-http.ts';
import { gate, until, within } from '../../tests/support/wait.ts';
import type { Bindings } from '../app-env.ts';
import { startListenerGroup } from './index.ts';
import type { AppFetch, Listener, ListenerSpec, ListenFn } from './types.ts';

/** What an implementation provides beyond the minimum; the cases check what it declares. */
export interface ListenerFeatures {
  /** Passes `line` (the request line as received). */
  readonly line: boolean;
  /** `conn` is one object per connection (else: equal facts per request). */
  readonly connPerSocket: boolean;
  /** Hands the body of a request asking to switch protocols to the app (else: refuses it itself). */
  readonly upgradeBody: boolean;
  /** The hand-over it offers on requests asking to switch protocols. */
  readonly upgrade: 'bytes' | null;
}

const spec = (name = 'http', upgrades = false): ListenerSpec => ({ name, hostname: '127.0.0.1', port: 0, proto: 'http', maxHeaderBytes: 16384, upgrades });
const MIB = 1024 * 1024;

async function refused(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

/** A body of `total` bytes in `chunk`-sized pieces, produced on demand (byte i is i % 251). */
function patterned(total: number, chunk = 64 * 1024): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      const n = Math.min(chunk, total - sent);
      const bytes = new Uint8Array(n);
      for (let i = 0; i < n; i++) bytes[i] = (sent + i) % 251;
      sent += n;
      c.enqueue(bytes);
      if (sent >= total) c.close();
    },
  });
}
const isPatterned = (buf: Buffer) => buf.every((b, i) => b === i % 251);

export function listenerCases(name: string, listen: ListenFn, features: ListenerFeatures): void {
  /** Runs `body` against a listener serving `fetch`, and stops it whatever happens. */
  async function serving(fetch: AppFetch, body: (listener: Listener) => Promise<void>, options: { upgrades?: boolean } = {}): Promise<void> {
    const listener = await within(listen(fetch, spec('http', options.upgrades)), 2000, 'listen');
    try {
      await body(listener);
    } finally {
      await within(listener.stop(200), 3000, 'stop');
    }
  }

  /** An app that notes each request's Bindings and answers `ok`. */
  const recordingApp =
    (seen: Bindings[]): AppFetch =>
    (_request, env) => {
      seen.push(env);
      return new Response('ok');
    };

  test(`${name}: the request line as received${features.line ? '' : ' (not provided: no line)'}`, async () => {
    const seen: Bindings[] = [];
    await serving(recordingApp(seen), async (l) => {
      const c = await connect(l.port);
      c.write('GET /a/../b//c?x=%2F HTTP/1.1\r\nHost: example.test\r\n\r\n');
      const [res] = await c.responses(1);
      assert.equal(res?.status, 200);
      if (features.line) assert.deepEqual(seen[0]?.line, { method: 'GET', target: '/a/../b//c?x=%2F', version: '1.1' });
      else assert.equal(seen[0]?.line, undefined);
      c.socket.destroy();
    });
  });

  test(`${name}: connection facts: peer, scheme, listener${features.connPerSocket ? ', one object per connection' : ''}`, async () => {
    const seen: Bindings[] = [];
    await serving(recordingApp(seen), async (l) => {
      const c = await connect(l.port);
      c.write(get('/1') + get('/2'));
      await c.responses(2);
      assert.deepEqual(seen[0]?.conn, { remoteAddr: '127.0.0.1', proto: 'http', listener: 'http' });
      assert.deepEqual(seen[1]?.conn, seen[0]?.conn);
      if (features.connPerSocket) assert.equal(seen[1]?.conn, seen[0]?.conn);
      assert.equal(seen[0]?.upgrade, undefined, 'no upgrade on an ordinary request');
      const d = await connect(l.port);
      d.write(get('/3'));
      await d.responses(1);
      if (features.connPerSocket) assert.notEqual(seen[2]?.conn, seen[0]?.conn, 'a new connection gets its own facts');
      c.socket.destroy();
      d.socket.destroy();
    });
  });

  test(`${name}: request bodies stream in, with Content-Length and chunked`, async () => {
    await serving(
      async (request) => {
        const bytes = new Uint8Array(await request.arrayBuffer());
        return new Response(`${request.method} ${bytes.byteLength} ${new TextDecoder().decode(bytes.subarray(0, 5))}`);
      },
      async (l) => {
        const c = await connect(l.port);
        c.write(`POST /cl HTTP/1.1\r\nHost: example.test\r\nContent-Length: 11\r\n\r\nhello world`);
        c.write(`PUT /chunked HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n`);
        const [one, two] = await c.responses(2);
        assert.equal(one?.body.toString(), 'POST 11 hello');
        assert.equal(two?.body.toString(), 'PUT 7 abcde');
        c.socket.destroy();
      },
    );
  });

  test(`${name}: a 1 MiB streamed response arrives whole, its Content-Length kept`, async () => {
    await serving(
      (request) => {
        const headers = request.url.endsWith('/length') ? { 'content-length': String(MIB) } : undefined;
        return new Response(patterned(MIB), { headers });
      },
      async (l) => {
        const c = await connect(l.port);
        c.write(get('/length'));
        const [withLength] = await c.responses(1, [], 5000);
        assert.equal(field(withLength as never, 'content-length'), String(MIB));
        assert.equal(field(withLength as never, 'transfer-encoding'), undefined);
        assert.equal(withLength?.body.byteLength, MIB);
        assert.ok(isPatterned(withLength?.body as Buffer), 'bytes arrive in order, unchanged');
        const d = await connect(l.port);
        d.write(get('/streamed'));
        const [streamed] = await d.responses(1, [], 5000);
        assert.equal(streamed?.body.byteLength, MIB);
        assert.ok(isPatterned(streamed?.body as Buffer));
        c.socket.destroy();
        d.socket.destroy();
      },
    );
  });

  test(`${name}: repeated Set-Cookie fields stay separate`, async () => {
    await serving(
      () => {
        const headers = new Headers();
        headers.append('set-cookie', 'a=1; Path=/');
        headers.append('set-cookie', 'b=2, c=3');
        return new Response('ok', { headers });
      },
      async (l) => {
        const c = await connect(l.port);
        c.write(get('/'));
        const [res] = await c.responses(1);
        assert.deepEqual(fieldValues(res as never, 'set-cookie'), ['a=1; Path=/', 'b=2, c=3']);
        c.socket.destroy();
      },
    );
  });

  test(`${name}: keep-alive: sequential requests share one connection`, async () => {
    let n = 0;
    await serving(
      () => new Response(`r${++n}`),
      async (l) => {
        const c = await connect(l.port);
        c.write(get('/1'));
        await c.responses(1);
        c.write(get('/2'));
        const [one, two] = await c.responses(2);
        assert.equal(one?.body.toString(), 'r1');
        assert.equal(two?.body.toString(), 'r2');
        assert.equal(c.state.closed || c.state.ended, false, 'the connection stays open');
        c.socket.destroy();
      },
    );
  });

  test(`${name}: a client that goes away aborts request.signal`, async () => {
    const entered = gate();
    let aborted = false;
    await serving(
      async (request) => {
        entered.open();
        await new Promise<void>((resolve) => {
          if (request.signal.aborted) resolve();
          request.signal.addEventListener('abort', () => resolve(), { once: true });
        });
        aborted = true;
        return new Response('too late');
      },
      async (l) => {
        const c = await connect(l.port);
        c.write(get('/slow'));
        await within(entered.wait, 2000, 'the request reaches the app');
        c.socket.destroy();
        await until(() => aborted, 3000, 'request.signal aborts');
      },
    );
  });

  test(`${name}: stop() refuses new connections and lets the request in flight finish`, async () => {
    const entered = gate();
    const release = gate();
    const listener = await listen(async () => {
      entered.open();
      await release.wait;
      return new Response('finished');
    }, spec());
    const c = await connect(listener.port);
    c.write(get('/in-flight'));
    await within(entered.wait, 2000, 'the request reaches the app');
    const stopped = listener.stop(3000);
    let done = false;
    void stopped.then(() => {
      done = true;
    });
    await until(() => true, 50, 'tick');
    assert.equal(await refused(listener.port), true, 'new connections are refused');
    assert.equal(done, false, 'stop waits for the request in flight');
    release.open();
    const [res] = await c.responses(1);
    assert.equal(res?.body.toString(), 'finished');
    await within(stopped, 3000, 'stop resolves once the request finished');
    c.socket.destroy();
  });

  test(`${name}: a group: every listener answers, all stop together, a failed bind stops the others`, async () => {
    const fetch: AppFetch = (_request, env) => new Response(env.conn.listener);
    const group = await startListenerGroup(listen, fetch, [spec('one'), spec('two')]);
    assert.deepEqual(
      group.listeners.map((l) => l.name),
      ['one', 'two'],
    );
    for (const l of group.listeners) {
      const c = await connect(l.port);
      c.write(get('/'));
      const [res] = await c.responses(1);
      assert.equal(res?.body.toString(), l.name);
      c.socket.destroy();
    }
    // A second group wanting a port the first holds fails whole, naming the listener, and
    // stops what it had bound.
    const taken = (group.listeners[0] as Listener).port;
    const bound: Listener[] = [];
    const recording: ListenFn = async (f, s) => {
      const l = await listen(f, s);
      bound.push(l);
      return l;
    };
    await assert.rejects(startListenerGroup(recording, fetch, [spec('free'), { ...spec('busy'), port: taken }]), (error: Error) => {
      assert.match(error.message, new RegExp(`^cannot listen on 127\\.0\\.0\\.1:${taken} \\(busy\\): `));
      return true;
    });
    assert.equal(bound.length, 1, 'the free one was bound');
    assert.equal(await refused((bound[0] as Listener).port), true, 'and stopped again');
    await within(group.stop(200), 3000, 'group stop');
    for (const l of group.listeners) assert.equal(await refused(l.port), true, `${l.name} stopped`);
  });

  test(`${name}: without \`upgrades\`, a request asking to switch protocols is an ordinary one and its connection stays alive`, async () => {
    const seen: Bindings[] = [];
    await serving(recordingApp(seen), async (l) => {
      const c = await connect(l.port);
      c.write(get('/u', 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'));
      const [res] = await c.responses(1);
      assert.equal(res?.status, 200);
      assert.notEqual(field(res as never, 'connection'), 'close', 'kept alive');
      assert.equal(seen[0]?.upgrade, undefined, 'no hand-over offered');
      c.write(get('/after'));
      const both = await c.responses(2);
      assert.equal(both[1]?.status, 200, 'a second request on the same connection');
      c.socket.destroy();
    });
  });

  test(`${name}: an upgrade request the app does not accept gets the app's ordinary answer`, async () => {
    let offered: Bindings['upgrade'];
    await serving(
      (_request, env) => {
        offered = env.upgrade;
        return new Response('plain answer', { headers: { 'x-kind': 'normal' } });
      },
      async (l) => {
        const c = await connect(l.port);
        c.write(get('/u', 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'));
        const [res] = await c.responses(1);
        assert.equal(res?.status, 200);
        assert.equal(field(res as never, 'x-kind'), 'normal');
        assert.equal(res?.body.toString(), 'plain answer');
        assert.equal(offered?.kind, features.upgrade ?? undefined, 'the hand-over the listener declares was offered');
        c.socket.destroy();
      },
      { upgrades: true },
    );
  });

  const noUpgradeBody = features.upgradeBody ? false : 'this listener refuses an upgrade request with a body itself (documented in its file)';
  test(`${name}: an upgrade request with a body reaches the app with its body`, { skip: noUpgradeBody }, async () => {
    await serving(
      async (request) => new Response(`${request.method} ${await request.text()}`),
      async (l) => {
        // h2c's upgrade (RFC 7540 §3.2) may carry a body; not accepted, it is an ordinary request.
        const c = await connect(l.port);
        c.write('POST /u HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 5\r\n\r\nhello');
        const [posted] = await c.responses(1);
        assert.equal(posted?.status, 200);
        assert.equal(posted?.body.toString(), 'POST hello');
        c.socket.destroy();
      },
      { upgrades: true },
    );
  });

  if (features.upgrade === 'bytes') {
    test(`${name}: upgrade (bytes): the app accepts, bytes echo both ways, then close`, async () => {
      await serving(
        (_request, env) => {
          if (env.upgrade?.kind !== 'bytes') return new Response('no upgrade offered', { status: 500 });
          const stream = env.upgrade.accept(new Headers({ connection: 'upgrade', upgrade: 'echo' }));
          void stream.readable.pipeTo(stream.writable).catch(() => {}); // a reset ends the echo; nothing to report
          return new Response(null, { status: 204 });
        },
        async (l) => {
          const c = await connect(l.port);
          c.write(`${get('/tunnel', 'Connection: Upgrade\r\nUpgrade: echo\r\n')}early`);
          await until(
            () => c.text().includes('early'),
            2000,
            () => `101 and the early bytes; got ${JSON.stringify(c.text())}`,
          );
          assert.match(c.text(), /^HTTP\/1\.1 101 Switching Protocols\r\n/);
          assert.match(c.text(), /\r\nupgrade: echo\r\n/i);
          c.write('later');
          await until(
            () => c.text().endsWith('earlylater'),
            2000,
            () => `echo of later bytes; got ${JSON.stringify(c.text())}`,
          );
          assert.doesNotMatch(c.text(), /HTTP\/1\.1 204/, 'the app response after accept is not sent');
          c.socket.end();
          await c.closed();
        },
        { upgrades: true },
      );
    });
  }
}
