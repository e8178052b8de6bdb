import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ForwardingFacts, HEADERS_TOO_LARGE, normalizePeer, UNDERSCORE_NAME, upstreamRequestHeaders } from './headers.ts';

const facts = (over: Partial<ForwardingFacts> = {}): ForwardingFacts => ({
  peer: '203.0.113.9',
  trusted: false,
  proto: 'http',
  clientHost: 'sub1.xyz.com',
  upstreamHost: 'sub1.xyz.com',
  forwarded: false,
  requestId: 'id-1',
  ...over,
});

const names = (h: Headers) => [...h.keys()];

test('hop-by-hop and Connection-named fields are removed before the proxy adds its own', () => {
  const src = new Headers({
    connection: 'keep-alive, X-Secret, x-forwarded-for',
    'keep-alive': 'timeout=5',
    'proxy-connection': 'keep-alive',
    te: 'gzip',
    trailer: 'x',
    'transfer-encoding': 'chunked',
    upgrade: 'websocket',
    expect: '100-continue',
    'x-secret': 's',
    'x-keep': 'k',
  });
  const out = upstreamRequestHeaders(src, facts(), 16384) as Headers;
  assert.deepEqual(names(out).sort(), ['host', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-keep', 'x-request-id']);
  assert.equal(out.get('x-forwarded-for'), '203.0.113.9');
});

test('TE is never forwarded, "trailers" included: no runtime relays trailers to the client', () => {
  const out = upstreamRequestHeaders(new Headers({ te: 'trailers, gzip;q=0.5' }), facts(), 16384) as Headers;
  assert.equal(out.get('te'), null);
  const gone = upstreamRequestHeaders(new Headers({ te: 'trailers', connection: 'te' }), facts(), 16384) as Headers;
  assert.equal(gone.get('te'), null);
});

test('untrusted peers: forwarding headers replaced, Forwarded dropped', () => {
  const src = new Headers({ 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil', forwarded: 'for=6.6.6.6' });
  const out = upstreamRequestHeaders(src, facts(), 16384) as Headers;
  assert.equal(out.get('x-forwarded-for'), '203.0.113.9');
  assert.equal(out.get('x-forwarded-proto'), 'http');
  assert.equal(out.get('x-forwarded-host'), 'sub1.xyz.com');
  assert.equal(out.get('forwarded'), null);
});

test('trusted peers: XFF appended, proto and host kept, Forwarded extended', () => {
  const src = new Headers({ 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'front.example', forwarded: 'for=6.6.6.6' });
  const out = upstreamRequestHeaders(src, facts({ trusted: true, forwarded: true, peer: '::1' }), 16384) as Headers;
  assert.equal(out.get('x-forwarded-for'), '6.6.6.6, ::1');
  assert.equal(out.get('x-forwarded-proto'), 'https');
  assert.equal(out.get('x-forwarded-host'), 'front.example');
  assert.equal(out.get('forwarded'), 'for=6.6.6.6, for="[::1]";host=sub1.xyz.com;proto=http');
});

test('Host is the chosen upstream host; size limit returns null', () => {
  const out = upstreamRequestHeaders(new Headers({ host: 'sub1.xyz.com' }), facts({ upstreamHost: 'localhost:8080' }), 16384) as Headers;
  assert.equal(out.get('host'), 'localhost:8080');
  assert.equal(upstreamRequestHeaders(new Headers({ big: 'x'.repeat(5000) }), facts(), 4096), HEADERS_TOO_LARGE);
});

test('normalizePeer strips the IPv4-mapped prefix only', () => {
  assert.equal(normalizePeer('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(normalizePeer('::1'), '::1');
  assert.equal(normalizePeer('::ffff:abcd'), '::ffff:abcd');
});

test('client certificate header: a client-sent copy is always dropped; the verified subject is set when there is one', () => {
  const src = new Headers({ 'X-Client-Subject': 'CN=forged', 'x-keep': 'k' });
  const withSubject = upstreamRequestHeaders(src, facts({ clientCertHeader: 'x-client-subject', clientSubject: 'CN=client.test,O=Example' }), 16384) as Headers;
  assert.equal(withSubject.get('x-client-subject'), 'CN=client.test,O=Example');
  assert.equal(withSubject.get('x-keep'), 'k');
  // One value, the proxy's: the forged one is not appended to.
  assert.equal([...withSubject].filter(([name]) => name === 'x-client-subject').length, 1);

  for (const clientSubject of [null, undefined, '']) {
    const without = upstreamRequestHeaders(src, facts({ clientCertHeader: 'x-client-subject', clientSubject }), 16384) as Headers;
    assert.equal(without.get('x-client-subject'), null, `subject ${String(clientSubject)}`);
    assert.equal(without.get('x-keep'), 'k');
  }
  const noCertificateAsked = upstreamRequestHeaders(new Headers({ 'x-keep': 'k' }), facts({ clientCertHeader: 'x-client-subject' }), 16384) as Headers;
  assert.equal(noCertificateAsked.has('x-client-subject'), false);
});

test('client certificate header: a Connection token cannot remove the subject; without the setting the header is an ordinary one', () => {
  const src = new Headers({ connection: 'x-client-subject', 'x-client-subject': 'CN=forged' });
  const out = upstreamRequestHeaders(src, facts({ clientCertHeader: 'x-client-subject', clientSubject: 'CN=client.test' }), 16384) as Headers;
  assert.equal(out.get('x-client-subject'), 'CN=client.test');
  // Not configured: nothing is dropped or added (the header is no more special than any other).
  const plain = upstreamRequestHeaders(
    new Headers({ 'x-client-subject': 'CN=whatever' }),
    facts({ clientCertHeader: null, clientSubject: 'CN=client.test' }),
    16384,
  ) as Headers;
  assert.equal(plain.get('x-client-subject'), 'CN=whatever');
  const absent = upstreamRequestHeaders(new Headers({ 'x-client-subject': 'CN=whatever' }), facts(), 16384) as Headers;
  assert.equal(absent.get('x-client-subject'), 'CN=whatever');
});

test('fields named with an underscore are dropped by default, refused or passed as configured', () => {
  const src = new Headers({ x_forwarded_for: '6.6.6.6', 'x-real_ip': '6.6.6.6', 'x-keep': 'k' });
  const dropped = upstreamRequestHeaders(src, facts(), 16384) as Headers;
  assert.equal(dropped.get('x_forwarded_for'), null);
  assert.equal(dropped.get('x-real_ip'), null);
  assert.equal(dropped.get('x-keep'), 'k');
  assert.equal(dropped.get('x-forwarded-for'), facts().peer);
  assert.equal(upstreamRequestHeaders(src, facts({ underscores: 'reject' }), 16384), UNDERSCORE_NAME);
  assert.equal(upstreamRequestHeaders(new Headers({ 'x-keep': 'k' }), facts({ underscores: 'reject' }), 16384) instanceof Headers, true);
  const passed = upstreamRequestHeaders(src, facts({ underscores: 'pass' }), 16384) as Headers;
  assert.equal(passed.get('x_forwarded_for'), '6.6.6.6');
});
