// The transport contract (types.ts) as cases written once, registered against any
// implementation by transport.test.ts, against real node:net / node:http upstreams on
// 127.0.0.1:0: exact requests, filtered responses, body rules, streaming, failures, upgrades;
// and, for transports that serve https:, against node:https upstreams: the route's TLS settings.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { after, before, test } from 'node:test';
import type tls from 'node:tls';
import { gzipSync } from 'node:zlib';
import { createTlsFixtures, type TlsFixtures } from '../../tests/support/tls-fixtures.ts';
import { gate, sleep, until, within } from '../../tests/support/wait.ts';
import { classifyTransportError, errorCode, statusFor } from '../proxy/errors.ts';
import { detectRuntime } from '../server/runtime.ts';
import { type Transport, type UpgradeResult, UpstreamError, type UpstreamInit, type UpstreamTlsOptions } from './types.ts';

interface Upstream {
  readonly port: number;
  /** Every connection accepted so far. */
  readonly sockets: net.Socket[];
  close(): Promise<void>;
}

/** A raw upstream: `onHead` gets each request head (text) with its socket and the bytes after it. */
async function rawUpstream(onHead: (head: string, socket: net.Socket, rest: Buffer) => void): Promise<Upstream> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {}); // resets are part of several cases
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.toString('latin1', 0, end);
        buf = buf.subarray(end + 4);
        if (/^upgrade:/im.test(head)) {
          socket.off('data', onData);
          onHead(head, socket, buf);
          return;
        }
        onHead(head, socket, Buffer.alloc(0));
      }
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function httpUpstream(handler: http.RequestListener): Promise<Upstream & { server: http.Server }> {
  const sockets: net.Socket[] = [];
  const server = http.createServer(handler);
  server.on('connection', (s: net.Socket) => sockets.push(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const init = (method: string, fields: [string, string][], options: { body?: ReadableStream<Uint8Array> | null; signal?: AbortSignal } = {}): UpstreamInit => ({
  method,
  headers: new Headers(fields),
  body: options.body ?? null,
  signal: options.signal ?? new AbortController().signal,
});
const GET = (host = 'example.test') => init('GET', [['host', host]]);
const answer = (socket: net.Socket, text: string) => void socket.write(text);
const ok = (body = 'ok', extra = '') => `HTTP/1.1 200 OK\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
const fieldOf = (head: string, name: string) =>
  head
    .split('\r\n')
    .slice(1)
    .filter((line) => line.toLowerCase().startsWith(`${name}:`))
    .map((line) => line.slice(name.length + 1).trim());

/** Reads `n` bytes (or to the end) from a byte stream reader. */
async function readBytes(reader: ReadableStreamDefaultReader<Uint8Array>, n: number): Promise<string> {
  let out = '';
  while (out.length < n) {
    const { value, done } = await reader.read();
    if (done) break;
    out += Buffer.from(value).toString('latin1');
  }
  return out;
}

/** Sends an upgrade request for `protocol` to `/tunnel` on `port`, the way a WebSocket tunnel will. */
function askUpgrade(t: Transport, port: number, protocol: string): Promise<UpgradeResult> {
  return t.upgrade(
    `http://127.0.0.1:${port}/tunnel`,
    init('GET', [
      ['host', 'a'],
      ['connection', 'upgrade'],
      ['upgrade', protocol],
    ]),
  );
}

export function transportCases(name: string, create: () => Transport): void {
  /** Runs `body` with a fresh transport and upstream, and closes both whatever happens. */
  async function using<U extends Upstream>(upstream: U, body: (t: Transport, up: U) => Promise<void>): Promise<void> {
    const transport = create();
    try {
      await body(transport, upstream);
    } finally {
      await transport.close();
      await upstream.close();
    }
  }

  test(`${name}: method and target byte for byte, Host as given, nothing invented`, async () => {
    let head = '';
    await using(
      await rawUpstream((h, s) => {
        head = h;
        answer(s, ok());
      }),
      async (t, up) => {
        const res = await t.fetch(
          `http://127.0.0.1:${up.port}//a%2Fb/../c?x`,
          init('BREW', [
            ['host', 'Example.TEST:8080'],
            ['x-kept', 'k'],
          ]),
        );
        assert.equal(await res.text(), 'ok');
        assert.equal(head.split('\r\n')[0], 'BREW //a%2Fb/../c?x HTTP/1.1');
        assert.deepEqual(fieldOf(head, 'host'), ['Example.TEST:8080']);
        assert.deepEqual(fieldOf(head, 'x-kept'), ['k']);
        for (const invented of ['user-agent', 'accept', 'accept-encoding', 'accept-language'])
          assert.deepEqual(fieldOf(head, invented), [], `no ${invented} added`);
      },
    );
  });

  test(`${name}: a gzip body passes compressed, Content-Encoding kept`, async () => {
    const gz = gzipSync('hello hello hello');
    await using(
      await httpUpstream((_req, res) => res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': gz.byteLength }).end(gz)),
      async (t, up) => {
        const res = await t.fetch(
          `http://127.0.0.1:${up.port}/gz`,
          init('GET', [
            ['host', 'a'],
            ['accept-encoding', 'gzip'],
          ]),
        );
        assert.equal(res.headers.get('content-encoding'), 'gzip');
        assert.deepEqual(Buffer.from(await res.arrayBuffer()), gz);
      },
    );
  });

  test(`${name}: hop-by-hop response fields are removed, Connection-named ones too; Set-Cookie stays separate`, async () => {
    await using(
      await rawUpstream((_h, s) =>
        answer(
          s,
          'HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Private\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nX-Private: p\r\nX-Public: y\r\n' +
            'Set-Cookie: a=1; Path=/\r\nSet-Cookie: b=2\r\nTrailer: X-T\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhop\r\n0\r\n\r\n',
        ),
      ),
      async (t, up) => {
        const res = await t.fetch(`http://127.0.0.1:${up.port}/hop`, GET());
        for (const gone of ['connection', 'keep-alive', 'proxy-connection', 'x-private', 'trailer', 'transfer-encoding'])
          assert.equal(res.headers.get(gone), null, `${gone} removed`);
        assert.equal(res.headers.get('x-public'), 'y');
        assert.deepEqual(res.headers.getSetCookie(), ['a=1; Path=/', 'b=2']);
        assert.equal(await res.text(), 'hop');
      },
    );
  });

  test(`${name}: HEAD, 204, 304 and 205 have a null body; 204 no Content-Length, 205 at most 0`, async () => {
    await using(
      await rawUpstream((h, s) => {
        const target = h.split(' ')[1];
        if (target === '/head') answer(s, 'HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n');
        else if (target === '/204') answer(s, 'HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n');
        else if (target === '/304') answer(s, 'HTTP/1.1 304 Not Modified\r\netag: "x"\r\n\r\n');
        else answer(s, 'HTTP/1.1 205 Reset Content\r\ncontent-length: 0\r\n\r\n');
      }),
      async (t, up) => {
        const head = await t.fetch(`http://127.0.0.1:${up.port}/head`, init('HEAD', [['host', 'a']]));
        assert.equal(head.body, null);
        assert.equal(head.headers.get('content-length'), '1234', 'HEAD keeps the length a GET would get');
        const noContent = await t.fetch(`http://127.0.0.1:${up.port}/204`, GET());
        assert.equal(noContent.status, 204);
        assert.equal(noContent.body, null);
        assert.equal(noContent.headers.get('content-length'), null);
        const notModified = await t.fetch(`http://127.0.0.1:${up.port}/304`, GET());
        assert.equal(notModified.status, 304);
        assert.equal(notModified.body, null);
        const reset = await t.fetch(`http://127.0.0.1:${up.port}/205`, GET());
        assert.equal(reset.status, 205);
        assert.equal(reset.body, null);
        assert.ok([null, '0'].includes(reset.headers.get('content-length')), `205 content-length ${reset.headers.get('content-length')}`);
      },
    );
  });

  test(`${name}: 1xx answers are skipped, redirects are not followed`, async () => {
    await using(
      await rawUpstream((h, s) => {
        if (h.startsWith('GET /hints')) answer(s, `HTTP/1.1 103 Early Hints\r\nlink: </s.css>\r\n\r\n${ok('final')}`);
        else answer(s, 'HTTP/1.1 302 Found\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n');
      }),
      async (t, up) => {
        const hints = await t.fetch(`http://127.0.0.1:${up.port}/hints`, GET());
        assert.equal(hints.status, 200);
        assert.equal(await hints.text(), 'final');
        const redirect = await t.fetch(`http://127.0.0.1:${up.port}/redirect`, GET());
        assert.equal(redirect.status, 302);
        assert.equal(redirect.headers.get('location'), '/elsewhere');
        await redirect.arrayBuffer();
      },
    );
  });

  test(`${name}: a streamed request body goes chunked without a length, as declared with one`, async () => {
    const seen: { te?: string; cl?: string; body: string }[] = [];
    await using(
      await httpUpstream((req, res) => {
        const parts: Buffer[] = [];
        req.on('data', (c: Buffer) => parts.push(c));
        req.on('end', () => {
          seen.push({ te: req.headers['transfer-encoding'], cl: req.headers['content-length'], body: Buffer.concat(parts).toString() });
          res.end('done');
        });
      }),
      async (t, up) => {
        const stream = () => {
          const parts = ['abc', 'defg', 'hi'];
          return new ReadableStream<Uint8Array>({
            async pull(c) {
              await sleep(5); // the body really arrives over time
              const next = parts.shift();
              if (next === undefined) c.close();
              else c.enqueue(new TextEncoder().encode(next));
            },
          });
        };
        const chunked = await t.fetch(`http://127.0.0.1:${up.port}/up`, init('POST', [['host', 'a']], { body: stream() }));
        assert.equal(await chunked.text(), 'done');
        const sized = await t.fetch(
          `http://127.0.0.1:${up.port}/up`,
          init(
            'PUT',
            [
              ['host', 'a'],
              ['content-length', '9'],
            ],
            { body: stream() },
          ),
        );
        assert.equal(await sized.text(), 'done');
        assert.deepEqual(seen, [
          { te: 'chunked', cl: undefined, body: 'abcdefghi' },
          { te: undefined, cl: '9', body: 'abcdefghi' },
        ]);
      },
    );
  });

  test(`${name}: a response body nobody reads is not buffered whole (backpressure)`, async () => {
    const TOTAL = 32 * 1024 * 1024;
    let written = 0;
    const chunk = Buffer.alloc(64 * 1024, 120);
    await using(
      await httpUpstream((_req, res) => {
        res.writeHead(200, { 'content-length': TOTAL });
        const pump = () => {
          while (written < TOTAL) {
            written += chunk.byteLength;
            if (!res.write(chunk)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
      }),
      async (t, up) => {
        const res = await t.fetch(`http://127.0.0.1:${up.port}/big`, GET());
        // Let the upstream write until the buffers in between are full and it stalls.
        let last = -1;
        for (let i = 0; i < 100 && written !== last; i++) {
          last = written;
          await sleep(50);
        }
        assert.ok(written < TOTAL / 2, `the upstream stalls (wrote ${written} of ${TOTAL} bytes)`);
        const reader = (res.body as ReadableStream<Uint8Array>).getReader();
        assert.ok((await reader.read()).value !== undefined, 'reading resumes the flow');
        await reader.cancel();
      },
    );
  });

  test(`${name}: an abort cancels the upstream exchange and rejects with the reason`, async () => {
    const arrived = gate();
    await using(
      await rawUpstream(() => arrived.open()), // reads, never answers
      async (t, up) => {
        const controller = new AbortController();
        const pending = t.fetch(`http://127.0.0.1:${up.port}/slow`, init('GET', [['host', 'a']], { signal: controller.signal }));
        pending.catch(() => {}); // awaited below
        await within(arrived.wait, 2000, 'the request reaches the upstream');
        const reason = new Error('client gone');
        controller.abort(reason);
        await assert.rejects(within(pending, 2000, 'abort rejects'), (error) => error === reason);
        await until(() => up.sockets.every((s) => s.destroyed || s.readableEnded), 2000, 'the upstream connection is closed');
      },
    );
  });

  test(`${name}: connection refused rejects with an UpstreamError, connectFailed`, async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const transport = create();
    try {
      await assert.rejects(transport.fetch(`http://127.0.0.1:${port}/`, GET()), (error) => {
        assert.ok(error instanceof UpstreamError, `an UpstreamError, got ${error}`);
        assert.equal(error.code, 'ECONNREFUSED');
        assert.equal(error.facts.connectFailed, true);
        assert.equal(error.facts.responseStarted, false);
        return true;
      });
    } finally {
      await transport.close();
    }
  });

  test(`${name}: an upstream reset before the head rejects with the facts`, async () => {
    await using(await rawUpstream((_h, s) => s.resetAndDestroy()), async (t, up) => {
      await assert.rejects(t.fetch(`http://127.0.0.1:${up.port}/reset`, GET()), (error) => {
        assert.ok(error instanceof UpstreamError, `an UpstreamError, got ${error}`);
        assert.equal(error.facts.connectFailed, false, 'the request went out');
        assert.equal(error.facts.responseStarted, false);
        assert.ok((error.code ?? errorCode(error) ?? '').length > 0, 'a code names the reset');
        return true;
      });
    });
  });

  test(`${name}: a body that breaks mid-way errors the stream, never ends short`, async () => {
    await using(
      await rawUpstream((_h, s) => {
        s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${1024 * 1024}\r\n\r\n`);
        s.write(Buffer.alloc(200 * 1024, 97), () => setTimeout(() => s.destroy(), 20));
      }),
      async (t, up) => {
        const res = await t.fetch(`http://127.0.0.1:${up.port}/broken`, GET());
        await assert.rejects(within(res.arrayBuffer(), 3000, 'the body settles'));
      },
    );
  });

  test(`${name}: keep-alive: sequential requests reuse one upstream connection`, async () => {
    await using(await rawUpstream((_h, s) => answer(s, ok())), async (t, up) => {
      for (let i = 0; i < 3; i++) {
        assert.equal(await (await t.fetch(`http://127.0.0.1:${up.port}/${i}`, GET())).text(), 'ok');
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(up.sockets.length, 1);
    });
  });

  test(`${name}: upgrade: a 101 hands over the connection, bytes flow both ways`, async () => {
    let head = '';
    let ended = false;
    await using(
      await rawUpstream((h, s, rest) => {
        head = h;
        s.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello');
        if (rest.byteLength > 0) s.write(rest);
        s.on('data', (c: Buffer) => s.write(c));
        s.on('end', () => {
          ended = true;
          s.end();
        });
      }),
      async (t, up) => {
        const result = await askUpgrade(t, up.port, 'echo');
        assert.equal(result.switched, true);
        if (!result.switched) return;
        assert.equal(result.headers.get('upgrade'), 'echo');
        assert.match(head, /^GET \/tunnel HTTP\/1\.1\r\n/);
        assert.deepEqual(fieldOf(head, 'upgrade'), ['echo']);
        assert.match(fieldOf(head, 'connection').join(','), /upgrade/i);
        const reader = result.stream.readable.getReader();
        assert.equal(await within(readBytes(reader, 5), 2000, 'bytes after the 101'), 'hello');
        const writer = result.stream.writable.getWriter();
        await writer.write(new TextEncoder().encode('ping'));
        assert.equal(await within(readBytes(reader, 4), 2000, 'echo'), 'ping');
        await writer.close();
        await until(() => ended, 2000, 'the upstream sees our end');
        assert.equal((await within(reader.read(), 2000, 'the upstream end')).done, true);
      },
    );
  });

  test(`${name}: upgrade: any other answer comes back as an ordinary response`, async () => {
    await using(await rawUpstream((_h, s) => answer(s, 'HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno')), async (t, up) => {
      const result = await askUpgrade(t, up.port, 'websocket');
      assert.equal(result.switched, false);
      if (result.switched) return;
      assert.equal(result.response.status, 403);
      assert.equal(result.response.headers.get('connection'), null);
      assert.equal(await result.response.text(), 'no');
    });
  });
}

/** What an https upstream saw: per request, the SNI and whether the client's certificate verified. */
interface HttpsUpstream extends Upstream {
  /** The SNI of each request's connection (`false` or null when none was sent, by runtime). */
  readonly servernames: unknown[];
  /** Per request: the client showed a certificate the upstream verified. */
  readonly clientAuthorized: boolean[];
}

/** A node:https upstream on 127.0.0.1:0 that answers `ok` to every request. */
async function httpsUpstream(options: https.ServerOptions): Promise<HttpsUpstream> {
  const sockets: net.Socket[] = [];
  const servernames: unknown[] = [];
  const clientAuthorized: boolean[] = [];
  const server = https.createServer(options, (req, res) => {
    const socket = req.socket as tls.TLSSocket;
    servernames.push(socket.servername);
    clientAuthorized.push(socket.authorized);
    res.end('ok');
  });
  // Only connections whose handshake succeeded: a pooled connection is one of these.
  server.on('secureConnection', (s: tls.TLSSocket) => sockets.push(s));
  // Failed handshakes are what several cases are about.
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    servernames,
    clientAuthorized,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * The route's upstream TLS settings (`init.tls`) against real node:https upstreams with the
 * certificates of tests/support/tls-fixtures.ts: trust, names and SNI, client certificates,
 * `insecure`, the codes a failed verification rejects with, one pool per settings object.
 */
export function tlsTransportCases(name: string, create: () => Transport): void {
  let fx: TlsFixtures;
  const pem = (file: string) => readFileSync(fx.path(file), 'utf8');
  before(() => {
    fx = createTlsFixtures();
  });
  after(() => fx.cleanup());

  const withTls = (settings: UpstreamTlsOptions | undefined, host = 'example.test'): UpstreamInit =>
    settings === undefined ? GET(host) : { ...GET(host), tls: settings };

  /** Runs `body` with a fresh transport and https upstream, and closes both whatever happens. */
  async function using(options: () => https.ServerOptions, body: (t: Transport, up: HttpsUpstream, url: string) => Promise<void>): Promise<void> {
    const upstream = await httpsUpstream(options());
    const transport = create();
    try {
      await body(transport, upstream, `https://127.0.0.1:${upstream.port}/`);
    } finally {
      await transport.close();
      await upstream.close();
    }
  }

  /** Asserts `pending` rejects as a failed verification with `code`, before any request went out. */
  async function rejectsVerification(pending: Promise<Response>, code: string, up: HttpsUpstream, origin: string): Promise<void> {
    await assert.rejects(within(pending, 5000, `the ${code} rejection`), (error) => {
      assert.ok(error instanceof UpstreamError, `an UpstreamError, got ${error}`);
      assert.equal(error.code, code);
      assert.equal(error.facts.connectFailed, true);
      assert.equal(error.facts.responseStarted, false);
      // What the proxy makes of it: a 502 that says why, never retried.
      const failure = classifyTransportError(error, origin);
      assert.equal(failure.kind, 'tls');
      assert.equal(failure.retryable, false);
      assert.equal(failure.staleConnection, false);
      assert.equal(statusFor(failure.kind), 502);
      assert.match(failure.message, new RegExp(`^upstream ${origin.replaceAll('.', '\\.')} failed TLS verification: .+ \\(${code}\\)$`));
      return true;
    });
    assert.equal(up.servernames.length, 0, 'no request reached the upstream');
  }

  test(`${name}: upstream TLS: a private CA trusted through \`ca\`: 200, the URL's IP is the name checked, never the Host`, async () => {
    await using(
      () => ({ cert: pem('ip.pem'), key: pem('ip.key') }),
      async (t, up, url) => {
        // The certificate names 127.0.0.1 only: verified against the Host, this would fail.
        const res = await t.fetch(url, withTls({ ca: pem('root.pem'), insecure: false }, 'evil.test'));
        assert.equal(res.status, 200);
        assert.equal(await res.text(), 'ok');
        assert.equal(up.servernames.length, 1);
        assert.notEqual(up.servernames[0], 'evil.test', 'the client Host is not sent as SNI');
      },
    );
  });

  test(`${name}: upstream TLS: a certificate that names only the client's Host fails verification`, async () => {
    await using(
      () => ({ cert: pem('a-chain.pem'), key: pem('a.key') }),
      async (t, up, url) => {
        await rejectsVerification(
          t.fetch(url, withTls({ ca: pem('root.pem'), insecure: false }, 'a.test')),
          'ERR_TLS_CERT_ALTNAME_INVALID',
          up,
          url.slice(0, -1),
        );
      },
    );
  });

  test(`${name}: upstream TLS: serverName is the SNI and the name verified, instead of the URL's host`, async () => {
    await using(
      () => ({ cert: pem('a-chain.pem'), key: pem('a.key') }),
      async (t, up, url) => {
        const res = await t.fetch(url, withTls({ ca: pem('root.pem'), serverName: 'x.a.test', insecure: false }, 'other.test'));
        assert.equal(res.status, 200);
        await res.arrayBuffer();
        assert.deepEqual(up.servernames, ['x.a.test']);
        // The same certificate, a name it does not carry: the message names the name checked.
        const wrong = t.fetch(url, withTls({ ca: pem('root.pem'), serverName: 'b.test', insecure: false }));
        await assert.rejects(wrong, (error) => {
          assert.equal((error as UpstreamError).code, 'ERR_TLS_CERT_ALTNAME_INVALID');
          assert.match(classifyTransportError(error, 'https://u').message, /: certificate does not name the host b\.test \(ERR_TLS_CERT_ALTNAME_INVALID\)$/);
          return true;
        });
        assert.equal(up.servernames.length, 1, 'the refused one never reached the upstream');
      },
    );
  });

  // [what, server certificate chain, its key, TLS settings (none: the system roots), code];
  // settings are functions because the fixtures exist only once the suite has started.
  const failures: [string, string[], string, () => UpstreamTlsOptions | undefined, string][] = [
    ['the system roots (no settings), a chain of one from a private CA', ['ip.pem'], 'ip.key', () => undefined, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    [
      'the system roots (no `ca`), leaf and intermediate from a private CA',
      ['a-chain.pem'],
      'a.key',
      () => ({ serverName: 'a.test', insecure: false }),
      'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
    ],
    [
      'the system roots, a private root sent in the chain',
      ['a-chain.pem', 'root.pem'],
      'a.key',
      () => ({ serverName: 'a.test', insecure: false }),
      'SELF_SIGNED_CERT_IN_CHAIN',
    ],
    ['a self-signed leaf', ['self.pem'], 'self.key', () => ({ serverName: 'self.test', insecure: false }), 'DEPTH_ZERO_SELF_SIGNED_CERT'],
    [
      'a trusted certificate for other names',
      ['a-chain.pem'],
      'a.key',
      () => ({ ca: pem('root.pem'), serverName: 'a.test.example', insecure: false }),
      'ERR_TLS_CERT_ALTNAME_INVALID',
    ],
  ];
  for (const [what, chain, key, settings, code] of failures) {
    test(`${name}: upstream TLS: ${what} rejects with ${code}, connectFailed, a 502 that says why`, async () => {
      await using(
        () => ({ cert: chain.map(pem).join(''), key: pem(key) }),
        async (t, up, url) => {
          await rejectsVerification(t.fetch(url, withTls(settings())), code, up, url.slice(0, -1));
        },
      );
    });
  }

  // Deno 2.9's node:tls reports an expired certificate as UNABLE_TO_VERIFY_LEAF_SIGNATURE, and no
  // certificate is left to read once its handshake failed, so the transport cannot correct it.
  const expiredSkip = detectRuntime() === 'deno' ? 'Deno 2.9 node:tls says UNABLE_TO_VERIFY_LEAF_SIGNATURE for an expired certificate (issue 7)' : false;
  test(`${name}: upstream TLS: an expired certificate rejects with CERT_HAS_EXPIRED`, { skip: expiredSkip }, async () => {
    await using(
      () => ({ cert: pem('old.pem'), key: pem('old.key') }),
      async (t, up, url) => {
        await rejectsVerification(
          t.fetch(url, withTls({ ca: pem('root.pem'), serverName: 'old.test', insecure: false })),
          'CERT_HAS_EXPIRED',
          up,
          url.slice(0, -1),
        );
      },
    );
  });

  test(`${name}: upstream TLS: insecure accepts an untrusted certificate for another name`, async () => {
    await using(
      () => ({ cert: pem('self.pem'), key: pem('self.key') }),
      async (t, _up, url) => {
        const res = await t.fetch(url, withTls({ insecure: true }));
        assert.equal(res.status, 200);
        assert.equal(await res.text(), 'ok');
      },
    );
  });

  test(`${name}: upstream TLS: cert and key are shown to an upstream that requires them; without, it refuses`, async () => {
    await using(
      () => ({ cert: pem('ip.pem'), key: pem('ip.key'), ca: pem('root.pem'), requestCert: true, rejectUnauthorized: true }),
      async (t, up, url) => {
        const res = await t.fetch(url, withTls({ ca: pem('root.pem'), cert: pem('client.pem'), key: pem('client.key'), insecure: false }));
        assert.equal(res.status, 200);
        assert.equal(await res.text(), 'ok');
        assert.deepEqual(up.clientAuthorized, [true], 'the upstream verified our certificate');
        // TLS 1.3: the upstream checks the client's certificate after the client's handshake is
        // done, so this one may fail as the request goes out: any UpstreamError, none answered.
        const without = t.fetch(url, withTls({ ca: pem('root.pem'), insecure: false }));
        await assert.rejects(within(without, 5000, 'the refusal'), (error) => error instanceof UpstreamError);
        assert.equal(up.clientAuthorized.length, 1, 'no request without a certificate was answered');
      },
    );
  });

  test(`${name}: upstream TLS: each settings object has its own pool, even with equal contents`, async () => {
    await using(
      () => ({ cert: pem('ip.pem'), key: pem('ip.key') }),
      async (t, up, url) => {
        const first: UpstreamTlsOptions = { ca: pem('root.pem'), insecure: false };
        const second: UpstreamTlsOptions = { ca: pem('root.pem'), insecure: false };
        const send = async (settings: UpstreamTlsOptions) => {
          assert.equal(await (await t.fetch(url, withTls(settings))).text(), 'ok');
          await new Promise((resolve) => setImmediate(resolve));
        };
        await send(first);
        await send(first);
        assert.equal(up.sockets.length, 1, 'one settings object: one pooled connection, reused');
        await send(second);
        assert.equal(up.sockets.length, 2, 'another settings object: a connection of its own');
        await send(first);
        await send(second);
        assert.equal(up.sockets.length, 2, 'each pool keeps its own connection');
      },
    );
  });

  test(`${name}: upstream TLS: close() closes the connections of every settings object`, async () => {
    const upstream = await httpsUpstream({ cert: pem('ip.pem'), key: pem('ip.key') });
    const transport = create();
    try {
      const url = `https://127.0.0.1:${upstream.port}/`;
      for (const settings of [{ ca: pem('root.pem'), insecure: false }, { insecure: true }])
        await (await transport.fetch(url, withTls(settings))).arrayBuffer();
      assert.equal(upstream.sockets.length, 2);
      await transport.close();
      await until(() => upstream.sockets.every((s) => s.destroyed || s.readableEnded), 2000, 'every pooled connection is closed');
    } finally {
      await transport.close();
      await upstream.close();
    }
  });
}
