import assert from 'node:assert/strict';
import { test } from 'node:test';
import { statusFor } from './errors.ts';
import { asksForWebSocket, handshakeProblem, switchingFields } from './websocket.ts';

const valid = () =>
  new Headers({ connection: 'keep-alive, Upgrade', upgrade: 'WebSocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' });

test('a WebSocket request names websocket in Upgrade and upgrade in Connection (any case, in lists)', () => {
  assert.equal(asksForWebSocket(valid()), true);
  assert.equal(asksForWebSocket(new Headers({ upgrade: 'websocket' })), false, 'no Connection: upgrade');
  assert.equal(asksForWebSocket(new Headers({ upgrade: 'h2c', connection: 'upgrade' })), false);
  assert.equal(asksForWebSocket(new Headers({ connection: 'upgrade' })), false);
});

test('handshake checks (RFC 6455 §4.2.1): GET, HTTP/1.1, no body, a 16-byte key, version 13', () => {
  assert.equal(handshakeProblem('GET', '1.1', valid()), null);
  assert.equal(handshakeProblem('GET', null, valid()), null, 'a listener that cannot tell the version');
  const status = (method: string, version: string | null, change: (h: Headers) => void) => {
    const h = valid();
    change(h);
    const problem = handshakeProblem(method, version, h);
    return problem === null ? null : statusFor(problem.kind);
  };
  const cases: [string, string, string | null, (h: Headers) => void, number][] = [
    ['not a GET', 'POST', '1.1', () => {}, 400],
    ['HTTP/1.0', 'GET', '1.0', () => {}, 400],
    ['a body', 'GET', '1.1', (h) => h.set('content-length', '5'), 400],
    ['no key', 'GET', '1.1', (h) => h.delete('sec-websocket-key'), 400],
    ['a short key', 'GET', '1.1', (h) => h.set('sec-websocket-key', 'short'), 400],
    ['version 8', 'GET', '1.1', (h) => h.set('sec-websocket-version', '8'), 426],
    ['no version', 'GET', '1.1', (h) => h.delete('sec-websocket-version'), 426],
  ];
  for (const [what, method, version, change, expected] of cases) assert.equal(status(method, version, change), expected, what);
});

test("the client's 101 fields: hop-by-hop and Connection-named ones gone, ours set, Set-Cookie kept apart", () => {
  const upstream = new Headers([
    ['connection', 'Upgrade, X-Hop'],
    ['upgrade', 'websocket'],
    ['x-hop', 'secret'],
    ['keep-alive', 'timeout=5'],
    ['sec-websocket-accept', 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='],
    ['sec-websocket-protocol', 'chat'],
    ['set-cookie', 'a=1'],
    ['set-cookie', 'b=2'],
  ]);
  const out = switchingFields(upstream);
  assert.equal(out.get('x-hop'), null);
  assert.equal(out.get('keep-alive'), null);
  assert.equal(out.get('connection'), 'Upgrade');
  assert.equal(out.get('upgrade'), 'websocket');
  assert.equal(out.get('sec-websocket-accept'), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  assert.equal(out.get('sec-websocket-protocol'), 'chat');
  assert.deepEqual(out.getSetCookie(), ['a=1', 'b=2']);
});
