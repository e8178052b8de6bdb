// loadTlsFiles with real files (tests/support/tls-fixtures.ts): paths relative to the routes
// file's folder, every problem at once naming its file, upstream TLS options read once.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createTlsFixtures, type TlsFixtures } from '../../tests/support/tls-fixtures.ts';
import { loadTlsFiles, type TlsFiles } from './tls-files.ts';
import type { Config, Route, TlsConfig } from './types.ts';

// Made when the module loads, not in a `before` hook: Bun times hooks out after 5 s whatever
// their `timeout` option says and kills the openssl runs, which a loaded machine can exceed.
const fx: TlsFixtures = createTlsFixtures();
after(() => fx.cleanup());
/** The routes file: only its folder matters, it need not exist. */
const routesFile = join(fx.dir, 'routes.ts');

const tlsWith = (...pairs: [string, string][]): TlsConfig => ({ certificates: pairs.map(([cert, key]) => ({ cert, key })) });
const httpsRoute = (upstreamTls: Route['upstreamTls'], host = 'a.test'): Route => ({ host, upstream: 'https://localhost:8443', upstreamTls });
const pem = (file: string) => readFileSync(fx.path(file), 'utf8');

async function loaded(config: Config, file = routesFile): Promise<TlsFiles> {
  const result = await loadTlsFiles(config, file);
  if (!result.ok) assert.fail(`expected the files to load:\n${result.problems.join('\n')}`);
  return result.files;
}
async function problems(config: Config, file = routesFile, now?: () => number): Promise<string[]> {
  const result = await loadTlsFiles(config, file, now);
  assert.equal(result.ok, false, 'expected problems');
  return result.ok ? [] : result.problems;
}

test('no TLS settings: nothing read, nothing to warn about', async () => {
  const files = await loaded({ routes: [{ host: 'a.test', upstream: 'http://localhost:1' }] });
  assert.deepEqual(files.pairs, []);
  assert.deepEqual(files.pairFiles, []);
  assert.equal(files.clientCa, null);
  assert.equal(files.upstreamTls.size, 0);
  assert.deepEqual(files.warnings, []);
});

test('listener pairs: paths relative to the routes file, read in configured order, named relative to it', async () => {
  const files = await loaded({
    tls: tlsWith(['certs/a-chain.pem', 'certs/a.key'], [fx.path('b.pem'), fx.path('b.key')]),
    routes: [],
  });
  assert.deepEqual(
    files.pairs.map((p) => [p.id, p.certFile, p.keyFile, p.chainLength]),
    [
      ['certs/a-chain.pem', 'certs/a-chain.pem', 'certs/a.key', 2],
      ['certs/b.pem', 'certs/b.pem', 'certs/b.key', 1],
    ],
  );
  assert.deepEqual(files.pairs[0]?.names, ['a.test', '*.a.test']);
  // Absolute paths for reading and watching, and where each pair is configured.
  assert.deepEqual(files.pairFiles, [
    { cert: fx.path('a-chain.pem'), key: fx.path('a.key'), at: 'tls.certificates[0]' },
    { cert: fx.path('b.pem'), key: fx.path('b.key'), at: 'tls.certificates[1]' },
  ]);
  assert.deepEqual(files.warnings, []);
});

test('a routes file in another folder: paths resolve against that folder, files outside it are named absolutely', async () => {
  const elsewhere = join(fx.dir, 'conf', 'routes.ts');
  const files = await loaded({ tls: tlsWith(['../certs/a.pem', '../certs/a.key']), routes: [] }, elsewhere);
  assert.deepEqual(files.pairFiles[0], { cert: fx.path('a.pem'), key: fx.path('a.key'), at: 'tls.certificates[0]' });
  assert.equal(files.pairs[0]?.certFile, fx.path('a.pem'));
  assert.deepEqual(await problems({ tls: tlsWith(['certs/a.pem', 'certs/a.key']), routes: [] }, elsewhere), [
    'certs/a.pem: file not found',
    'certs/a.key: file not found',
  ]);
  assert.deepEqual(await problems({ tls: tlsWith(['../certs/nope.pem', '../certs/a.key']), routes: [] }, elsewhere), [
    `${fx.path('nope.pem')}: file not found`,
  ]);
});

test('a broken listener pair is named by its file: missing, garbage key, mismatched key, expired', async () => {
  const cases: [string, string, string][] = [
    ['certs/nope.pem', 'certs/a.key', 'certs/nope.pem: file not found'],
    ['certs/a.pem', 'certs/garbage.key', 'certs/garbage.key: no PEM private key found'],
    ['certs/a.pem', 'certs/broken.key', 'certs/broken.key: malformed private key'],
    ['certs/a.pem', 'certs/enc.key', 'certs/enc.key: private key is encrypted; switchyard reads unencrypted keys only'],
    ['certs/a.pem', 'certs/other.key', 'certs/other.key: key does not match certs/a.pem'],
    ['certs/broken.pem', 'certs/a.key', 'certs/broken.pem: malformed certificate'],
    ['certs/a.key', 'certs/a.pem', 'certs/a.key: holds a private key, not a certificate (cert and key swapped?)'],
  ];
  for (const [cert, key, problem] of cases) {
    const got = await problems({ tls: tlsWith([cert, key]), routes: [] });
    assert.ok(got.includes(problem), `${cert} + ${key}: ${got.join('; ')}`);
  }
  // old.pem was issued for 2020-01-01 to 2020-01-02 only.
  assert.deepEqual(await problems({ tls: tlsWith(['certs/old.pem', 'certs/old.key']), routes: [] }), [
    'certs/old.pem: certificate expired at 2020-01-02T00:00:00.000Z',
  ]);
});

