// The Bun socket transport against raw node:net upstreams that write exact bytes, so framing,
// splits and failures are under the test's control. Bun only: elsewhere the suite is skipped.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { onBun, sleep, until, within } from '../../tests/support/wait.ts';
import { createBunSocketTransport } from './bun-socket.ts';
import { UpstreamError, type UpstreamInit } from './types.ts';

interface Upstream {
  readonly url: string;
  /** Every connection accepted, in order. */
  readonly accepted: net.Socket[];
}

const servers: net.Server[] = [];
const openSockets = new Set<net.Socket>();

async function listen(onSocket: (socket: net.Socket) => void, host = '127.0.0.1'): Promise<Upstream> {
  const accepted: net.Socket[] = [];
  const server = net.createServer((socket) => {
    socket.setNoDelay(true); // each write is its own segment: the splits below reach the parser
    socket.on('error', () => {}); // resets are part of several scenarios
    accepted.push(socket);
    openSockets.add(socket);
    socket.on('close', () => openSockets.delete(socket));
    onSocket(socket);
  });
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`, accepted };
}

/** Calls `handle` for each request head arriving on the socket (body-less requests). */
function onHeads(socket: net.Socket, handle: (head: string, index: number) => void) {
  let buf = Buffer.alloc(0);
  let n = 0;
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
      const head = buf.toString('latin1', 0, end + 4);
      buf = buf.subarray(end + 4);
      handle(head, n++);
    }
  });
}

/** An upstream answering every body-less request with `respond(head, n)` (n counts per connection). */
const serve = (respond: (head: string, socket: net.Socket, n: number) => void, host?: string) =>
  listen((socket) => onHeads(socket, (head, n) => respond(head, socket, n)), host);

/** Collects what arrives on the socket until `done` says the request is complete. */
function receive(socket: net.Socket, done: (buf: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (done(buf)) {
        socket.off('data', onData);
        resolve(buf);
      }
    };
    socket.on('data', onData);
  });
}

/** Writes the pieces as separate segments, a little apart. */
async function trickle(socket: net.Socket, pieces: (string | Buffer)[], gap = 2) {
  for (const piece of pieces) {
    if (socket.destroyed) return;
    socket.write(piece);
    await sleep(gap);
  }
}

/**
 * Writes `text` one byte per write, pausing every 64 bytes and after each CR so the writes go
 * out apart (every CRLF, and the CRLFCRLF ending a head, is split over reads).
 */
async function byteByByte(socket: net.Socket, text: string) {
  for (let i = 0; i < text.length; i++) {
    if (socket.destroyed) return;
    socket.write(text[i] as string, 'latin1');
    if (i % 64 === 63 || text[i] === '\r') await sleep(1);
  }
}

const ok = (body: string, extra = '') => `HTTP/1.1 200 OK\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

function streamOf(chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk);
      controller.close();
    },
  });
}

async function canListen(host: string, port = 0): Promise<boolean> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

const ipv6 = onBun && (await canListen('::1'));
const code = (expected: RegExp) => (error: unknown) => expected.test(String((error as { code?: unknown }).code));

