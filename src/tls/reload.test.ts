// startReloader with real files in a temporary folder and a real store: changed pairs swap in
// once their files hold still, broken ones are logged and the old pair keeps serving, SIGHUP
// reloads everything, expiry is logged by the store's clock.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createTlsFixtures, type TlsFixtures } from '../../tests/support/tls-fixtures.ts';
import { sleep, until } from '../../tests/support/wait.ts';
import { loadPair, type PairFiles } from '../config/tls-files.ts';
import type { Fields, Level, Logger } from '../log/logger.ts';
import { type CertificatePair, iso } from './certificate.ts';
import { startReloader } from './reload.ts';
import { type CertificateStore, createCertificateStore } from './store.ts';

const POLL_MS = 50;

// Made when the module loads, not in a `before` hook: Bun times hooks out after 5 s whatever
// their `timeout` option says and kills the openssl runs, which a loaded machine can exceed.
const fx: TlsFixtures = createTlsFixtures();
after(() => fx.cleanup());

interface LogCall {
  readonly level: Level;
  readonly msg: string;
  readonly fields: Fields;
}

/** A Logger that keeps every call, unserialised. */
function recordingLogger(): { logger: Logger; calls: LogCall[]; messages: () => string[]; find: (msg: string) => LogCall[] } {
  const calls: LogCall[] = [];
  const log = (level: Level, msg: string, fields: Fields = {}) => {
    calls.push({ level, msg, fields });
  };
  const logger: Logger = {
    log,
    logSerialized: (level, msg, serialized) => log(level, msg, JSON.parse(`{${serialized.slice(1)}}`)),
    info: (msg, fields) => log('info', msg, fields),
    warn: (msg, fields) => log('warn', msg, fields),
    error: (msg, fields) => log('error', msg, fields),
    flush: () => {},
  };
  return { logger, calls, messages: () => calls.map((c) => c.msg), find: (msg) => calls.filter((c) => c.msg === msg) };
}

const fixture = (file: string): string => readFileSync(fx.path(file), 'utf8');