test('validity is judged by the clock given', async () => {
  const config: Config = { tls: tlsWith(['certs/day.pem', 'certs/day.key']), routes: [] };
  assert.equal((await loadTlsFiles(config, routesFile)).ok, true);
  const later = () => Date.now() + 3 * 86_400_000;
  const [problem] = await problems(config, routesFile, later);
  assert.match(problem ?? '', /^certs\/day\.pem: certificate expired at \d{4}-\d\d-\d\dT/);
});

test('chain warnings do not stop the load; they are returned', async () => {
  const files = await loaded({ tls: tlsWith(['certs/misordered.pem', 'certs/a.key']), routes: [] });
  assert.equal(files.pairs.length, 1);
  assert.deepEqual(files.warnings, ['certs/misordered.pem: certificate 2 (CN=b.test) did not issue certificate 1']);
});

test('the client CA bundle: read as PEM; missing, without a certificate or unreadable is a problem naming the file', async () => {
  const withCa = (ca: string): Config => ({ tls: { ...tlsWith(['certs/a.pem', 'certs/a.key']), clientAuth: { ca } }, routes: [] });
  const files = await loaded(withCa('certs/root.pem'));
  assert.equal(files.clientCa, pem('root.pem').trim());
  assert.deepEqual(await problems(withCa('certs/none.pem')), ['certs/none.pem: cannot read client CA bundle (tls.clientAuth.ca) (file not found)']);
  assert.deepEqual(await problems(withCa('certs/a.key')), ['certs/a.key: client CA bundle (tls.clientAuth.ca) holds no PEM certificate']);
  assert.deepEqual(await problems(withCa('certs/broken.pem')), ['certs/broken.pem: client CA bundle (tls.clientAuth.ca) holds an unreadable certificate']);
  // A bundle of several CAs keeps them all.
  const bundle = await loaded(withCa('certs/a-chain.pem'));
  assert.equal(bundle.clientCa?.match(/BEGIN CERTIFICATE/g)?.length, 2);
});

test('upstreamTls: CA, client certificate and key read once per route into one frozen object', async () => {
  const files = await loaded({
    routes: [
      { host: 'plain.test', upstream: 'http://localhost:1' },
      httpsRoute({ ca: 'certs/root.pem', serverName: 'api.internal', cert: 'certs/client.pem', key: fx.path('client.key') }, 'b.test'),
      httpsRoute({}, 'c.test'),
    ],
  });
  assert.deepEqual([...files.upstreamTls.keys()].sort(), [1, 2]);
  const options = files.upstreamTls.get(1);
  assert.ok(options);
  assert.equal(options.ca, pem('root.pem').trim());
  assert.equal(options.serverName, 'api.internal');
  assert.equal(options.cert?.trim(), pem('client.pem').trim());
  assert.equal(options.key?.trim(), pem('client.key').trim());
  assert.equal(options.insecure, false);
  assert.ok(Object.isFrozen(options));
  assert.deepEqual(files.upstreamTls.get(2), { ca: undefined, serverName: undefined, cert: undefined, key: undefined, insecure: false });
  assert.deepEqual(files.warnings, []);
});

test('upstreamTls problems name the file and the route', async () => {
  assert.deepEqual(await problems({ routes: [httpsRoute({ ca: 'certs/a.key' })] }), [
    'certs/a.key: CA bundle (routes[0].upstreamTls.ca) holds no PEM certificate',
  ]);
  assert.deepEqual(await problems({ routes: [httpsRoute({ ca: 'certs/none.pem' })] }), [
    'certs/none.pem: cannot read CA bundle (routes[0].upstreamTls.ca) (file not found)',
  ]);
  assert.deepEqual(await problems({ routes: [httpsRoute({ cert: 'certs/client.pem', key: 'certs/other.key' })] }), [
    'certs/other.key: key does not match certs/client.pem (routes[0].upstreamTls)',
  ]);
  assert.deepEqual(await problems({ routes: [httpsRoute({ cert: 'certs/client.pem', key: 'certs/gone.key' })] }), [
    'certs/gone.key: file not found (routes[0].upstreamTls)',
  ]);
});

test('insecure upstreams load with a warning naming the route and upstream', async () => {
  const files = await loaded({ routes: [httpsRoute({ insecure: true }), httpsRoute({ insecure: false }, 'b.test')] });
  assert.equal(files.upstreamTls.get(0)?.insecure, true);
  assert.equal(files.upstreamTls.get(1)?.insecure, false);
  assert.deepEqual(files.warnings, ['routes[0].upstreamTls.insecure: the certificate of https://localhost:8443 is not verified']);
});

test('every problem is reported at once', async () => {
  const got = await problems({
    tls: {
      ...tlsWith(['certs/a.pem', 'certs/other.key'], ['certs/nope.pem', 'certs/b.key'], ['certs/old.pem', 'certs/old.key'], ['certs/b.pem', 'certs/b.key']),
      clientAuth: { ca: 'certs/garbage.key' },
    },
    routes: [httpsRoute({ ca: 'certs/missing-ca.pem' }), httpsRoute({ cert: 'certs/client.pem', key: 'certs/garbage.key' }, 'b.test')],
  });
  assert.deepEqual([...got].sort(), [
    'certs/garbage.key: client CA bundle (tls.clientAuth.ca) holds no PEM certificate',
    'certs/garbage.key: no PEM private key found (routes[1].upstreamTls)',
    'certs/missing-ca.pem: cannot read CA bundle (routes[0].upstreamTls.ca) (file not found)',
    'certs/nope.pem: file not found',
    'certs/old.pem: certificate expired at 2020-01-02T00:00:00.000Z',
    'certs/other.key: key does not match certs/a.pem',
  ]);
});
