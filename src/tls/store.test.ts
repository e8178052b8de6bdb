import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTlsFixtures, type TlsFixtures } from '../../tests/support/tls-fixtures.ts';
import { type CertificatePair, type CertificatePairResult, type LoadCertificateOptions, loadCertificatePair } from './certificate.ts';
import { type CertificateStore, CertificateStoreError, type CertificateTable, createCertificateStore } from './store.ts';

let fx: TlsFixtures;
/** Loaded once: stems of the fixtures (`a`, `b`, `w`, ...) to their pair. */
const pairs = new Map<string, CertificatePair>();

const load = (stem: string, options: LoadCertificateOptions & { key?: string } = {}): Promise<CertificatePairResult> =>
  loadCertificatePair({ cert: fx.path(`${stem}.pem`), key: fx.path(options.key ?? `${stem}.key`) }, { relativeTo: fx.dir, ...options });

before(async () => {
  fx = createTlsFixtures();
  for (const stem of ['a', 'a2', 'b', 'w', 'x', 'cn', 'day']) {
    const result = await load(stem);
    if (!result.ok) throw new Error(result.problems.join('; '));
    pairs.set(stem, result.pair);
  }
});
after(() => fx.cleanup());

const pair = (stem: string): CertificatePair => pairs.get(stem) ?? assert.fail(`no fixture ${stem}`);
const store = (...stems: string[]): CertificateStore => createCertificateStore(stems.map(pair));
/** Which certificate file each server name gets. */
const served = (table: Pick<CertificateTable<unknown>, 'select'>, names: readonly (string | undefined)[]) =>
  names.map((name) => table.select(name)?.pair.certFile);

describe('SNI selection', () => {
  test('an exact name gets the pair that names it', () => {
    const s = store('a', 'b');
    assert.equal(s.select('b.test')?.pair.id, 'certs/b.pem');
    assert.equal(s.select('a.test')?.pair.id, 'certs/a.pem');
  });

  test('a wildcard covers exactly one label: not the bare domain, not two labels', () => {
    const s = store('b', 'w');
    assert.equal(s.current.match('x.w.test')?.pair.id, 'certs/w.pem');
    assert.equal(s.current.match('w.test'), undefined);
    assert.equal(s.current.match('x.y.w.test'), undefined);
    assert.equal(s.current.match('.w.test'), undefined);
    // select falls back to the first pair where match finds nothing
    assert.deepEqual(served(s, ['x.w.test', 'w.test', 'x.y.w.test']), ['certs/w.pem', 'certs/b.pem', 'certs/b.pem']);
  });

  test('no SNI, an empty name or an unknown name gets the first configured pair', () => {
    assert.deepEqual(served(store('b', 'a'), [undefined, '', 'unknown.test', 'localhost']), Array(4).fill('certs/b.pem'));
    assert.deepEqual(served(store('a', 'b'), [undefined, '', 'unknown.test']), Array(3).fill('certs/a.pem'));
    assert.equal(store('a', 'b').select(null)?.pair.id, 'certs/a.pem');
  });

  test('names compare case-insensitively and without a trailing dot, exact and wildcard alike', () => {
    const s = store('b', 'a', 'w');
    assert.deepEqual(served(s, ['B.TEST', 'b.test.', 'A.Test.', 'Y.A.TEST', 'x.W.test.']), [
      'certs/b.pem',
      'certs/b.pem',
      'certs/a.pem',
      'certs/a.pem',
      'certs/w.pem',
    ]);
  });

  test('an exact name beats a wildcard whatever the order; otherwise the first pair that names it wins', () => {
    assert.equal(store('a', 'x').select('x.a.test')?.pair.id, 'certs/x.pem');
    assert.equal(store('x', 'a').select('x.a.test')?.pair.id, 'certs/x.pem');
    // the same through the normalising path (not the lowercase fast path)
    assert.equal(store('a', 'x').select('X.A.Test.')?.pair.id, 'certs/x.pem');
    assert.equal(store('a', 'x').select('y.a.test')?.pair.id, 'certs/a.pem');
    assert.equal(store('a', 'a2').select('a.test')?.pair.id, 'certs/a.pem');
    assert.equal(store('a2', 'a').select('a.test')?.pair.id, 'certs/a2.pem');
  });

  test('a CN-only certificate is selected by its CN', () => {
    assert.equal(store('a', 'cn').select('cn.test')?.pair.id, 'certs/cn.pem');
  });

  test('an empty store selects nothing', () => {
    const s = store();
    assert.equal(s.select('a.test'), undefined);
    assert.equal(s.select(undefined), undefined);
    assert.equal(s.current.fallback, undefined);
  });
});