describe('bun socket transport', { skip: !onBun }, () => {
  const transport = createBunSocketTransport();
  const fetchAt = (url: string, init: Partial<UpstreamInit> = {}) =>
    transport.fetch(url, { method: 'GET', headers: new Headers(), body: null, signal: new AbortController().signal, ...init });

  after(async () => {
    await transport.close();
    for (const socket of openSockets) socket.destroy();
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  });

  test('sends the target raw and exactly the given headers, nothing invented', async () => {
    let seen = '';
    const up = await serve((head, socket) => {
      seen = head;
      socket.write(ok(''));
    });
    const headers = new Headers([
      ['Host', 'example.test:8080'],
      ['X-Custom', 'A  b'],
      ['Accept-Encoding', 'gzip'],
    ]);
    const res = await fetchAt(`${up.url}/a%2Fb//x?q=%7E`, { headers });
    assert.equal(res.status, 200);
    // Headers iterate sorted and lowercased; no user-agent, accept or connection gets added.
    assert.equal(seen, 'GET /a%2Fb//x?q=%7E HTTP/1.1\r\naccept-encoding: gzip\r\nhost: example.test:8080\r\nx-custom: A  b\r\n\r\n');
  });

  test('Content-Length response: status, reason, headers, repeated Set-Cookie, body', async () => {
    const up = await serve((_, socket) =>
      socket.write(
        'HTTP/1.1 201 Made It\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nset-cookie: b=2; Path=/\r\n' +
          'X-Multi: 1\r\nx-multi: 2\r\nContent-Length: 5\r\n\r\nhello',
      ),
    );
    const res = await fetchAt(`${up.url}/`);
    assert.equal(res.status, 201);
    assert.equal(res.statusText, 'Made It');
    assert.equal(res.headers.get('content-type'), 'text/plain');
    assert.equal(res.headers.get('content-length'), '5');
    assert.equal(res.headers.get('x-multi'), '1, 2');
    assert.deepEqual(res.headers.getSetCookie(), ['a=1', 'b=2; Path=/']);
    assert.equal(await res.text(), 'hello');
  });

  test('chunked body delivered byte by byte: data joined, trailers dropped, connection reused', async () => {
    const chunked =
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n5;ext="a b"\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-sum: 42\r\n\r\n';
    const up = await serve((_, socket, n) => {
      if (n === 0) void trickle(socket, [...chunked], 1);
      else socket.write(ok('next'));
    });
    const res = await fetchAt(`${up.url}/`);
    assert.equal(res.headers.get('transfer-encoding'), null);
    assert.equal(res.headers.get('x-sum'), null);
    assert.equal(await res.text(), 'helloabcdefghijklmnopqrstuvwxyz');
    // The message end was found exactly: the same connection serves the next request.
    assert.equal(await (await fetchAt(`${up.url}/`)).text(), 'next');
    assert.equal(up.accepted.length, 1);
  });

  test('chunked body split inside the size line, before the CRLF and inside trailers', async () => {
    const pieces = [
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r',
      '\n\r\n',
      '1',
      '0\r',
      '\n0123456789abcde',
      'f',
      '\r',
      '\n3\r\nxyz',
      '\r\n0',
      '\r\nx-t',
      'railer: 1\r\n',
      '\r',
      '\n',
    ];
    const up = await serve((_, socket, n) => {
      if (n === 0) void trickle(socket, pieces);
      else socket.write(ok('next'));
    });
    assert.equal(await (await fetchAt(`${up.url}/`)).text(), '0123456789abcdefxyz');
    assert.equal(await (await fetchAt(`${up.url}/`)).text(), 'next');
    assert.equal(up.accepted.length, 1);
  });

  test('close-delimited body runs until the upstream ends the socket', async () => {
    const up = await serve(async (_, socket) => {
      await trickle(socket, ['HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\npart1', 'part2'], 20);
      socket.end();
    });
    const res = await fetchAt(`${up.url}/`);
    assert.equal(await within(res.text(), 2000, 'close-delimited body'), 'part1part2');
  });

  test('a 5 MiB Content-Length body streams through intact', async () => {
    const data = randomBytes(5 * 1024 * 1024);
    const up = await serve((_, socket) => socket.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${data.byteLength}\r\n\r\n`), data])));
    const res = await fetchAt(`${up.url}/`);
    const got = Buffer.from(await res.arrayBuffer());
    assert.equal(got.byteLength, data.byteLength);
    assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(data).digest('hex'));
  });

  test('a 5 MiB body read slowly arrives intact (queued chunks are not overwritten)', async () => {
    const data = randomBytes(5 * 1024 * 1024);
    const up = await serve((_, socket) => socket.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${data.byteLength}\r\n\r\n`), data])));
    const reader = ((await fetchAt(`${up.url}/`)).body as ReadableStream<Uint8Array>).getReader();
    const hash = createHash('sha256');
    let n = 0;
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      hash.update(r.value);
      n += r.value.byteLength;
      if (n < 512 * 1024) await sleep(5); // lets the queue fill and the socket pause a few times
    }
    assert.equal(n, data.byteLength);
    assert.equal(hash.digest('hex'), createHash('sha256').update(data).digest('hex'));
  });

  test('100 Continue and 103 Early Hints before the final answer are skipped', async () => {
    const up = await serve((_, socket) =>
      trickle(socket, [
        'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n',
        'HTTP/1.1 103 Early',
        ` Hints\r\n\r\n${ok('ok')}`,
      ]),
    );
    const res = await fetchAt(`${up.url}/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('link'), null);
    assert.equal(await res.text(), 'ok');
  });

  test('HEAD: no body despite Content-Length, header kept, connection reused', async () => {
    const up = await serve((head, socket) => socket.write(head.startsWith('HEAD') ? 'HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n' : ok('abc')));
    const res = await within(fetchAt(`${up.url}/`, { method: 'HEAD' }), 2000, 'HEAD response');
    assert.equal(res.headers.get('content-length'), '1234');
    assert.equal(res.body, null);
    assert.equal(
      await within(
        fetchAt(`${up.url}/`).then((r) => r.text()),
        2000,
        'GET after HEAD',
      ),
      'abc',
    );
    assert.equal(up.accepted.length, 1);
  });

  test('204 and 304 have null bodies, even when 304 repeats a Content-Length', async () => {
    const answers: Record<string, string> = {
      '/204': 'HTTP/1.1 204 No Content\r\n\r\n',
      '/304': 'HTTP/1.1 304 Not Modified\r\netag: "x"\r\ncontent-length: 10\r\n\r\n',
      '/after': ok('after'),
    };
    const up = await serve((head, socket) => socket.write(answers[head.split(' ')[1] as string] as string));
    const noContent = await within(fetchAt(`${up.url}/204`), 2000, '204');
    assert.equal(noContent.status, 204);
    assert.equal(noContent.body, null);
    const notModified = await within(fetchAt(`${up.url}/304`), 2000, '304');
    assert.equal(notModified.status, 304);
    assert.equal(notModified.body, null);
    assert.equal(notModified.headers.get('etag'), '"x"');
    // The 10 bytes a 304's Content-Length names never come: the next answer is read as one.
    assert.equal(
      await within(
        fetchAt(`${up.url}/after`).then((r) => r.text()),
        2000,
        'GET after 304',
      ),
      'after',
    );
  });

  test('205 with an empty chunked body or a Content-Length body: null body, and the next request gets its own answer', async () => {
    // RFC 9112 §6.3 does not end a 205 at its empty line. node:http sends `transfer-encoding:
    // chunked` and, in a later write, `0\r\n\r\n` (or `content-length: 13` and "Reset Content"):
    // a connection pooled at the empty line would hand those bytes to the next request.
    const bodies: Record<string, [string, string]> = {
      '/chunked': ['HTTP/1.1 205 Reset Content\r\nTransfer-Encoding: chunked\r\n\r\n', '0\r\n\r\n'],
      '/length': ['HTTP/1.1 205 Reset Content\r\nContent-Length: 13\r\n\r\n', 'Reset Content'],
    };
    const up = await listen((socket) => {
      // A serial upstream: each answer goes out whole before the next request is looked at.
      let queue = Promise.resolve();
      onHeads(socket, (head) => {
        queue = queue.then(async () => {
          const target = head.split(' ')[1] as string;
          const parts = bodies[target];
          if (parts === undefined) return void socket.write(ok(`answer to ${target}`));
          socket.write(parts[0]);
          await sleep(30);
          socket.write(parts[1]);
        });
      });
    });
    for (const target of ['/chunked', '/length']) {
      const res = await within(fetchAt(`${up.url}${target}`), 2000, `205 ${target}`);
      assert.equal(res.status, 205);
      assert.equal(res.body, null, target);
      // Sent while the 205's body is still on its way.
      const next = await within(
        fetchAt(`${up.url}/next`).then((r) => r.text()),
        2000,
        `request right after 205 ${target}`,
      );
      assert.equal(next, 'answer to /next', target);
      await sleep(60); // the 205's body has come and gone: whatever connection is pooled is clean
      const later = await within(
        fetchAt(`${up.url}/later`).then((r) => r.text()),
        2000,
        `request after 205 ${target} ended`,
      );
      assert.equal(later, 'answer to /later', target);
    }
  });

  // RFC 9112 §6.3 ends these messages at the empty line: no reason to drop the connection.
  test('204, 304 and HEAD answers without Content-Length keep the connection', async () => {
    const up = await serve((head, socket) => {
      if (head.startsWith('HEAD')) socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n');
      else socket.write(head.startsWith('GET /204') ? 'HTTP/1.1 204 No Content\r\n\r\n' : 'HTTP/1.1 304 Not Modified\r\netag: "x"\r\n\r\n');
    });
    assert.equal((await fetchAt(`${up.url}/204`)).status, 204);
    assert.equal((await fetchAt(`${up.url}/304`)).status, 304);
    assert.equal((await fetchAt(`${up.url}/`, { method: 'HEAD' })).status, 200);
    assert.equal(up.accepted.length, 1);
  });

  test('keep-alive: sequential requests share one connection', async () => {
    const heads: string[] = [];
    const up = await serve((head, socket, n) => {
      heads.push(head);
      socket.write(ok(`r${n}`));
    });
    assert.equal(await (await fetchAt(`${up.url}/`)).text(), 'r0');
    assert.equal(await (await fetchAt(`${up.url}/`)).text(), 'r1');
    assert.equal(await (await fetchAt(`${up.url}/`)).text(), 'r2');
    assert.equal(up.accepted.length, 1);
    // Nothing stray between messages on the reused connection.
    assert.deepEqual(heads, Array(3).fill('GET / HTTP/1.1\r\n\r\n'));
  });

  test('Connection: close is honoured: the next request opens a new connection', async () => {
    const up = await serve((_, socket) => socket.write(ok('bye', 'connection: close\r\n')));
    const res = await fetchAt(`${up.url}/`);
    assert.equal(res.headers.get('connection'), null); // hop-by-hop
    assert.equal(await res.text(), 'bye');
    assert.equal(await (await fetchAt(`${up.url}/`)).text(), 'bye');
    assert.equal(up.accepted.length, 2);
  });

  test('HTTP/1.0 without keep-alive is not reused', async () => {
    const up = await serve((_, socket) => socket.write('HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nhi'));
    assert.equal(await (await fetchAt(`${up.url}/`)).text(), 'hi');
    assert.equal(await (await fetchAt(`${up.url}/`)).text(), 'hi');
    assert.equal(up.accepted.length, 2);
  });

  test('an idle pooled connection the upstream closed is not used again', async () => {
    const up = await serve((_, socket) => {
      socket.write(ok('fine'));
      setTimeout(() => socket.destroy(), 20);
    });
    assert.equal(await (await fetchAt(`${up.url}/`)).text(), 'fine');
    await until(() => up.accepted[0]?.destroyed === true, 1000, 'upstream closed the idle socket');
    await sleep(50);
    assert.equal(
      await within(
        fetchAt(`${up.url}/`).then((r) => r.text()),
        2000,
        'second request',
      ),
      'fine',
    );
    assert.equal(up.accepted.length, 2);
  });

  // The race a retry exists for (proxy/retry.ts decides): the upstream drops the kept-alive
  // socket just as the next request arrives on it, without answering (closed, or reset). The
  // transport does not retry; it says what happened.
  for (const [how, drop] of [
    ['closed', (socket: net.Socket) => socket.destroy()],
    ['reset', (socket: net.Socket) => socket.resetAndDestroy()],
  ] as const) {
    test(`a stale pooled connection ${how} on reuse: rejects with UpstreamError reusedConnection:true, responseStarted:false`, async () => {
      const up = await serve((_, socket, n) => {
        if (up.accepted.length === 1 && n === 1) drop(socket);
        else socket.write(ok(`c${up.accepted.length}`));
      });
      assert.equal(await (await fetchAt(`${up.url}/`)).text(), 'c1');
      const error = await within(
        fetchAt(`${up.url}/`).then(
          () => assert.fail('the request on the dropped connection resolved'),
          (e: unknown) => e,
        ),
        2000,
        'request on the dropped connection',
      );
      assert.ok(error instanceof UpstreamError, `got ${String(error)}`);
      assert.match(error.code ?? '', /^(ECONNRESET|EPIPE)$/);
      assert.deepEqual(error.facts, { connectFailed: false, reusedConnection: true, responseStarted: false });
      await sleep(50); // a retry would have reached the upstream by now
      assert.equal(up.accepted.length, 1, 'the transport itself never tries again');
      // The next request opens a new connection: the dead one left the pool.
      assert.equal(await (await fetchAt(`${up.url}/`)).text(), 'c2');
    });
  }

  test('a failure on a first-use connection says reusedConnection:false; one after response bytes says responseStarted:true', async () => {
    const up = await serve((head, socket) => {
      if (head.startsWith('GET /partial')) socket.end('HTTP/1.1 200 OK\r\ncontent-le');
      else socket.destroy();
    });
    const first = await within(
      fetchAt(`${up.url}/drop`).catch((e: unknown) => e),
      2000,
      'dropped request',
    );
    assert.ok(first instanceof UpstreamError, `got ${String(first)}`);
    assert.deepEqual(first.facts, { connectFailed: false, reusedConnection: false, responseStarted: false });
    const partial = await within(
      fetchAt(`${up.url}/partial`).catch((e: unknown) => e),
      2000,
      'half-answered request',
    );
    assert.ok(partial instanceof UpstreamError, `got ${String(partial)}`);
    assert.equal(partial.facts.responseStarted, true);
  });

  test('fresh: true skips the idle pool and opens a new connection', async () => {
    const up = await serve((_, socket) => socket.write(ok(`c${up.accepted.length}`)));
    assert.equal(await (await fetchAt(`${up.url}/`)).text(), 'c1');
    assert.equal(await (await fetchAt(`${up.url}/`, { fresh: true })).text(), 'c2');
    assert.equal(up.accepted.length, 2);
    // Both are pooled now; a plain request reuses one of them.
    assert.equal(await (await fetchAt(`${up.url}/`)).text(), 'c2');
    assert.equal(up.accepted.length, 2);
  });

  test('malformed response heads reject', async () => {
    const cases: [string, string, RegExp][] = [
      ['garbage status line', 'HTTX/1.1 200 OK\r\ncontent-length: 0\r\n\r\n', /^UPSTREAM_INVALID_RESPONSE$/],
      ['status 600', 'HTTP/1.1 600 Odd\r\ncontent-length: 0\r\n\r\n', /^UPSTREAM_INVALID_STATUS$/],
      ['space before colon', 'HTTP/1.1 200 OK\r\nx-a : 1\r\ncontent-length: 0\r\n\r\n', /^UPSTREAM_INVALID_RESPONSE$/],
      ['no colon', 'HTTP/1.1 200 OK\r\nx-a 1\r\ncontent-length: 0\r\n\r\n', /^UPSTREAM_INVALID_RESPONSE$/],
      ['obsolete line folding', 'HTTP/1.1 200 OK\r\nx-a: 1\r\n 2\r\ncontent-length: 0\r\n\r\n', /^UPSTREAM_INVALID_RESPONSE$/],
      ['conflicting Content-Length', 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!', /^UPSTREAM_INVALID_RESPONSE$/],
      ['conflicting Content-Length list', 'HTTP/1.1 200 OK\r\ncontent-length: 5, 6\r\n\r\nhello!', /^UPSTREAM_INVALID_RESPONSE$/],
      ['non-numeric Content-Length', 'HTTP/1.1 200 OK\r\ncontent-length: -5\r\n\r\n', /^UPSTREAM_INVALID_RESPONSE$/],
      ['unexpected 101', 'HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\n\r\n', /^UPSTREAM_INVALID_RESPONSE$/],
      ['head over 64 KiB', `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(70 * 1024)}\r\ncontent-length: 0\r\n\r\n`, /^UPSTREAM_INVALID_RESPONSE$/],
    ];
    const up = await serve((head, socket) => socket.write(cases[Number(/^GET \/(\d+)/.exec(head)?.[1])]?.[1] as string));
    for (const [i, [name, , expected]] of cases.entries()) {
      await within(assert.rejects(fetchAt(`${up.url}/${i}`), code(expected), name), 2000, name);
    }
  });

  test('a transfer coding other than chunked rejects (`gzip, chunked`, `gzip`, `chunked, gzip`)', async () => {
    // Only chunked is decoded and Transfer-Encoding does not travel on: gzip bytes would reach
    // the client unmarked.
    const gz = gzipSync('hello');
    const answers: Record<string, Buffer> = {
      '/gzip-chunked': Buffer.concat([
        Buffer.from(`HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n${gz.byteLength.toString(16)}\r\n`),
        gz,
        Buffer.from('\r\n0\r\n\r\n'),
      ]),
      '/gzip': Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n'), gz]),
      '/chunked-gzip': Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n'), gz]),
    };
    const up = await serve((head, socket) => socket.write(answers[head.split(' ')[1] as string] as Buffer));
    for (const target of Object.keys(answers)) {
      await within(assert.rejects(fetchAt(`${up.url}${target}`), code(/^UPSTREAM_INVALID_RESPONSE$/), target), 2000, target);
    }
  });

  test('Transfer-Encoding beside Content-Length, or in HTTP/1.0: read as chunked, no Content-Length passed on, not reused', async () => {
    // RFC 9112 §6.1, §6.3: chunked wins, but the framing is in doubt (a smuggling attempt, or
    // an upstream that frames otherwise), so the connection ends with the answer.
    const cases: [string, string][] = [
      ['TE and CL', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n'],
      ['CL after TE', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 100\r\n\r\n2\r\nhi\r\n0\r\n\r\n'],
      ['HTTP/1.0 with TE', 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n'],
    ];
    for (const [name, answer] of cases) {
      const up = await serve((head, socket) => socket.write(head.startsWith('GET /framing') ? answer : ok('next')));
      const res = await within(fetchAt(`${up.url}/framing`), 2000, name);
      assert.equal(res.status, 200, name);
      assert.equal(res.headers.get('content-length'), null, name);
      assert.equal(res.headers.get('transfer-encoding'), null, name);
      assert.equal(await within(res.text(), 2000, `${name}: body`), 'hi', name);
      await until(() => up.accepted[0]?.destroyed === true, 1000, `${name}: connection closed`);
      assert.equal(await (await fetchAt(`${up.url}/next`)).text(), 'next', name);
      assert.equal(up.accepted.length, 2, `${name}: the next request went on a fresh connection`);
    }
  });

  test('a head that never ends rejects once it passes 64 KiB', async () => {
    const up = await serve((_, socket) => trickle(socket, ['HTTP/1.1 200 OK\r\n', ...Array.from({ length: 40 }, () => `x-a: ${'b'.repeat(4000)}\r\n`)], 1));
    await within(assert.rejects(fetchAt(`${up.url}/`), code(/^UPSTREAM_INVALID_RESPONSE$/)), 2000, 'endless head');
  });

  test('a response head arriving one byte per write parses whole, and the connection is reused after', async () => {
    // About 2 KiB of fields, after an interim 100, each byte its own write: the head is only
    // looked at again for its new bytes (http1/head-buffer.ts), which must find the end wherever
    // it falls.
    const fields = Array.from({ length: 48 }, (_, i): [string, string] => [`x-h${i}`, `v${i}-${'abcdefghij'.repeat(3)}`]);
    const answer = `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Fine\r\n${fields.map(([n, v]) => `${n}: ${v}\r\n`).join('')}content-length: 4\r\n\r\nbody`;
    assert.ok(answer.length > 2048);
    const up = await serve((_, socket, n) => {
      if (n === 0) void byteByByte(socket, answer);
      else socket.write(ok('next'));
    });
    const res = await within(fetchAt(`${up.url}/`), 3000, 'head sent byte by byte');
    assert.equal(res.status, 200);
    assert.equal(res.statusText, 'Fine');
    for (const [name, value] of fields) assert.equal(res.headers.get(name), value, name);
    assert.equal([...res.headers].length, fields.length + 1);
    assert.equal(await within(res.text(), 2000, 'body'), 'body');
    assert.equal(await (await fetchAt(`${up.url}/`)).text(), 'next');
    assert.equal(up.accepted.length, 1);
  });

  test('an invalid chunk size fails the exchange (the promise or its body)', async () => {
    const up = await serve((_, socket) =>
      trickle(socket, ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n', '5\r\nhello\r\n', 'zz\r\nabc\r\n0\r\n\r\n']),
    );
    const read = async () => (await fetchAt(`${up.url}/`)).text();
    await within(assert.rejects(read(), code(/^UPSTREAM_INVALID_RESPONSE$/)), 2000, 'bad chunk size');
  });

  test('the upstream closing or resetting before any answer rejects', async () => {
    const closing = await serve((_, socket) => socket.end());
    await within(assert.rejects(fetchAt(`${closing.url}/`), code(/^(ECONNRESET|EPIPE)$/)), 2000, 'closed');
    const resetting = await serve((_, socket) => socket.resetAndDestroy());
    await within(assert.rejects(fetchAt(`${resetting.url}/`), code(/^(ECONNRESET|EPIPE)$/)), 2000, 'reset');
  });

  test('a cut-short Content-Length body: a small one rejects the fetch, a large one errors the body', async () => {
    const up = await serve((head, socket) => {
      const large = head.startsWith('GET /large');
      const declared = large ? 200 * 1024 : 100;
      socket.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${declared}\r\n\r\n`), Buffer.alloc(declared / 2, 97)]));
    });
    await within(assert.rejects(fetchAt(`${up.url}/small`), code(/^ECONNRESET$/)), 2000, 'small body');
    const res = await within(fetchAt(`${up.url}/large`), 2000, 'large head');
    assert.equal(res.status, 200);
    await within(assert.rejects(res.arrayBuffer(), code(/^ECONNRESET$/)), 2000, 'large body');
  });

  test('a refused port rejects with ECONNREFUSED', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    await within(assert.rejects(fetchAt(`http://127.0.0.1:${port}/`), code(/^ECONNREFUSED$/)), 2000, 'refused');
    const error = await fetchAt(`http://127.0.0.1:${port}/`).catch((e: unknown) => e);
    assert.ok(error instanceof UpstreamError, `got ${String(error)}`);
    assert.deepEqual(error.facts, { connectFailed: true, reusedConnection: false, responseStarted: false });
  });

  test('204 loses a Content-Length and 205 says 0 (http/body-rules.ts bodilessHeaders)', async () => {
    const up = await serve((head, socket) => {
      if (head.startsWith('GET /204')) socket.write('HTTP/1.1 204 No Content\r\ncontent-length: 7\r\nx-a: 1\r\n\r\n');
      else socket.write('HTTP/1.1 205 Reset Content\r\ncontent-length: 5\r\n\r\nhello');
    });
    const r204 = await fetchAt(`${up.url}/204`);
    assert.equal(r204.status, 204);
    assert.equal(r204.headers.get('content-length'), null);
    assert.equal(r204.headers.get('x-a'), '1');
    const r205 = await fetchAt(`${up.url}/205`);
    assert.equal(r205.status, 205);
    assert.equal(r205.headers.get('content-length'), '0');
    assert.equal(r205.body, null);
  });

  test('hop-by-hop response fields and those Connection names are removed', async () => {
    const up = await serve((_, socket) =>
      socket.write(
        'HTTP/1.1 200 OK\r\nconnection: x-private, keep-alive\r\nkeep-alive: timeout=5\r\nx-private: 1\r\nupgrade: h2c\r\ntrailer: x-t\r\nproxy-connection: keep-alive\r\nx-kept: 2\r\ncontent-length: 2\r\n\r\nok',
      ),
    );
    const res = await fetchAt(`${up.url}/`);
    assert.deepEqual(
      [...res.headers],
      [
        ['content-length', '2'],
        ['x-kept', '2'],
      ],
    );
    assert.equal(await res.text(), 'ok');
  });

  test('a request body with Content-Length is sent as is', async () => {
    let got: Promise<Buffer> | undefined;
    const up = await listen((socket) => {
      got = receive(socket, (buf) => {
        const end = buf.indexOf('\r\n\r\n');
        return end >= 0 && buf.byteLength >= end + 4 + 11;
      });
      void got.then(() => socket.write(ok('done')));
    });
    const headers = new Headers({ host: 'h', 'content-length': '11' });
    const res = await fetchAt(`${up.url}/up`, { method: 'PUT', headers, body: streamOf(['hello', new Uint8Array(0), ' world']) });
    assert.equal(await res.text(), 'done');
    assert.equal((await got)?.toString('latin1'), 'PUT /up HTTP/1.1\r\ncontent-length: 11\r\nhost: h\r\n\r\nhello world');
  });

  test('a request body without Content-Length goes chunked', async () => {
    let got: Promise<Buffer> | undefined;
    const up = await listen((socket) => {
      got = receive(socket, (buf) => buf.toString('latin1').endsWith('\r\n0\r\n\r\n'));
      void got.then(() => socket.write(ok('done')));
    });
    const headers = new Headers({ host: 'h' });
    const big = 'x'.repeat(300);
    const res = await fetchAt(`${up.url}/up`, { method: 'POST', headers, body: streamOf(['hello', new Uint8Array(0), big]) });
    assert.equal(await within(res.text(), 2000, 'chunked upload'), 'done');
    // The empty chunk must not be written: `0\r\n\r\n` would end the body early.
    assert.equal((await got)?.toString('latin1'), `POST /up HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n12c\r\n${big}\r\n0\r\n\r\n`);
  });

  test('a request body that does not match its Content-Length fails the exchange', async () => {
    const up = await listen(() => {}); // reads, never answers
    for (const [declared, text] of [
      ['3', 'hello'],
      ['11', 'hello'],
    ] as const) {
      const headers = new Headers({ host: 'h', 'content-length': declared });
      await within(assert.rejects(fetchAt(`${up.url}/up`, { method: 'PUT', headers, body: streamOf([text]) })), 2000, `length ${declared}`);
    }
  });

  test('aborting before the head arrives rejects with the reason and closes the socket', async () => {
    let arrived!: () => void;
    const requested = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const up = await serve(() => arrived()); // never answers
    const controller = new AbortController();
    const pending = fetchAt(`${up.url}/`, { signal: controller.signal });
    await within(requested, 2000, 'request reached the upstream');
    const reason = new Error('client gone');
    controller.abort(reason);
    await within(
      assert.rejects(pending, (error) => error === reason),
      500,
      'abort',
    );
    await until(() => up.accepted[0]?.destroyed === true, 1000, 'upstream socket closed');
  });

  test('aborting while a body streams errors the body stream', async () => {
    const up = await serve((_, socket) =>
      socket.write(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 1048576\r\n\r\n'), Buffer.alloc(1000, 97)])),
    );
    const controller = new AbortController();
    const res = await within(fetchAt(`${up.url}/`, { signal: controller.signal }), 2000, 'head');
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    assert.ok(((await reader.read()).value?.byteLength ?? 0) > 0);
    const reason = new Error('route timeout');
    controller.abort(reason);
    await within(
      assert.rejects(reader.read(), (error) => error === reason),
      1000,
      'body after abort',
    );
    await until(() => up.accepted[0]?.destroyed === true, 1000, 'upstream socket closed');
  });

  test('a reader that does not read throttles the upstream (backpressure)', async () => {
    const total = 64 * 1024 * 1024;
    let accepted = 0;
    const up = await serve((_, socket) => {
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${total}\r\n\r\n`);
      const chunk = Buffer.alloc(64 * 1024, 120);
      // As fast as the socket takes it: `accepted` stops growing once the buffers are full.
      const pump = () => {
        while (accepted < total && !socket.destroyed) {
          accepted += chunk.byteLength;
          if (!socket.write(chunk)) return void socket.once('drain', pump);
        }
      };
      pump();
    });
    const res = await fetchAt(`${up.url}/`);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    assert.ok(((await reader.read()).value?.byteLength ?? 0) > 0);
    await sleep(300);
    const settled = accepted;
    await sleep(200);
    // Kernel buffers hold a few MiB at most; an unthrottled reader would take all 64 MiB.
    assert.ok(accepted < 16 * 1024 * 1024, `upstream wrote ${accepted} bytes`);
    assert.equal(accepted, settled, 'the upstream is stalled, not just slow');
    await reader.cancel();
    await until(() => up.accepted[0]?.destroyed === true, 1000, 'upstream socket closed after cancel');
  });

  test('localhost reaches an upstream on 127.0.0.1', async () => {
    const up = await serve((_, socket) => socket.write(ok('v4')), '127.0.0.1');
    const port = new URL(up.url).port;
    assert.equal(await (await fetchAt(`http://localhost:${port}/`)).text(), 'v4');
  });

  test('localhost reaches an upstream on ::1 only', { skip: !ipv6 }, async () => {
    // The transport tries 127.0.0.1 first: that port must be free there, or another upstream
    // of this file (or anything else on the machine) would answer instead.
    let port = '';
    for (let tries = 0; tries < 5 && port === ''; tries++) {
      const up = await serve((_, socket) => socket.write(ok('v6')), '::1');
      const candidate = new URL(up.url).port;
      if (await canListen('127.0.0.1', Number(candidate))) port = candidate;
    }
    assert.notEqual(port, '', 'no ::1 port that is free on 127.0.0.1');
    assert.equal(
      await within(
        fetchAt(`http://localhost:${port}/`).then((r) => r.text()),
        2000,
        'localhost over ::1',
      ),
      'v6',
    );
    assert.equal(await (await fetchAt(`http://[::1]:${port}/`)).text(), 'v6'); // a bracketed literal too
  });

  /** An endless upload that records when it gets cancelled. */
  function endlessUpload() {
    let cancelled!: () => void;
    const wasCancelled = new Promise<void>((resolve) => {
      cancelled = resolve;
    });
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new Uint8Array(16 * 1024));
      },
      cancel() {
        cancelled();
      },
    });
    return { body, wasCancelled };
  }

  test('an early 413 during a streaming upload resolves and cancels the upload (upstream keeps reading)', async () => {
    const up = await listen((socket) => {
      let answered = false;
      socket.on('data', () => {
        if (answered) return; // keeps reading and discarding, socket left open
        answered = true;
        socket.write('HTTP/1.1 413 Payload Too Large\r\ncontent-length: 7\r\n\r\ntoo big');
      });
    });
    const { body, wasCancelled } = endlessUpload();
    const res = await within(fetchAt(`${up.url}/up`, { method: 'POST', headers: new Headers({ host: 'h' }), body }), 2000, '413 response');
    assert.equal(res.status, 413);
    assert.equal(await res.text(), 'too big');
    await within(wasCancelled, 2000, 'upload cancelled');
    // Half a request was written: the connection must not be pooled.
    await until(() => up.accepted[0]?.destroyed === true, 1000, 'upstream socket closed');
  });

  // The writer is parked on a partial write that will never drain; the finished response must
  // wake it, or the client's upload and the upstream connection stay held (nothing else aborts).
  test('an early 413 during a streaming upload resolves and cancels the upload (upstream stops reading)', async () => {
    const up = await listen((socket) => {
      socket.once('data', () => {
        socket.pause(); // like an upstream that answered and will not read the rest
        socket.write('HTTP/1.1 413 Payload Too Large\r\ncontent-length: 7\r\n\r\ntoo big');
      });
    });
    const { body, wasCancelled } = endlessUpload();
    const headers = new Headers({ host: 'h', 'content-length': String(1024 * 1024 * 1024) });
    const res = await within(fetchAt(`${up.url}/up`, { method: 'POST', headers, body }), 2000, '413 response');
    assert.equal(res.status, 413);
    assert.equal(await res.text(), 'too big');
    await within(wasCancelled, 1000, 'upload cancelled');
  });

  test('a request head the socket could not take at once, answered early: not pooled, the next request goes out alone', async () => {
    // The upstream answers after the first bytes of a 16 MiB head and stops reading, so head
    // bytes stay queued on the connection: a next request written there would land among them.
    const big = 'A'.repeat(16 * 1024 * 1024);
    const received: Buffer[][] = [];
    const up = await listen((socket) => {
      const chunks: Buffer[] = [];
      received.push(chunks);
      if (received.length > 1) {
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        onHeads(socket, () => socket.write(ok('fresh')));
        return;
      }
      socket.once('data', (chunk: Buffer) => {
        chunks.push(chunk);
        socket.pause();
        socket.on('data', (more: Buffer) => chunks.push(more));
        socket.write('HTTP/1.1 400 Bad Request\r\ncontent-length: 3\r\n\r\nbig');
      });
    });
    const first = await within(fetchAt(`${up.url}/first`, { headers: new Headers({ host: 'h', 'x-big': big }) }), 3000, 'early answer');
    assert.equal(first.status, 400);
    assert.equal(await first.text(), 'big');
    const second = await within(fetchAt(`${up.url}/second`, { headers: new Headers({ host: 'h' }) }), 2000, 'next request');
    assert.equal(await second.text(), 'fresh');
    assert.equal(up.accepted.length, 2);
    assert.equal(Buffer.concat(received[1] as Buffer[]).toString('latin1'), 'GET /second HTTP/1.1\r\nhost: h\r\n\r\n');
    // The first connection is cut; what it got is a prefix of the first request, nothing else.
    const firstSocket = up.accepted[0] as net.Socket;
    firstSocket.resume();
    await until(() => firstSocket.destroyed, 2000, 'first connection closed');
    const got = Buffer.concat(received[0] as Buffer[]);
    const sent = Buffer.from(`GET /first HTTP/1.1\r\nhost: h\r\nx-big: ${big}\r\n\r\n`, 'latin1');
    assert.ok(got.byteLength > 0 && got.byteLength < sent.byteLength, `first connection got ${got.byteLength} of ${sent.byteLength} bytes`);
    assert.ok(got.equals(sent.subarray(0, got.byteLength)), 'the first connection got bytes that are not the first request');
  });

  test('close() ends pooled connections and exchanges in flight, and refuses new ones', async () => {
    const own = createBunSocketTransport();
    let hangArrived = false;
    const up = await serve((head, socket) => {
      if (head.startsWith('GET /hang')) hangArrived = true;
      else socket.write(ok('idle'));
    });
    const init = () => ({ method: 'GET', headers: new Headers(), body: null, signal: new AbortController().signal });
    const get = async (path: string) => (await own.fetch(`${up.url}${path}`, init())).text();
    // Two at once: two pooled connections, one of which the hanging request then takes.
    assert.deepEqual(await Promise.all([get('/idle'), get('/idle')]), ['idle', 'idle']);
    assert.equal(up.accepted.length, 2);
    const hanging = own.fetch(`${up.url}/hang`, init());
    await until(() => hangArrived, 1000, 'hanging request arrived');
    await own.close();
    await within(assert.rejects(hanging, code(/^ECONNRESET$/)), 1000, 'in-flight exchange');
    await until(() => up.accepted.every((socket) => socket.destroyed), 1000, 'all upstream sockets closed');
    await assert.rejects(own.fetch(`${up.url}/idle`, init()), code(/^ECONNRESET$/));
  });

  test('close() while the connection is still opening: the fetch rejects, no request goes out', async () => {
    const own = createBunSocketTransport();
    let seen = 0;
    const up = await serve((_, socket) => {
      seen++;
      socket.write(ok('too late'));
    });
    const pending = own.fetch(`${up.url}/`, { method: 'GET', headers: new Headers(), body: null, signal: new AbortController().signal });
    await own.close();
    await within(assert.rejects(pending, code(/^ECONNRESET$/)), 1000, 'fetch cut by close()');
    await sleep(50); // a request written on the connection once it opened would be here by now
    assert.equal(seen, 0);
    await until(() => up.accepted.every((socket) => socket.destroyed), 1000, 'the connection opened for it is closed');
  });
  // ---- upgrade ----------------------------------------------------------------------------

  const upgradeInit = (): UpstreamInit => ({
    method: 'GET',
    headers: new Headers({ host: 'h', connection: 'upgrade', upgrade: 'echo' }),
    body: null,
    signal: new AbortController().signal,
  });

  test('upgrade: a 101 hands over the connection as a byte stream, both ways, with half-close', async () => {
    let request = '';
    const afterFin: string[] = [];
    let upstreamEnded = false;
    const up = await listen((socket) => {
      let buf = Buffer.alloc(0);
      let switched = false;
      let finished = false;
      socket.on('end', () => {
        upstreamEnded = true;
      });
      socket.on('data', (chunk: Buffer) => {
        const text = chunk.toString('latin1');
        if (finished) return void afterFin.push(text);
        if (switched) {
          // 'fin' asks the upstream to end its side (half-close); it keeps reading ours.
          if (text === 'fin') {
            finished = true;
            socket.end('bye');
          } else socket.write(text.toUpperCase());
          return;
        }
        buf = Buffer.concat([buf, chunk]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        request = buf.toString('latin1', 0, end);
        switched = true;
        // The 101 and the first bytes of the new protocol in one segment.
        socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello');
      });
    });
    const result = await within(transport.upgrade(`${up.url}/ws`, upgradeInit()), 2000, 'upgrade');
    assert.equal(result.switched, true);
    if (!result.switched) return;
    // Sent as given (Headers iterate sorted): Connection and Upgrade included.
    assert.equal(request, 'GET /ws HTTP/1.1\r\nconnection: upgrade\r\nhost: h\r\nupgrade: echo');
    // The 101's fields as received, hop-by-hop included.
    assert.equal(result.headers.get('upgrade'), 'echo');
    assert.equal(result.headers.get('connection'), 'Upgrade');
    const reader = result.stream.readable.getReader();
    const writer = result.stream.writable.getWriter();
    const read = async () => {
      const { value, done } = await within(reader.read(), 2000, 'tunnel read');
      return done ? null : Buffer.from(value).toString('latin1');
    };
    assert.equal(await read(), 'hello');
    await writer.write(new TextEncoder().encode('abc'));
    assert.equal(await read(), 'ABC');
    // The upstream ends its side: our readable ends, our writable still reaches it.
    await writer.write(new TextEncoder().encode('fin'));
    let rest = '';
    for (let part = await read(); part !== null; part = await read()) rest += part;
    assert.equal(rest, 'bye');
    await writer.write(new TextEncoder().encode('still here'));
    await until(() => afterFin.join('') === 'still here', 2000, "bytes written after the upstream's FIN arrive");
    await writer.close();
    await until(() => upstreamEnded && up.accepted[0]?.destroyed === true, 2000, 'the connection closed');
    // The tunnelled connection never returns to the pool.
    const next = await serve((_, socket) => socket.write(ok('plain')));
    assert.equal(await (await fetchAt(`${next.url}/`)).text(), 'plain');
  });

  for (const [status, reason] of [
    [426, 'Upgrade Required'],
    [403, 'Forbidden'],
  ] as const) {
    test(`upgrade: a ${status} answer resolves switched:false with an ordinary response; the connection is pooled`, async () => {
      const up = await serve((head, socket) => {
        if (head.includes('upgrade: echo'))
          socket.write(`HTTP/1.1 ${status} ${reason}\r\nupgrade: other\r\nconnection: upgrade\r\ncontent-length: 4\r\n\r\nnope`);
        else socket.write(ok('after'));
      });
      const result = await within(transport.upgrade(`${up.url}/ws`, upgradeInit()), 2000, 'upgrade');
      assert.equal(result.switched, false);
      if (result.switched) return;
      assert.equal(result.response.status, status);
      assert.equal(result.response.statusText, reason);
      assert.equal(result.response.headers.get('upgrade'), null, 'hop-by-hop fields removed as for fetch');
      assert.equal(await result.response.text(), 'nope');
      assert.equal(await (await fetchAt(`${up.url}/`)).text(), 'after');
      assert.equal(up.accepted.length, 1);
    });
  }

  test('upgrade: a request body is refused; fetch still rejects a 101', async () => {
    await assert.rejects(transport.upgrade('http://127.0.0.1:9/', { ...upgradeInit(), body: streamOf(['x']) }), TypeError);
    const up = await serve((_, socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: echo\r\n\r\n'));
    await within(assert.rejects(fetchAt(`${up.url}/`, upgradeInit()), code(/^UPSTREAM_INVALID_RESPONSE$/)), 2000, '101 on fetch');
  });
});
