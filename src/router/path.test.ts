import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DECODERS, OTHER_ORIGIN, prefixOfDecoded } from '../../tests/support/upstream-decoders.ts';
import { canonicalTarget, prefixProblem, removeDotSegments, routingTarget } from './path.ts';
import { compileRouteTable } from './table.ts';

test('removeDotSegments (RFC 3986 §5.2.4 examples and edges)', () => {
  assert.equal(removeDotSegments('/a/b/c/./../../g'), '/a/g');
  assert.equal(removeDotSegments('/a/../b'), '/b');
  assert.equal(removeDotSegments('/api/../admin'), '/admin');
  assert.equal(removeDotSegments('/../../x'), '/x');
  assert.equal(removeDotSegments('/a/.'), '/a/');
  assert.equal(removeDotSegments('/a/b/..'), '/a/');
  assert.equal(removeDotSegments('//x'), '//x');
  assert.equal(removeDotSegments('/'), '/');
});

test('routingTarget (hosts without path routes) decodes unreserved escapes only, keeps the query, leaves plain targets alone', () => {
  const plain = '/api/x?q=1';
  assert.equal(routingTarget(plain), plain);
  assert.equal(routingTarget('/%61pi/x'), '/api/x');
  assert.equal(routingTarget('/api/%2e%2E/admin?x=/../y'), '/admin?x=/../y');
  assert.equal(routingTarget('/a%2Fb'), '/a%2Fb');
  assert.equal(routingTarget('/a%20b/./c'), '/a%20b/c');
  assert.equal(routingTarget('/x.y/..z'), '/x.y/..z');
});