/** Replaces `path` as deploy tools and certbot do: a new file renamed over the old one. */
function replace(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

let sites = 0;
/** A pair's two files in a fresh folder under the fixtures' dir, holding the fixture `stem`. */
function site(stem: string, at = 'tls.certificates[0]'): { files: PairFiles; shown: string; folder: string } {
  const folder = `live-${++sites}`;
  mkdirSync(join(fx.dir, folder));
  const files: PairFiles = { cert: join(fx.dir, folder, 'cert.pem'), key: join(fx.dir, folder, 'key.pem'), at };
  writeFileSync(files.cert, fixture(`${stem}.pem`));
  writeFileSync(files.key, fixture(`${stem}.key`));
  return { files, shown: `${folder}/cert.pem`, folder };
}

async function pairOf(files: PairFiles): Promise<CertificatePair> {
  const result = await loadPair(files, fx.dir);
  if (!result.ok) assert.fail(result.problems.join('; '));
  return result.pair;
}

/** A loader that counts its calls: what the reloader reads, and when. */
function countingLoad() {
  const loads: string[] = [];
  return {
    loads,
    load: (files: PairFiles) => {
      loads.push(files.cert);
      return loadPair(files, fx.dir);
    },
  };
}

const fingerprintOf = (stem: string): Promise<string> =>
  pairOf({ cert: fx.path(`${stem}.pem`), key: fx.path(`${stem}.key`), at: 'x' }).then((p) => p.fingerprint256);
const served = (store: CertificateStore, name = 'a.test') => store.select(name)?.pair.fingerprint256;

test('replacing both files swaps the pair in for new handshakes and logs it', async () => {
  const { files, shown } = site('a');
  const store = createCertificateStore([await pairOf(files)]);
  const { logger, find, calls } = recordingLogger();
  const { load, loads } = countingLoad();
  const reloader = await startReloader({ store, files: [files], load, logger, pollMs: POLL_MS });
  try {
    assert.equal(served(store), await fingerprintOf('a'));
    assert.deepEqual(calls, [], 'nothing to say at start about a healthy pair');
    await sleep(POLL_MS * 3);
    assert.deepEqual(loads, [], 'unchanged files are not read again');

    replace(files.cert, fixture('a2.pem'));
    replace(files.key, fixture('a2.key'));
    await until(() => find('certificate reloaded').length > 0, 3000, 'the reload');
    const a2 = await fingerprintOf('a2');
    assert.equal(served(store), a2);
    assert.equal(store.select(undefined)?.pair.certFile, shown);
    // a2 names a.test only: the old pair's wildcard is gone with it.
    assert.equal(store.current.match('y.a.test'), undefined);
    const [line] = find('certificate reloaded');
    assert.equal(line?.level, 'info');
    assert.deepEqual(line?.fields, {
      file: shown,
      names: ['a.test'],
      not_after: iso(store.select('a.test')?.pair.notAfterMs ?? 0),
      fingerprint256: a2,
      reason: 'file changed',
    });
    assert.deepEqual(find('certificate reload failed'), []);
    await sleep(POLL_MS * 3);
    assert.equal(loads.length, 1, 'loaded once, not again while the files stay as they are');
  } finally {
    reloader.stop();
  }
  // Stopped: a change is no longer seen.
  replace(files.cert, fixture('a.pem'));
  replace(files.key, fixture('a.key'));
  await sleep(POLL_MS * 4);
  assert.equal(served(store), await fingerprintOf('a2'));
});

test('a broken change is logged with its file and the old pair keeps serving', async () => {
  const { files, shown, folder } = site('a');
  const store = createCertificateStore([await pairOf(files)]);
  const { logger, find } = recordingLogger();
  const reloader = await startReloader({ store, files: [files], load: (f) => loadPair(f, fx.dir), logger, pollMs: POLL_MS });
  const a = await fingerprintOf('a');
  try {
    replace(files.key, fixture('garbage.key'));
    await until(() => find('certificate reload failed').length > 0, 3000, 'the failed reload');
    const [failed] = find('certificate reload failed');
    assert.equal(failed?.level, 'error');
    assert.deepEqual(failed?.fields, {
      file: shown,
      problems: [`${folder}/key.pem: no PEM private key found`],
      at: 'tls.certificates[0]',
      reason: 'file changed',
      serving: 'previous certificate',
    });
    assert.equal(served(store), a);
    assert.equal(store.current.match('y.a.test')?.pair.fingerprint256, a);

    // A deleted file: the same, naming it.
    rmSync(files.cert);
    await until(() => find('certificate reload failed').length > 1, 3000, 'the second failed reload');
    assert.deepEqual(find('certificate reload failed')[1]?.fields.problems, [`${shown}: file not found`]);
    assert.equal(served(store), a);

    // Fixed: the next good pair is served.
    replace(files.cert, fixture('a2.pem'));
    replace(files.key, fixture('a2.key'));
    await until(() => find('certificate reloaded').length > 0, 3000, 'the reload after the fix');
    assert.equal(served(store), await fingerprintOf('a2'));
    assert.equal(find('certificate reload failed').length, 2);
  } finally {
    reloader.stop();
  }
});

test('a pair is not read while its files keep changing, only once they hold still for a tick', async () => {
  const { files } = site('a');
  const store = createCertificateStore([await pairOf(files)]);
  const { logger, find } = recordingLogger();
  const { load, loads } = countingLoad();
  // A slower poll than the other cases, and a write every few ms: two ticks with no write
  // between them would need the event loop to stall for a whole poll period.
  const pollMs = 150;
  const reloader = await startReloader({ store, files: [files], load, logger, pollMs });
  try {
    // The certificate is rewritten (growing each time, so every tick sees a new file) for about
    // six ticks while the key is still the old one: a half-written change.
    const a2 = fixture('a2.pem');
    const end = Date.now() + pollMs * 6;
    for (let i = 0; Date.now() < end; i++) {
      replace(files.cert, `${a2}# writing ${'.'.repeat(i)}\n`);
      await sleep(5);
    }
    assert.deepEqual(loads, [], 'nothing read while the files were changing');
    assert.equal(served(store), await fingerprintOf('a'));
    // The key lands with the last write: one read, of the finished pair.
    replace(files.cert, a2);
    replace(files.key, fixture('a2.key'));
    await until(() => find('certificate reloaded').length > 0, 3000, 'the reload of the finished pair');
    assert.equal(loads.length, 1);
    assert.deepEqual(find('certificate reload failed'), []);
    assert.equal(served(store), await fingerprintOf('a2'));
  } finally {
    reloader.stop();
  }
});

test('a change left half-written (certificate new, key old) is refused, then served once the key follows', async () => {
  const { files, shown, folder } = site('a');
  const store = createCertificateStore([await pairOf(files)]);
  const { logger, find } = recordingLogger();
  const reloader = await startReloader({ store, files: [files], load: (f) => loadPair(f, fx.dir), logger, pollMs: POLL_MS });
  try {
    replace(files.cert, fixture('a2.pem'));
    await until(() => find('certificate reload failed').length > 0, 3000, 'the refused half-written pair');
    assert.deepEqual(find('certificate reload failed')[0]?.fields.problems, [`${folder}/key.pem: key does not match ${shown}`]);
    assert.equal(served(store), await fingerprintOf('a'));
    replace(files.key, fixture('a2.key'));
    await until(() => find('certificate reloaded').length > 0, 3000, 'the reload once the key followed');
    assert.equal(served(store), await fingerprintOf('a2'));
  } finally {
    reloader.stop();
  }
});

test('reloadAll reads every pair now and counts what it did', async () => {
  const first = site('a', 'tls.certificates[0]');
  const second = site('b', 'tls.certificates[1]');
  const third = site('w', 'tls.certificates[2]');
  const all = [first, second, third].map((s) => s.files);
  const store = createCertificateStore(await Promise.all(all.map(pairOf)));
  const { logger, find, calls } = recordingLogger();
  const { load, loads } = countingLoad();
  // No polling within the test: only reloadAll reads.
  const reloader = await startReloader({ store, files: all, load, logger, pollMs: 60_000 });
  const w = await fingerprintOf('w');
  try {
    replace(first.files.cert, fixture('a2.pem'));
    replace(first.files.key, fixture('a2.key'));
    replace(third.files.key, fixture('garbage.key'));
    await reloader.reloadAll('SIGHUP');
    assert.deepEqual(loads, [first.files.cert, second.files.cert, third.files.cert]);
    assert.deepEqual(
      calls.map((c) => [c.level, c.msg, c.fields.file ?? null]),
      [
        ['info', 'certificate reloaded', first.shown],
        ['error', 'certificate reload failed', third.shown],
        ['info', 'certificates reloaded', null],
      ],
    );
    assert.equal(find('certificate reloaded')[0]?.fields.reason, 'SIGHUP');
    assert.equal(find('certificate reload failed')[0]?.fields.reason, 'SIGHUP');
    assert.equal(find('certificate reload failed')[0]?.fields.at, 'tls.certificates[2]');
    assert.deepEqual(find('certificates reloaded')[0]?.fields, { reason: 'SIGHUP', replaced: 1, unchanged: 1, failed: 1 });
    assert.equal(served(store), await fingerprintOf('a2'));
    assert.equal(served(store, 'b.test'), await fingerprintOf('b'));
    assert.equal(served(store, 'x.w.test'), w);

    // Nothing changed since: the good pairs are unchanged (not logged), the broken one is refused again.
    calls.length = 0;
    await reloader.reloadAll('SIGHUP');
    assert.deepEqual(
      calls.map((c) => c.msg),
      ['certificate reload failed', 'certificates reloaded'],
    );
    assert.deepEqual(calls[1]?.fields, { reason: 'SIGHUP', replaced: 0, unchanged: 2, failed: 1 });
  } finally {
    reloader.stop();
  }
});

test('expiry is judged by the store clock: a warning at start, an error once expired', async () => {
  const { files, shown } = site('a');
  const pair = await pairOf(files);
  const DAY_MS = 86_400_000;
  let nowMs = pair.notAfterMs - 3.5 * DAY_MS;
  const store = createCertificateStore([pair], { now: () => nowMs });
  const { logger, find } = recordingLogger();
  const reloader = await startReloader({ store, files: [files], load: (f) => loadPair(f, fx.dir), logger, pollMs: 60_000, expiryCheckMs: POLL_MS });
  try {
    // Checked at start.
    assert.deepEqual(find('certificate expires soon'), [
      { level: 'warn', msg: 'certificate expires soon', fields: { file: shown, names: ['a.test', '*.a.test'], not_after: iso(pair.notAfterMs), days_left: 3 } },
    ]);
    assert.deepEqual(find('certificate expired'), []);

    nowMs = pair.notAfterMs + 1000;
    await until(() => find('certificate expired').length > 0, 3000, 'the expiry check');
    assert.deepEqual(find('certificate expired')[0], {
      level: 'error',
      msg: 'certificate expired',
      fields: {
        file: shown,
        names: ['a.test', '*.a.test'],
        not_after: iso(pair.notAfterMs),
        message: `${shown}: certificate expired at ${iso(pair.notAfterMs)} (a.test, *.a.test)`,
      },
    });
    // It still serves: the log is what tells.
    assert.equal(served(store), pair.fingerprint256);
  } finally {
    reloader.stop();
  }
});

test('warnDays sets the window; a pair far from expiry says nothing', async () => {
  const { files } = site('a');
  const pair = await pairOf(files);
  const nowMs = pair.notAfterMs - 20 * 86_400_000;
  const quiet = recordingLogger();
  const r1 = await startReloader({
    store: createCertificateStore([pair], { now: () => nowMs }),
    files: [files],
    load: (f) => loadPair(f, fx.dir),
    logger: quiet.logger,
  });
  r1.stop();
  assert.deepEqual(quiet.calls, []);
  const wide = recordingLogger();
  const r2 = await startReloader({
    store: createCertificateStore([pair], { now: () => nowMs }),
    files: [files],
    load: (f) => loadPair(f, fx.dir),
    logger: wide.logger,
    warnDays: 30,
  });
  r2.stop();
  assert.deepEqual(
    wide.calls.map((c) => [c.msg, c.fields.days_left]),
    [['certificate expires soon', 20]],
  );
});