describe('building the store', () => {
  test('prepare runs once per pair as it enters, never per selection', () => {
    const prepared: string[] = [];
    const s = createCertificateStore([pair('a'), pair('b')], {
      prepare: (p) => {
        prepared.push(p.id);
        return { context: p.fingerprint256 };
      },
    });
    for (let i = 0; i < 100; i++) s.select(i % 2 ? 'a.test' : 'b.test');
    assert.deepEqual(prepared, ['certs/a.pem', 'certs/b.pem']);
    assert.deepEqual(s.select('b.test')?.context, { context: pair('b').fingerprint256 });
  });

  test('a pair not valid by the store clock, a duplicate id or a failing prepare is refused at startup, every problem listed', () => {
    const late = pair('day').notAfterMs + 1;
    assert.throws(
      () => createCertificateStore([pair('a'), pair('day'), pair('a')], { now: () => late }),
      (error: unknown) => {
        assert.ok(error instanceof CertificateStoreError);
        assert.deepEqual(error.problems, [
          `certs/day.pem: certificate expired at ${new Date(pair('day').notAfterMs).toISOString()}`,
          'certs/a.pem: configured twice',
        ]);
        return true;
      },
    );
    assert.throws(
      () =>
        createCertificateStore([pair('b')], {
          prepare: () => {
            throw new Error('unsupported key type');
          },
        }),
      /certs\/b\.pem: the TLS listener refused the pair \(unsupported key type\)/,
    );
  });
});