// target -> canonical form (a string) or the refusal reason ({ refused }).
const CASES: ReadonlyArray<readonly [string, string | { refused: string }]> = [
  // Already canonical: returned as it is (the same string).
  ['/', '/'],
  ['/public/css/site.css?v=3', '/public/css/site.css?v=3'],
  ['/api/', '/api/'],
  ['/a.b/..c/...', '/a.b/..c/...'],
  ['/x?next=//evil.test/%2f..%5c;%00#', '/x?next=//evil.test/%2f..%5c;%00#'],
  // Unreserved escapes decoded in either hex case; the rest uppercased; the query untouched.
  ['/%61dmin/x', '/admin/x'],
  ['/%41DMIN', '/ADMIN'],
  ['/a%7eb%7Ec%2dd%5f', '/a~b~c-d_'],
  ['/a%2eb', '/a.b'],
  ['/caf%c3%a9?q=%c3%a9', '/caf%C3%A9?q=%c3%a9'],
  ['/a%20b/%3f/%23/%3b', '/a%20b/%3F/%23/%3B'],
  ['/100%25/x', '/100%25/x'],
  ['/100%25.txt', '/100%25.txt'],
  // Raw dot segments resolved (and forwarded resolved).
  ['/public/../admin', '/admin'],
  ['/admin/../public/x?y', '/public/x?y'],
  ['/../../admin', '/admin'],
  ['/a/./b/.', '/a/b/'],
  ['/a/..', '/'],
  // Encoded slashes and backslashes, any case.
  ['/public%2fadmin', { refused: 'encoded slash in path' }],
  ['/public%2Fadmin', { refused: 'encoded slash in path' }],
  ['/public%5cadmin', { refused: 'encoded backslash in path' }],
  ['/public%5C..%5Cadmin', { refused: 'encoded backslash in path' }],
  ['/public\\..\\admin', { refused: 'backslash in path' }],
  ['/admin\\', { refused: 'backslash in path' }],
  // NUL and other control characters.
  ['/admin%00.png', { refused: 'encoded NUL in path' }],
  ['/a%0d%0aSet-Cookie:x', { refused: 'encoded control character in path' }],
  ['/a%09', { refused: 'encoded control character in path' }],
  ['/a%7F', { refused: 'encoded control character in path' }],
  // Encoded dot segments, any case and mix.
  ['/public/%2e%2e/admin', { refused: 'encoded dot segment in path' }],
  ['/public/%2E%2E/admin', { refused: 'encoded dot segment in path' }],
  ['/public/.%2e/admin', { refused: 'encoded dot segment in path' }],
  ['/public/%2e./admin', { refused: 'encoded dot segment in path' }],
  ['/%2e/admin', { refused: 'encoded dot segment in path' }],
  ['/public/%2e%2e', { refused: 'encoded dot segment in path' }],
  // Double encoding (also when built from decoded unreserved characters).
  ['/public%252fadmin', { refused: 'double-encoded character in path' }],
  ['/public%255cadmin', { refused: 'double-encoded character in path' }],
  ['/public/%252e%252e/admin', { refused: 'double-encoded character in path' }],
  ['/admin%2500', { refused: 'double-encoded character in path' }],
  ['/p%25%32%66admin', { refused: 'double-encoded character in path' }],
  ['/p%25252f', { refused: 'double-encoded character in path' }],
  // Malformed escapes, including the nested kind (`%%32%66` is `%2f` after one decoding).
  ['/a%', { refused: 'malformed percent-escape in path' }],
  ['/a%2', { refused: 'malformed percent-escape in path' }],
  ['/a%zz', { refused: 'malformed percent-escape in path' }],
  ['/a%%32%66', { refused: 'malformed percent-escape in path' }],
  ['/a%2%66', { refused: 'malformed percent-escape in path' }],
  // Invalid UTF-8: overlong `/` and `\`, lone continuation and truncated sequences.
  ['/public%c0%afadmin', { refused: 'invalid UTF-8 in path escape' }],
  ['/public%C1%9Cadmin', { refused: 'invalid UTF-8 in path escape' }],
  ['/a%80', { refused: 'invalid UTF-8 in path escape' }],
  ['/a%c3', { refused: 'invalid UTF-8 in path escape' }],
  ['/a%c3x', { refused: 'invalid UTF-8 in path escape' }],
  // `;` path parameters (Tomcat's `..;/`, jsessionid), fragments.
  ['/public/..;/admin', { refused: 'path parameter (;) in path' }],
  ['/admin;x=1/y', { refused: 'path parameter (;) in path' }],
  ['/public;jsessionid=1', { refused: 'path parameter (;) in path' }],
  ['/admin#x', { refused: 'fragment in request target' }],
  // Empty segments: a leading `//` (scheme-relative to URL parsers) and merged slashes.
  ['//evil.test/x', { refused: 'empty segment in path' }],
  ['//admin', { refused: 'empty segment in path' }],
  ['/public//admin', { refused: 'empty segment in path' }],
  ['/x/..//admin', { refused: 'empty segment in path' }],
  ['/%2e%2e//admin', { refused: 'encoded dot segment in path' }], // the first problem is named
];

test('canonicalTarget: a table of targets, canonical form or refusal reason', () => {
  for (const [target, expected] of CASES) {
    const got = canonicalTarget(target);
    const shown = typeof got === 'string' ? got : { refused: got.reason };
    assert.deepEqual(shown, expected, target);
  }
});

test('canonicalTarget is idempotent and returns plain targets as the same string', () => {
  for (const [target, expected] of CASES) {
    if (typeof expected === 'string') assert.equal(canonicalTarget(expected), expected, target);
  }
  const plain = '/public/css/site.css?v=3';
  assert.equal(canonicalTarget(plain), plain);
});

test('prefixProblem: a route path must be canonical, visible ASCII, with nothing refused', () => {
  assert.equal(prefixProblem('/api'), null);
  assert.equal(prefixProblem('/api/'), null);
  assert.equal(prefixProblem('/caf%C3%A9'), null);
  assert.equal(prefixProblem('/caf%c3%a9'), 'must be in canonical form: /caf%C3%A9');
  assert.equal(prefixProblem('/%61pi'), 'must be in canonical form: /api');
  assert.equal(prefixProblem('/a/../b'), 'must be in canonical form: /b');
  assert.equal(prefixProblem('/a;b'), 'must not contain what requests are refused for: path parameter (;) in path');
  assert.equal(prefixProblem('/a%2Fb'), 'must not contain what requests are refused for: encoded slash in path');
  assert.equal(prefixProblem('//a'), 'must not contain what requests are refused for: empty segment in path');
  assert.match(prefixProblem('/café') ?? '', /^must be visible ASCII/);
});

