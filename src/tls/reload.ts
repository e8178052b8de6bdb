// Certificates change without a restart: the files of every configured pair are polled (a stat
// per file per tick, the same on Bun, Deno and Node, and it sees atomic renames that fs.watch
// loses), a pair whose files changed and then held still for one tick is loaded and checked
// again, and the store swaps it in for new handshakes. A broken pair is logged with its file and
// the old one keeps serving. SIGHUP reloads every pair at once. Expiry is checked hourly.
import { statSync } from 'node:fs';
import type { PairFiles } from '../config/tls-files.ts';
import type { Logger } from '../log/logger.ts';
import { type CertificatePairResult, iso } from './certificate.ts';
import type { CertificateStore } from './store.ts';

export interface ReloaderOptions<C> {
  readonly store: CertificateStore<C>;
  /** The pairs' files, in configured order. */
  readonly files: readonly PairFiles[];
  /** Reads and checks one pair (config/tls-files.ts `loadPair`). */
  readonly load: (files: PairFiles) => Promise<CertificatePairResult>;
  readonly logger: Logger;
  /** @default 500 */
  readonly pollMs?: number;
  /** Warn this many days before a certificate expires. @default 14 */
  readonly warnDays?: number;
  /** @default 3_600_000 (hourly) */
  readonly expiryCheckMs?: number;
}

export interface Reloader {
  /** Loads every pair again now (SIGHUP); resolves when each is swapped in or refused. */
  reloadAll(reason: string): Promise<void>;
  stop(): void;
}

/**
 * What tells a changed file from the same one: size, mtime and inode (a rename changes the
 * inode). Synchronous: a cached stat is microseconds, and Bun's promise stat showed up in
 * profiles of the request path (its thread-pool round trip per poll).
 */
async function signature(path: string): Promise<string> {
  try {
    const s = statSync(path);
    return `${s.size}:${s.mtimeMs}:${s.ino}`;
  } catch (error) {
    return `missing:${(error as { code?: string }).code ?? ''}`;
  }
}

async function pairSignature(files: PairFiles): Promise<string> {
  const [cert, key] = await Promise.all([signature(files.cert), signature(files.key)]);
  return `${cert}|${key}`;
}

export async function startReloader<C>(options: ReloaderOptions<C>): Promise<Reloader> {
  const { store, files, load, logger } = options;
  const warnDays = options.warnDays ?? 14;
  // Per pair: the signature last loaded, and one seen a tick ago that has not settled yet.
  const loaded = await Promise.all(files.map(pairSignature));
  const pending: (string | null)[] = files.map(() => null);
  let busy = false;

  const apply = async (i: number, why: string): Promise<'replaced' | 'unchanged' | 'failed'> => {
    const pf = files[i] as PairFiles;
    const result = await load(pf);
    const put = store.put(result);
    if (!put.ok) {
      logger.error('certificate reload failed', { file: put.id, problems: put.problems, at: pf.at, reason: why, serving: 'previous certificate' });
      return 'failed';
    }
    if (put.action === 'unchanged') return 'unchanged';
    const pair = put.entry.pair;
    logger.info('certificate reloaded', {
      file: pair.certFile,
      names: pair.names,
      not_after: iso(pair.notAfterMs),
      fingerprint256: pair.fingerprint256,
      reason: why,
    });
    return 'replaced';
  };

  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      for (let i = 0; i < files.length; i++) {
        const now = await pairSignature(files[i] as PairFiles);
        if (now === loaded[i]) {
          pending[i] = null;
          continue;
        }
        // Written in two steps (cert, then key): wait for one tick without change.
        if (now !== pending[i]) {
          pending[i] = now;
          continue;
        }
        loaded[i] = now;
        pending[i] = null;
        await apply(i, 'file changed');
      }
    } finally {
      busy = false;
    }
  };

  const checkExpiry = () => {
    const report = store.expiry(warnDays);
    for (const note of report.expired)
      logger.error('certificate expired', { file: note.certFile, names: note.names, not_after: iso(note.notAfterMs), message: note.message });
    for (const note of report.expiringSoon)
      logger.warn('certificate expires soon', { file: note.certFile, names: note.names, not_after: iso(note.notAfterMs), days_left: note.daysLeft });
  };
  checkExpiry();

  const poll = setInterval(
    () =>
      void tick().catch((error) =>
        logger.error('certificate reload failed', { error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      ),
    options.pollMs ?? 500,
  );
  const expiry = setInterval(checkExpiry, options.expiryCheckMs ?? 3_600_000);

  return {
    async reloadAll(reason) {
      const counts = { replaced: 0, unchanged: 0, failed: 0 };
      for (let i = 0; i < files.length; i++) {
        loaded[i] = await pairSignature(files[i] as PairFiles);
        pending[i] = null;
        counts[await apply(i, reason)]++;
      }
      logger.info('certificates reloaded', { reason, ...counts });
      checkExpiry();
    },
    stop() {
      clearInterval(poll);
      clearInterval(expiry);
    },
  };
}