describe('changes at run time', () => {
  test('put adds a pair at the end: its names serve at once, the fallback stays the first pair', async () => {
    const s = store('b');
    const result = s.put(await load('a'));
    assert.equal(result.ok && result.action, 'added');
    assert.deepEqual(served(s, ['a.test', 'y.a.test', undefined]), ['certs/a.pem', 'certs/a.pem', 'certs/b.pem']);
    assert.deepEqual(
      s.current.entries.map((e) => e.pair.id),
      ['certs/b.pem', 'certs/a.pem'],
    );
  });

  test('put replaces the pair with the same id in its place, and names it dropped stop serving from it', async () => {
    const s = createCertificateStore([pair('b'), { ...pair('a'), id: 'site-a' }, pair('cn')]);
    const result = s.put(await load('a2', { id: 'site-a' }));
    assert.equal(result.ok && result.action, 'replaced');
    assert.deepEqual(
      s.current.entries.map((e) => e.pair.certFile),
      ['certs/b.pem', 'certs/a2.pem', 'certs/cn.pem'],
    );
    assert.equal(s.select('a.test')?.pair.certFile, 'certs/a2.pem');
    // a2 has no *.a.test: the old wildcard must not linger
    assert.equal(s.current.match('y.a.test'), undefined);
  });

  test('replacing the first pair replaces the fallback', async () => {
    const s = createCertificateStore([{ ...pair('a'), id: 'main' }, pair('b')]);
    s.put(await load('a2', { id: 'main' }));
    assert.equal(s.select(undefined)?.pair.certFile, 'certs/a2.pem');
  });

  test('putting the same pair again changes nothing: no new table, no prepare', async () => {
    let prepares = 0;
    const s = createCertificateStore([pair('a')], { prepare: () => ++prepares });
    const table = s.current;
    const result = s.put(await load('a'));
    assert.equal(result.ok && result.action, 'unchanged');
    assert.equal(s.current, table);
    assert.equal(prepares, 1);
  });

  test('the swap is atomic: a table taken before keeps the whole old set, nothing is published before the new table is whole', async () => {
    const names = ['a.test', 'y.a.test', 'b.test', undefined];
    let s: CertificateStore<string> | undefined;
    const seenDuringPrepare: (string | undefined)[][] = [];
    s = createCertificateStore([{ ...pair('a'), id: 'site-a' }, pair('b')], {
      prepare: (p) => {
        // What a handshake arriving while the next generation is built would get.
        if (s !== undefined) seenDuringPrepare.push(served(s, names));
        return p.certFile;
      },
    });
    const before = s.current;
    const oldView = served(before, names);
    assert.deepEqual(oldView, ['certs/a.pem', 'certs/a.pem', 'certs/b.pem', 'certs/a.pem']);

    assert.equal(s.put(await load('a2', { id: 'site-a' })).ok, true);
    assert.deepEqual(seenDuringPrepare, [oldView]);
    assert.notEqual(s.current, before);
    assert.deepEqual(served(before, names), oldView, 'the old table must not be mutated');
    assert.deepEqual(served(s, names), ['certs/a2.pem', 'certs/a2.pem', 'certs/b.pem', 'certs/a2.pem']);
    assert.equal(s.current.match('y.a.test'), undefined);
    assert.ok(Object.isFrozen(before.entries));
  });

  test('a broken replacement is refused with its problems and the old pair keeps serving', async () => {
    const s = createCertificateStore([{ ...pair('a'), id: 'site-a' }, pair('b')]);
    const table = s.current;
    const result = s.put(await load('a', { id: 'site-a', key: 'other.key' }));
    assert.deepEqual(result, { ok: false, id: 'site-a', problems: ['certs/other.key: key does not match certs/a.pem'] });
    assert.equal(s.current, table);
    assert.equal(s.select('y.a.test')?.pair.certFile, 'certs/a.pem');
    const missing = s.put(await load('gone', { id: 'site-a' }));
    assert.equal(missing.ok, false);
    assert.equal(s.select('a.test')?.pair.certFile, 'certs/a.pem');
  });

  test('a pair expired by the store clock, or one prepare refuses, is refused at run time and the old keeps serving', async () => {
    const after = pair('day').notAfterMs + 1;
    const s = createCertificateStore([pair('a')], { now: () => after, prepare: (p) => (p.certFile === 'certs/b.pem' ? assert.fail('no RSA here') : p.id) });
    const expired = s.put(await load('day', { now: () => pair('day').notBeforeMs }));
    assert.deepEqual(expired, {
      ok: false,
      id: 'certs/day.pem',
      problems: [`certs/day.pem: certificate expired at ${new Date(pair('day').notAfterMs).toISOString()}`],
    });
    const refused = s.put(await load('b'));
    assert.equal(refused.ok, false);
    assert.match(refused.ok ? '' : (refused.problems[0] ?? ''), /^certs\/b\.pem: the TLS listener refused the pair \(no RSA here\)$/);
    assert.deepEqual(
      s.current.entries.map((e) => e.pair.id),
      ['certs/a.pem'],
    );
  });

  test('remove drops a pair and its names; the next pair becomes the fallback; an unknown id is false', () => {
    const s = store('a', 'b', 'w');
    assert.equal(s.remove('certs/a.pem'), true);
    assert.deepEqual(served(s, ['a.test', 'y.a.test', undefined, 'x.w.test']), ['certs/b.pem', 'certs/b.pem', 'certs/b.pem', 'certs/w.pem']);
    assert.equal(s.current.match('a.test'), undefined);
    assert.equal(s.remove('certs/a.pem'), false);
    assert.equal(s.remove('certs/b.pem'), true);
    assert.equal(s.remove('certs/w.pem'), true);
    assert.equal(s.select(undefined), undefined);
  });

  test('a removed name served by a later pair falls through to it', () => {
    const s = store('a', 'a2');
    s.remove('certs/a.pem');
    assert.equal(s.select('a.test')?.pair.id, 'certs/a2.pem');
  });
});