// The property of issue 10, over random targets: where a path decides the route, an accepted
// target, as every modelled upstream decodes it, lands under the same route prefix the proxy
// matched; so no rule on a prefix can be skipped by how an upstream decodes.
const PREFIXES = ['/', '/public', '/admin', '/admin/keys', '/api'];
const table = compileRouteTable(PREFIXES.map((prefix) => ({ hosts: ['h.test'], prefix })));
const routes = table.forHost('h.test');

test('the table says paths decide on this host', () => {
  assert.equal(routes?.pathsDecide, true);
});

const PIECES = [
  'admin',
  'ADMIN',
  'Admin',
  'public',
  'api',
  'keys',
  'x',
  'a.b',
  '.',
  '..',
  '',
  '%2e',
  '%2E',
  '.%2e',
  '%2e%2e',
  '%2f',
  '%2F',
  '%5c',
  '%5C',
  '\\',
  ';',
  ';x=1',
  '..;',
  '%00',
  '%0a',
  '%25',
  '%252f',
  '%252e',
  '%255c',
  '%2500',
  '%25%32%66',
  '%',
  '%2',
  '%%32%66',
  '%41',
  '%61',
  '%64min',
  '%C3%A9',
  '%c0%af',
  '%c1%9c',
  '%3f',
  '%23',
  '%3b',
  '#',
  '~',
  '%7e',
  '%20',
  'evil.test',
  'http:',
];
const targetArb = fc
  .tuple(
    fc.array(fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 6 }),
    fc.option(fc.constantFrom('?q=1', '?next=/admin', '?%2f', '?')),
  )
  .map(([segments, query]) => `/${segments.map((parts) => parts.join('')).join('/')}${query ?? ''}`);

test('property: every modelled upstream decoding of an accepted target stays under the matched prefix', () => {
  fc.assert(
    fc.property(targetArb, (target) => {
      const canonical = canonicalTarget(target);
      if (typeof canonical !== 'string') return true;
      const matched = routes?.match(canonical)?.prefix;
      for (const [name, decode] of Object.entries(DECODERS)) {
        const decoded = decode(canonical);
        if (decoded === null) continue; // that upstream answers 400 itself
        assert.notEqual(decoded, OTHER_ORIGIN, `${name}: ${target} -> ${canonical} names another origin`);
        assert.equal(prefixOfDecoded(PREFIXES, decoded), matched, `${name}: ${target} forwarded as ${canonical} reads as ${decoded}`);
      }
      return true;
    }),
    { numRuns: 20_000, seed: 10 },
  );
});

test('property: canonical targets are fixed points and carry nothing refused', () => {
  fc.assert(
    fc.property(targetArb, (target) => {
      const canonical = canonicalTarget(target);
      if (typeof canonical !== 'string') return true;
      assert.equal(canonicalTarget(canonical), canonical);
      const path = canonical.split('?')[0] as string;
      assert.doesNotMatch(path, /%(2f|5c|00|25[0-9a-f]{2})|\\|;|#|\/\/|\/\.\.?(\/|$)/i, canonical);
      return true;
    }),
    { numRuns: 20_000, seed: 11 },
  );
});

test('the same modelled decoders would be fooled by the refused families (the models can fail)', () => {
  // Each of these is refused; forwarded as sent, some model would read it under /admin while
  // the proxy matched the catch-all or /public: exactly the bypass the refusal prevents.
  const bypasses = [
    '/public%2f..%2fadmin',
    '/public/..;/admin',
    '/public\\..\\admin',
    '/public/%2e%2e/admin',
    '/public%252f..%252fadmin',
    '//admin',
    '/admin%00x',
  ];
  for (const target of bypasses) {
    assert.equal(typeof canonicalTarget(target), 'object', target);
    const lenient = routingTarget(target);
    const matched = routes?.match(lenient)?.prefix;
    const fooled = Object.values(DECODERS).some((decode) => {
      const decoded = decode(target);
      return decoded !== null && prefixOfDecoded(PREFIXES, decoded) !== matched;
    });
    assert.ok(fooled, `${target}: no model reads it elsewhere than ${matched}`);
  }
});
