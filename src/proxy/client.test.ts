// The client identity (issue 11): spoofed forwarding headers from an untrusted peer change
// nothing; behind trusted proxies, the rightmost untrusted hop.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileCidrMatcher } from './cidr.ts';
import { clientBehind } from './client.ts';

const trusted = compileCidrMatcher(['10.0.0.0/8', '::1']);

test('the peer itself when there is nothing to read', () => {
  assert.equal(clientBehind('10.0.0.1', null, null, trusted), '10.0.0.1');
});

test('behind trusted proxies: the rightmost untrusted X-Forwarded-For hop', () => {
  assert.equal(clientBehind('10.0.0.1', '203.0.113.7', null, trusted), '203.0.113.7');
  // A client's own left-hand entries are never believed: the rightmost untrusted wins.
  assert.equal(clientBehind('10.0.0.1', '6.6.6.6, 203.0.113.7', null, trusted), '203.0.113.7');
  assert.equal(clientBehind('10.0.0.1', '6.6.6.6, 203.0.113.7, 10.1.2.3', null, trusted), '203.0.113.7');
  // Two fields arrive joined in order (Headers): the same rule.
  assert.equal(clientBehind('::1', '6.6.6.6, 198.51.100.2', null, trusted), '198.51.100.2');
});

test('every hop trusted: the leftmost; an entry that is not an address stops the walk at the hop that named it', () => {
  assert.equal(clientBehind('10.0.0.1', '10.9.9.9, 10.1.1.1', null, trusted), '10.9.9.9');
  assert.equal(clientBehind('10.0.0.1', 'junk, 10.1.1.1', null, trusted), '10.1.1.1');
  assert.equal(clientBehind('10.0.0.1', '203.0.113.7, not-an-ip', null, trusted), '10.0.0.1');
  assert.equal(clientBehind('10.0.0.1', '', null, trusted), '10.0.0.1');
});

test('ports, brackets, IPv6 and IPv4-mapped addresses', () => {
  assert.equal(clientBehind('10.0.0.1', '203.0.113.7:4711', null, trusted), '203.0.113.7');
  assert.equal(clientBehind('10.0.0.1', '[2001:db8::1]:4711', null, trusted), '2001:db8::1');
  assert.equal(clientBehind('10.0.0.1', '2001:db8::2', null, trusted), '2001:db8::2');
  assert.equal(clientBehind('10.0.0.1', '::ffff:203.0.113.9', null, trusted), '203.0.113.9');
  // A mapped trusted address is trusted.
  assert.equal(clientBehind('10.0.0.1', '203.0.113.7, ::ffff:10.2.2.2', null, trusted), '203.0.113.7');
});

test('Forwarded for= is read when X-Forwarded-For is absent', () => {
  assert.equal(clientBehind('10.0.0.1', null, 'for=203.0.113.7;proto=https', trusted), '203.0.113.7');
  assert.equal(clientBehind('10.0.0.1', null, 'for=6.6.6.6, for="[2001:db8::5]:80";host=a', trusted), '2001:db8::5');
  assert.equal(clientBehind('10.0.0.1', null, 'for=unknown', trusted), '10.0.0.1');
  assert.equal(clientBehind('10.0.0.1', null, 'host=a;proto=http', trusted), '10.0.0.1');
  // X-Forwarded-For wins when both are present.
  assert.equal(clientBehind('10.0.0.1', '198.51.100.1', 'for=203.0.113.7', trusted), '198.51.100.1');
});
