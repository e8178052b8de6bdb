import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bodilessHeaders, endsAtHead, isNullBodyStatus, lengthFrames, requestDeclaresBody, responseBodyIsNull } from './body-rules.ts';

test('endsAtHead: HEAD, 1xx, 204, 304; not 205 nor 200', () => {
  assert.equal(endsAtHead('HEAD', 200), true);
  assert.equal(endsAtHead('GET', 100), true);
  assert.equal(endsAtHead('GET', 204), true);
  assert.equal(endsAtHead('GET', 304), true);
  assert.equal(endsAtHead('GET', 205), false);
  assert.equal(endsAtHead('GET', 200), false);
  assert.equal(endsAtHead('head', 200), false, 'methods are case-sensitive');
});

test('isNullBodyStatus: fetch null-body statuses only', () => {
  for (const status of [101, 103, 204, 205, 304]) assert.equal(isNullBodyStatus(status), true, String(status));
  for (const status of [100, 200, 206, 404, 500]) assert.equal(isNullBodyStatus(status), false, String(status));
});

test('lengthFrames: not on HEAD nor 304', () => {
  assert.equal(lengthFrames('GET', 200), true);
  assert.equal(lengthFrames('GET', 205), true);
  assert.equal(lengthFrames('HEAD', 200), false);
  assert.equal(lengthFrames('GET', 304), false);
});

test('bodilessHeaders: 204 loses Content-Length, 205 gets 0, others untouched', () => {
  const h204 = new Headers({ 'content-length': '5', a: '1' });
  const out204 = bodilessHeaders(204, h204);
  assert.equal(out204.has('content-length'), false);
  assert.equal(out204.get('a'), '1');
  assert.equal(h204.get('content-length'), '5', 'the input is not changed');
  assert.equal(bodilessHeaders(205, new Headers({ 'content-length': '7' })).get('content-length'), '0');
  const zero = new Headers({ 'content-length': '0' });
  assert.equal(bodilessHeaders(205, zero), zero);
  const ok = new Headers({ 'content-length': '5' });
  assert.equal(bodilessHeaders(200, ok), ok);
  const none = new Headers();
  assert.equal(bodilessHeaders(204, none), none);
});

test('requestDeclaresBody: any Transfer-Encoding, or a Content-Length other than zero', () => {
  assert.equal(requestDeclaresBody(null, null), false);
  assert.equal(requestDeclaresBody(undefined, undefined), false);
  assert.equal(requestDeclaresBody('0', null), false);
  assert.equal(requestDeclaresBody('00', null), false);
  assert.equal(requestDeclaresBody('5', null), true);
  assert.equal(requestDeclaresBody(null, 'chunked'), true);
  assert.equal(requestDeclaresBody('abc', null), true, "a malformed length is the guard's to refuse");
});

test('responseBodyIsNull: HEAD and the null-body statuses', () => {
  assert.equal(responseBodyIsNull('HEAD', 200), true);
  assert.equal(responseBodyIsNull('GET', 205), true);
  assert.equal(responseBodyIsNull('GET', 200), false);
});
