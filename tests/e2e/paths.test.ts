// Paths and rules (issue 10, docs/paths.md), black-box on each runtime with raw sockets (fetch
// clients normalise paths): on a host where a path decides the route, every bypass family is
// refused with 400 and reaches no upstream; accepted targets reach exactly one upstream, in
// canonical form, and every modelled upstream decoder reads them under the prefix matched.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { DECODERS, prefixOfDecoded } from '../support/upstream-decoders.ts';
import { type ProxyHandle, type RawResponse, RUNTIMES, rawRequest, startProxy } from './harness.ts';

/** A raw TCP upstream that records each request line's target byte for byte and answers its name. */
interface Recorder {
  readonly name: string;
  readonly port: number;
  readonly targets: string[];
  close(): Promise<void>;
}

async function startRecorder(name: string): Promise<Recorder> {
  const targets: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // the proxy may drop an idle pooled connection
    let buffered = '';
    socket.on('data', (d) => {
      buffered += d.toString('latin1');
      // Bodiless requests only: each head ends at a blank line.
      for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
        const line = buffered.slice(0, buffered.indexOf('\r\n'));
        buffered = buffered.slice(end + 4);
        targets.push(line.split(' ')[1] ?? '');
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${name.length}\r\n\r\n${name}`);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    name,
    port: (server.address() as net.AddressInfo).port,
    targets,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** The body of a raw response, chunked framing removed (Bun and Deno chunk the proxy's own answers). */
function bodyOf(r: RawResponse): string {
  const text = r.body.toString('latin1');
  if (!r.headers.some(([name, value]) => name === 'transfer-encoding' && /chunked/i.test(value))) return text;
  let out = '';
  for (let at = 0; ; ) {
    const eol = text.indexOf('\r\n', at);
    const size = Number.parseInt(text.slice(at, eol), 16);
    if (!(size > 0)) return out;
    out += text.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}

const HOST = 'paths.test';
/** The route prefixes of HOST, for reading decoded paths (the `/strip` route strips, so it is left out there). */
const PREFIXES = ['/', '/public', '/admin'];

// target -> [upstream, the target it receives]; every one on HOST.
const ACCEPTED: ReadonlyArray<readonly [string, string, string]> = [
  ['/public/x', 'A', '/public/x'],
  ['/public', 'A', '/public'],
  ['/public/', 'A', '/public/'],
  ['/publicx', 'B', '/publicx'],
  ['/', 'B', '/'],
  ['/admin/keys?id=1', 'C', '/admin/keys?id=1'],
  // Case: path letters fold for matching and are forwarded as sent; escapes' hex either case.
  ['/PUBLIC/x', 'A', '/PUBLIC/x'],
  ['/Admin', 'C', '/Admin'],
  ['/%61dmin/x', 'C', '/admin/x'],
  ['/%41DMIN/x', 'C', '/ADMIN/x'],
  ['/a%7eb%7E', 'B', '/a~b~'],
  ['/caf%c3%a9', 'B', '/caf%C3%A9'],
  // Raw dot segments: resolved, and forwarded resolved, so upstream and rule read one path.
  ['/public/../admin', 'C', '/admin'],
  ['/admin/../public/x', 'A', '/public/x'],
  ['/../../admin/./x', 'C', '/admin/x'],
  ['/admin/..', 'B', '/'],
  // The query is never touched, whatever it holds.
  ['/public/a%20b?q=%2f..%5c;%00&next=//evil.test/', 'A', '/public/a%20b?q=%2f..%5c;%00&next=//evil.test/'],
  ['/public?%2e%2e', 'A', '/public?%2e%2e'],
  ['/100%25', 'B', '/100%25'],
  // stripPrefix cuts the canonical form: nothing left to climb with.
  ['/strip/y?q', 'S', '/y?q'],
  ['/STRIP/y', 'S', '/y'],
  ['/strip', 'S', '/'],
  ['/strip/../strip/z', 'S', '/z'],
  ['/strip/x/../../admin', 'C', '/admin'],
];

// target -> the reason in the 400's body; no upstream sees anything.
const REFUSED: ReadonlyArray<readonly [string, string]> = [
  ['/public%2fadmin', 'encoded slash in path'],
  ['/public%2Fadmin', 'encoded slash in path'],
  ['/admin%2f..%2f..%2fpublic', 'encoded slash in path'],
  ['/public%5cadmin', 'encoded backslash in path'],
  ['/public%5C..%5Cadmin', 'encoded backslash in path'],
  ['/public\\..\\admin', 'backslash in path'],
  ['/admin%00', 'encoded NUL in path'],
  ['/public/x%00.png', 'encoded NUL in path'],
  ['/admin%0d%0aX:y', 'encoded control character in path'],
  ['/public/%2e%2e/admin', 'encoded dot segment in path'],
  ['/public/%2E%2E/admin', 'encoded dot segment in path'],
  ['/public/.%2e/admin', 'encoded dot segment in path'],
  ['/public/%2E./admin', 'encoded dot segment in path'],
  ['/public%252fadmin', 'double-encoded character in path'],
  ['/public%252Fadmin', 'double-encoded character in path'],
  ['/public/%252e%252e/admin', 'double-encoded character in path'],
  ['/public%255cadmin', 'double-encoded character in path'],
  ['/admin%2500', 'double-encoded character in path'],
  ['/public%c0%afadmin', 'invalid UTF-8 in path escape'],
  ['/public/%%32%65%%32%65/admin', 'malformed percent-escape in path'],
  ['/public/..;/admin', 'path parameter (;) in path'],
  ['/admin;jsessionid=1', 'path parameter (;) in path'],
  ['//admin', 'empty segment in path'],
  ['//evil.test/x', 'empty segment in path'],
  ['/public//admin', 'empty segment in path'],
  ['/admin#x', 'fragment in request target'],
  ['/strip/..%2f..%2fadmin', 'encoded slash in path'],
];

// On a host where no path decides, the proxy has no rule to protect: targets go as sent.
const PLAIN_HOST = 'plain.test';
const AS_SENT = ['/public%2fadmin', '//evil.test/x', '/a/../b', '/a%2e%2e/%2e%2e/b', '/x;y', '/a%00'];

for (const runtime of RUNTIMES) {
  describe(`paths on ${runtime}`, () => {
    const ups: Record<string, Recorder> = {};
    let proxy: ProxyHandle;
    before(async () => {
      for (const name of ['A', 'B', 'C', 'S', 'P']) ups[name] = await startRecorder(name);
      const origin = (name: string) => `http://127.0.0.1:${ups[name]?.port}`;
      proxy = await startProxy(runtime, {
        routes: [
          { host: HOST, path: '/public', upstream: origin('A') },
          { host: HOST, upstream: origin('B') },
          { host: HOST, path: '/admin', upstream: origin('C') },
          { host: HOST, path: '/strip', stripPrefix: true, upstream: origin('S') },
          { host: PLAIN_HOST, upstream: origin('P') },
        ],
      });
    });
    after(async () => {
      await proxy?.stop();
      for (const up of Object.values(ups)) await up.close();
    });

    /** Sends one request line; returns the response and what each upstream received meanwhile. */
    async function exchange(requestTarget: string, host: string) {
      const before = Object.fromEntries(Object.entries(ups).map(([name, up]) => [name, up.targets.length]));
      const r = await rawRequest(proxy.port, `GET ${requestTarget} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      const seen: string[] = [];
      for (const [name, up] of Object.entries(ups)) for (const t of up.targets.slice(before[name])) seen.push(`${name} ${t}`);
      return { status: r.status, body: bodyOf(r), seen };
    }

    test('accepted targets reach exactly the matched upstream, in canonical form', async () => {
      for (const [target, upstream, received] of ACCEPTED) {
        const r = await exchange(target, HOST);
        assert.equal(r.status, 200, `${target}: ${r.body}`);
        assert.equal(r.body, upstream, target);
        assert.deepEqual(r.seen, [`${upstream} ${received}`], target);
      }
    });

    test('as upstream frameworks decode them, accepted targets stay under the prefix the proxy matched', async () => {
      const prefixOf: Record<string, string> = { A: '/public', B: '/', C: '/admin' };
      let checked = 0;
      for (const [target, upstream, received] of ACCEPTED) {
        const matched = prefixOf[upstream];
        if (matched === undefined) continue; // the /strip route's upstream sees its own paths
        for (const [name, decode] of Object.entries(DECODERS)) {
          const decoded = decode(received);
          if (decoded === null) continue;
          assert.equal(prefixOfDecoded(PREFIXES, decoded), matched, `${name} reads ${target} (received as ${received}) as ${decoded}`);
          checked++;
        }
      }
      assert.ok(checked > 50, `${checked} readings checked`);
    });

    test('every bypass family is refused with 400 naming the reason, and reaches no upstream', async () => {
      for (const [target, reason] of REFUSED) {
        const r = await exchange(target, HOST);
        assert.equal(r.status, 400, target);
        assert.deepEqual(r.seen, [], target);
        // Node's llhttp refuses a raw `\` in the target itself, before the app (400, empty body).
        if (runtime === 'node' && target.includes('\\')) continue;
        assert.equal(r.body, `bad request: ${reason}\n`, target);
      }
    });

    test('absolute-form targets are reduced to the path before the same checks; a route never connects elsewhere', async () => {
      const cases: ReadonlyArray<readonly [string, string, number, string[]]> = [
        [`http://${HOST}/public/x`, HOST, 200, ['A /public/x']],
        [`http://${HOST}//evil.test/x`, HOST, 400, []],
        [`http://${HOST}/public%2f..%2fadmin`, HOST, 400, []],
        [`http://${PLAIN_HOST}//evil.test/x`, PLAIN_HOST, 200, ['P //evil.test/x']],
        ['http://other.host/x', HOST, 400, []],
        ['http://evil.test/x', 'evil.test', 421, []],
      ];
      for (const [target, host, status, seen] of cases) {
        const r = await exchange(target, host);
        assert.equal(r.status, status, `${target} (Host ${host}): ${r.body}`);
        assert.deepEqual(r.seen, seen, target);
      }
    });

    test('a host where no path decides forwards targets as sent', async () => {
      for (const target of AS_SENT) {
        const r = await exchange(target, PLAIN_HOST);
        assert.equal(r.status, 200, `${target}: ${r.body}`);
        assert.deepEqual(r.seen, [`P ${target}`], target);
      }
    });
  });
}