describe('expiry report', () => {
  test('pairs expiring within the window are warned about, with days left; others are not', () => {
    const day = pair('day');
    let nowMs = day.notBeforeMs;
    const s = createCertificateStore([pair('a'), day], { now: () => nowMs });
    const soon = s.expiry(7);
    assert.deepEqual(soon.expired, []);
    assert.deepEqual(
      soon.expiringSoon.map((n) => [n.id, n.daysLeft]),
      [['certs/day.pem', 1]],
    );
    assert.equal(soon.expiringSoon[0]?.message, `certs/day.pem: certificate expires in 1 day, at ${new Date(day.notAfterMs).toISOString()} (day.test)`);
    nowMs = day.notAfterMs - 3_600_000;
    assert.match(s.expiry(7).expiringSoon[0]?.message ?? '', /^certs\/day\.pem: certificate expires within a day, at /);
    assert.deepEqual(
      s.expiry(31).expiringSoon.map((n) => n.id),
      ['certs/a.pem', 'certs/day.pem'],
    );
    assert.deepEqual(s.expiry(0).expiringSoon, []);
  });

  test('a pair that expired while serving is reported as expired (it still serves: the log says so)', () => {
    const day = pair('day');
    let nowMs = day.notBeforeMs;
    const s = createCertificateStore([pair('b'), day], { now: () => nowMs });
    nowMs = day.notAfterMs + 2 * 86_400_000;
    const report = s.expiry(7);
    assert.deepEqual(
      report.expired.map((n) => [n.id, n.daysLeft]),
      [['certs/day.pem', -2]],
    );
    assert.equal(report.expired[0]?.message, `certs/day.pem: certificate expired at ${new Date(day.notAfterMs).toISOString()} (day.test)`);
    assert.deepEqual(report.expiringSoon, []);
    assert.equal(s.select('day.test')?.pair.id, 'certs/day.pem');
  });
});

describe('watch', () => {
  test('a watcher that throws neither undoes the swap nor skips the next watcher nor makes put throw', async () => {
    const s = createCertificateStore([pair('a')]);
    let later = 0;
    s.watch(() => {
      throw new Error('listener bug');
    });
    s.watch(() => later++);
    const put = s.put(await load('b'));
    assert.equal(put.ok, true);
    assert.equal(s.select('b.test')?.pair.certFile, 'certs/b.pem');
    assert.equal(later, 1);
  });

  test('called with each new table on put (added, replaced) and remove, after it is current', async () => {
    const s = createCertificateStore([{ ...pair('a'), id: 'site-a' }]);
    const seen: CertificateTable[] = [];
    const currentWhenCalled: boolean[] = [];
    s.watch((table) => {
      seen.push(table);
      currentWhenCalled.push(s.current === table);
    });
    assert.equal(s.put(await load('b')).ok, true);
    assert.equal(seen.length, 1);
    assert.deepEqual(
      seen[0]?.entries.map((e) => e.pair.id),
      ['site-a', 'certs/b.pem'],
    );
    const replaced = s.put(await load('a2', { id: 'site-a' }));
    assert.equal(replaced.ok && replaced.action, 'replaced');
    assert.equal(seen.length, 2);
    assert.equal(seen[1]?.select('a.test')?.pair.certFile, 'certs/a2.pem');
    assert.equal(s.remove('certs/b.pem'), true);
    assert.equal(seen.length, 3);
    assert.deepEqual(
      seen[2]?.entries.map((e) => e.pair.id),
      ['site-a'],
    );
    assert.deepEqual(currentWhenCalled, [true, true, true]);
    // Each call gets its own generation.
    assert.equal(new Set(seen).size, 3);
  });

  test('not called when nothing changes: an unchanged put, a refused put, removing an unknown id', async () => {
    const s = createCertificateStore([pair('a')]);
    let calls = 0;
    s.watch(() => calls++);
    const same = s.put(await load('a'));
    assert.equal(same.ok && same.action, 'unchanged');
    assert.equal(s.put(await load('a', { key: 'other.key' })).ok, false);
    assert.equal(s.remove('certs/nope.pem'), false);
    assert.equal(calls, 0);
  });

  test('every watcher is called; the unsubscribe stops one and leaves the others', async () => {
    const s = store('a');
    const first: CertificateTable[] = [];
    const second: CertificateTable[] = [];
    const stopFirst = s.watch((table) => first.push(table));
    s.watch((table) => second.push(table));
    s.put(await load('b'));
    assert.equal(first.length, 1);
    assert.equal(second.length, 1);
    assert.equal(first[0], second[0]);
    stopFirst();
    s.remove('certs/b.pem');
    assert.equal(first.length, 1);
    assert.equal(second.length, 2);
    // Unsubscribing twice is harmless.
    stopFirst();
    s.put(await load('w'));
    assert.equal(first.length, 1);
    assert.equal(second.length, 3);
  });
});
