import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cidrProblem, compileCidrMatcher, parseIp } from './cidr.ts';

test('parseIp', () => {
  assert.deepEqual(parseIp('10.0.0.1'), { v6: false, value: 0x0a000001n });
  assert.deepEqual(parseIp('::1'), { v6: true, value: 1n });
  assert.deepEqual(parseIp('::ffff:10.0.0.1'), { v6: false, value: 0x0a000001n });
  assert.equal(parseIp('2001:db8::1')?.value, 0x20010db8000000000000000000000001n);
  assert.equal(parseIp('256.0.0.1'), null);
  assert.equal(parseIp('1:2:3:4:5:6:7:8:9'), null);
  assert.equal(parseIp('1::2::3'), null);
  assert.equal(parseIp('hello'), null);
});

test('compileCidrMatcher', () => {
  const trusted = compileCidrMatcher(['10.0.0.0/8', '192.168.1.7', '::1', 'fd00::/8']);
  assert.equal(trusted('10.20.30.40'), true);
  assert.equal(trusted('::ffff:10.1.1.1'), true);
  assert.equal(trusted('11.0.0.1'), false);
  assert.equal(trusted('192.168.1.7'), true);
  assert.equal(trusted('192.168.1.8'), false);
  assert.equal(trusted('::1'), true);
  assert.equal(trusted('fd12::5'), true);
  assert.equal(trusted('fe80::1'), false);
  assert.equal(trusted('garbage'), false);
  assert.equal(compileCidrMatcher([])('127.0.0.1'), false);
  assert.equal(compileCidrMatcher(['0.0.0.0/0'])('8.8.8.8'), true);
});

test('cidrProblem', () => {
  assert.equal(cidrProblem('10.0.0.0/8'), null);
  assert.match(cidrProblem('10.0.0.0/33') ?? '', /invalid CIDR/);
  assert.match(cidrProblem('example.com') ?? '', /invalid CIDR/);
  assert.throws(() => compileCidrMatcher(['nope']), /invalid CIDR or address "nope"/);
});
