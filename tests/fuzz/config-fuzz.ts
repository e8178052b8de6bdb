// The config half of the fuzzer: random JSON-shaped values, and mutations of valid configs, to
// the pure validator (src/config/schema.ts `validateConfig`). It must never throw, every
// rejection line must start with a path (`routes[2].upstream: ...`), and a config it accepts
// (without TLS, whose files a start would read) must compile.
import fc from 'fast-check';
import { compileConfig } from '../../src/config/compile.ts';
import { validateConfig } from '../../src/config/schema.ts';
import type { Judgement } from './classify.ts';

/** Valid configs: routes.ts's shape and the README's examples. */
export const VALID_CONFIGS: unknown[] = [
  {
    listen: '127.0.0.1:4433',
    routes: [
      { host: 'sub1.xyz.com', upstream: 'http://localhost:8080' },
      { host: '*.xyz.com', upstream: 'http://localhost:8181' },
      { host: '*', upstream: 'http://localhost:8888' },
    ],
  },
  { routes: [{ host: 'app.xyz.com', upstream: ['http://127.0.0.1:9001', 'http://127.0.0.1:9002', 'http://127.0.0.1:9003'] }] },
  {
    routes: [
      {
        host: 'app.xyz.com',
        path: '/api',
        stripPrefix: true,
        upstream: {
          targets: [{ url: 'http://127.0.0.1:9001', weight: 3 }, 'http://127.0.0.1:9002'],
          health: { path: '/healthz', intervalMs: 2000 },
          retry: { tries: 3 },
        },
      },
    ],
  },
  { routes: [{ host: 'lc.xyz.com', upstream: { targets: ['http://127.0.0.1:9001', 'http://127.0.0.1:9002'], policy: 'least_conn' } }] },
  { routes: [{ host: 'ip.xyz.com', upstream: { targets: ['http://127.0.0.1:9001', 'http://127.0.0.1:9002'], policy: { hash: 'header', name: 'x-tenant' } } }] },
  {
    listen: ':8080',
    trustedProxies: ['10.0.0.0/8'],
    forwarded: true,
    limits: { maxBodyBytes: 1000, maxHeaderBytes: 8192, maxUrlBytes: 4096 },
    timeouts: { upstreamMs: 1000, connectMs: 500, bodyIdleMs: null, shutdownGraceMs: 100 },
    routes: [{ host: ['a.example', 'b.example'], upstream: 'https://127.0.0.1:9443', hostHeader: 'upstream', timeoutMs: 100, maxBodyBytes: null }],
  },
];

/** Keys the schema knows, so random objects hit real fields more often than chance. */
const KEYS = [
  'listen',
  'routes',
  'host',
  'path',
  'upstream',
  'targets',
  'url',
  'weight',
  'policy',
  'health',
  'retry',
  'tries',
  'limits',
  'timeouts',
  'tls',
  'hsts',
  'redirectHttp',
  'upstreamTls',
  'stripPrefix',
  'hostHeader',
  'maxBodyBytes',
  'hash',
  'name',
  'sticky',
  'secret',
  'intervalMs',
  'trustedProxies',
  'forwarded',
  'websocket',
  '__proto__',
  'constructor',
  'toString',
];

const leaf = fc.oneof(
  fc.constantFrom(
    'http://127.0.0.1:9001',
    'https://x.example',
    'ws://h:1',
    '*',
    '*.a.example',
    '/api',
    ':80',
    '0.0.0.0:0',
    '[::1]:8080',
    'round_robin',
    'p2c',
    '',
    'not a url',
    'http://h/path',
  ),
  fc.integer({ min: -5, max: 70000 }),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.string({ maxLength: 12 }),
);

const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('array'), tie('object')),
  array: fc.array(tie('node'), { maxLength: 4 }),
  object: fc.dictionary(fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 6 })), tie('node'), { maxKeys: 5 }),
})).node;

/** Replaces, deletes or adds one thing at a random path of a valid config. */
function mutate(config: unknown, steps: number[], replacement: unknown, op: number): unknown {
  const copy = structuredClone(config) as Record<string, unknown>;
  let at: Record<string, unknown> = copy;
  for (const step of steps) {
    const keys = Object.keys(at);
    if (keys.length === 0) break;
    const key = keys[step % keys.length] as string;
    const next = at[key];
    if (next === null || typeof next !== 'object') {
      if (op === 0) delete at[key];
      else at[key] = replacement;
      return copy;
    }
    at = next as Record<string, unknown>;
  }
  if (op === 2) at[`extra${steps.length}`] = replacement;
  else {
    const keys = Object.keys(at);
    const key = keys[(steps[0] ?? 0) % Math.max(1, keys.length)];
    if (key !== undefined) at[key] = op === 0 ? undefined : replacement;
  }
  return copy;
}

export const configInput: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 1, arbitrary: value },
  { weight: 1, arbitrary: fc.record({ routes: fc.array(value, { maxLength: 3 }) }, { requiredKeys: [] }) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom(...VALID_CONFIGS), fc.array(fc.nat(), { maxLength: 5 }), value, fc.nat(2))
      .map(([c, steps, r, op]) => mutate(c, steps, r, op)),
  },
);

// `(config)` names the top level; otherwise a key, then `.key`, `[n]` or `["odd key"]` steps,
// then a colon.
const QUOTED = String.raw`\["(?:[^"\\]|\\.)*"\]`;
const PATH = new RegExp(String.raw`^(\(config\)|(?:[A-Za-z_$][\w$]*|${QUOTED})(?:\[\d+\]|\.[A-Za-z_$][\w$]*|${QUOTED})*): .`);

/** Checks one input; a judgement other than AGREE is a BUG (the validator has no STRICTER). */
export function checkConfig(input: unknown): Judgement {
  let result: ReturnType<typeof validateConfig>;
  try {
    result = validateConfig(input);
  } catch (error) {
    return { verdict: 'BUG', kind: 'validator-threw', detail: String((error as Error)?.stack ?? error).slice(0, 400) };
  }
  if (!result.ok) {
    if (result.problems.length === 0) return { verdict: 'BUG', kind: 'no-problems', detail: 'rejected with an empty problem list' };
    const bad = result.problems.find((p) => !PATH.test(p));
    // Found and fixed: an array read as an object (`0: unknown key`), odd keys printed unquoted.
    if (bad !== undefined) return { verdict: 'BUG', kind: 'problem-without-path', detail: bad };
    return { verdict: 'AGREE', kind: 'rejected', detail: '' };
  }
  if (result.config.tls !== undefined) return { verdict: 'AGREE', kind: 'accepted-tls', detail: '' };
  try {
    compileConfig(result.config);
  } catch (error) {
    return { verdict: 'BUG', kind: 'compile-threw', detail: String((error as Error)?.stack ?? error).slice(0, 400) };
  }
  return { verdict: 'AGREE', kind: 'accepted', detail: '' };
}
