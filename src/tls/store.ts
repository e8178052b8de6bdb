// The certificates a TLS listener serves, chosen per handshake by SNI from lookup tables built
// when the set changes (startup, reload, ACME), swapped as one reference. It reads no files and
// builds no runtime TLS context itself: `prepare` does that once per pair, for the listener.
import { type CertificatePair, type CertificatePairResult, iso, validityProblem } from './certificate.ts';
import { normaliseName, wildcardParent } from './names.ts';

/** A pair in the store, with what the listener built for it once (`prepare`). */
export interface StoreEntry<C = undefined> {
  readonly pair: CertificatePair;
  /** `prepare(pair)`'s result, e.g. a node:tls `SecureContext`; undefined without `prepare`. */
  readonly context: C;
}

/**
 * One immutable generation of the store. A handshake reads one table, so it sees the set before
 * a change or after it, never a mix.
 */
export interface CertificateTable<C = undefined> {
  /** Every pair in configured order (an added pair goes last, a replaced one keeps its place). */
  readonly entries: readonly StoreEntry<C>[];
  /** The pair served without SNI or for a name no pair covers: the first in order. */
  readonly fallback: StoreEntry<C> | undefined;
  /**
   * The pair for a handshake: exact name, then a wildcard one label up, then `fallback`.
   * Undefined only when the store is empty.
   */
  select(serverName: string | null | undefined): StoreEntry<C> | undefined;
  /** Like `select` without the fallback: the pair that covers `serverName`, if one does (ACME asks this). */
  match(serverName: string): StoreEntry<C> | undefined;
}

/** Options of `createCertificateStore`. */
export interface CertificateStoreOptions<C> {
  /** The clock validity and expiry are judged by, ms since the epoch. @default Date.now */
  readonly now?: () => number;
  /**
   * Builds what the listener needs per pair, once, as the pair enters the store (never per
   * handshake). A throw refuses the pair with the error's message.
   */
  readonly prepare?: (pair: CertificatePair) => C;
}

/** What `put` did. A refused pair changes nothing: the pair it would replace keeps serving. */
export type PutResult<C = undefined> =
  | { readonly ok: true; readonly action: 'added' | 'replaced' | 'unchanged'; readonly entry: StoreEntry<C> }
  | { readonly ok: false; readonly id: string; readonly problems: readonly string[] };

/** One pair the expiry report names. */
export interface ExpiryNote {
  readonly id: string;
  readonly certFile: string;
  readonly names: readonly string[];
  readonly notAfterMs: number;
  /** Whole days left, rounded down; negative once expired. */
  readonly daysLeft: number;
  /** A log line's message, naming the file. */
  readonly message: string;
}

/** Pairs already expired (an error at run time) and pairs that expire within the window asked (a warning). */
export interface ExpiryReport {
  readonly expired: readonly ExpiryNote[];
  readonly expiringSoon: readonly ExpiryNote[];
}

/** The swappable set of certificates one TLS listener serves. */
export interface CertificateStore<C = undefined> {
  /** The table handshakes read now. */
  readonly current: CertificateTable<C>;
  /** `current.select(serverName)`: what an SNI callback calls. */
  select(serverName: string | null | undefined): StoreEntry<C> | undefined;
  /**
   * Adds a pair, or replaces the one with the same id (an identical pair is left alone). A
   * result with problems, a pair not valid now, or a `prepare` that throws is refused and the
   * store stays as it was. Never throws.
   */
  put(result: CertificatePairResult): PutResult<C>;
  /** Removes the pair with this id; false when there is none. The next in order may become the fallback. */
  remove(id: string): boolean;
  /** Pairs expired at `now`, and pairs expiring within `withinDays` days (for the run-time error log). */
  expiry(withinDays: number): ExpiryReport;
  /**
   * Calls `onSwap` with every new table after it is swapped in (what a listener whose default
   * context lives outside the SNI lookup needs); returns the unsubscribe.
   */
  watch(onSwap: (table: CertificateTable<C>) => void): () => void;
}

/** Thrown by `createCertificateStore` for a startup set it cannot serve; `problems` has one line each. */
export class CertificateStoreError extends Error {
  override readonly name = 'CertificateStoreError';
  constructor(readonly problems: readonly string[]) {
    super(`certificate store: ${problems.join('; ')}`);
  }
}

const DAY_MS = 86_400_000;

/**
 * Builds the store from the pairs the config names, in its order (the first is the fallback).
 * Throws `CertificateStoreError` when a pair is not valid now, two pairs share an id, or
 * `prepare` throws: startup refuses what a run-time `put` would refuse.
 */
export function createCertificateStore<C = undefined>(pairs: readonly CertificatePair[], options: CertificateStoreOptions<C> = {}): CertificateStore<C> {
  const now = options.now ?? Date.now;
  // Without `prepare`, C is its default `undefined`, which is what this returns.
  const prepare = options.prepare ?? ((() => undefined) as unknown as (pair: CertificatePair) => C);

  const admit = (pair: CertificatePair): { entry: StoreEntry<C> } | { problems: string[] } => {
    const invalid = validityProblem(pair, now());
    if (invalid !== undefined) return { problems: [invalid] };
    try {
      return { entry: { pair, context: prepare(pair) } };
    } catch (error) {
      return { problems: [`${pair.certFile}: the TLS listener refused the pair (${error instanceof Error ? error.message : String(error)})`] };
    }
  };

  const problems: string[] = [];
  const entries: StoreEntry<C>[] = [];
  const ids = new Set<string>();
  for (const pair of pairs) {
    if (ids.has(pair.id)) {
      problems.push(`${pair.certFile}: configured twice`);
      continue;
    }
    ids.add(pair.id);
    const admitted = admit(pair);
    if ('problems' in admitted) problems.push(...admitted.problems);
    else entries.push(admitted.entry);
  }
  if (problems.length > 0) throw new CertificateStoreError(problems);

  let current = compileTable(entries);
  const watchers = new Set<(table: CertificateTable<C>) => void>();
  const swap = (next: CertificateTable<C>) => {
    current = next;
    // A watcher's failure must not undo the swap, skip the others or make put/remove throw.
    for (const onSwap of watchers) {
      try {
        onSwap(next);
      } catch {}
    }
  };

  return {
    get current() {
      return current;
    },
    select(serverName) {
      return current.select(serverName);
    },
    put(result) {
      if (!result.ok) return { ok: false, id: result.id, problems: result.problems };
      const { pair } = result;
      const live = current.entries;
      const index = live.findIndex((entry) => entry.pair.id === pair.id);
      const old = live[index];
      if (old !== undefined && old.pair.chainPem === pair.chainPem && old.pair.keyPem === pair.keyPem) {
        return { ok: true, action: 'unchanged', entry: old };
      }
      const admitted = admit(pair);
      if ('problems' in admitted) return { ok: false, id: pair.id, problems: admitted.problems };
      const next = index < 0 ? [...live, admitted.entry] : live.map((entry, i) => (i === index ? admitted.entry : entry));
      // The swap: one assignment, after the whole next table is built.
      swap(compileTable(next));
      return { ok: true, action: index < 0 ? 'added' : 'replaced', entry: admitted.entry };
    },
    remove(id) {
      const next = current.entries.filter((entry) => entry.pair.id !== id);
      if (next.length === current.entries.length) return false;
      swap(compileTable(next));
      return true;
    },
    watch(onSwap) {
      watchers.add(onSwap);
      return () => watchers.delete(onSwap);
    },
    expiry(withinDays) {
      const nowMs = now();
      const expired: ExpiryNote[] = [];
      const expiringSoon: ExpiryNote[] = [];
      for (const { pair } of current.entries) {
        const leftMs = pair.notAfterMs - nowMs;
        const daysLeft = Math.floor(leftMs / DAY_MS);
        const note = { id: pair.id, certFile: pair.certFile, names: pair.names, notAfterMs: pair.notAfterMs, daysLeft };
        const serves = pair.names.length > 0 ? ` (${pair.names.join(', ')})` : '';
        if (leftMs < 0) expired.push({ ...note, message: `${pair.certFile}: certificate expired at ${iso(pair.notAfterMs)}${serves}` });
        else if (leftMs <= withinDays * DAY_MS) {
          const when = daysLeft === 0 ? 'within a day' : `in ${daysLeft} day${daysLeft === 1 ? '' : 's'}`;
          expiringSoon.push({ ...note, message: `${pair.certFile}: certificate expires ${when}, at ${iso(pair.notAfterMs)}${serves}` });
        }
      }
      return { expired, expiringSoon };
    },
  };
}

/**
 * Builds one generation's lookup maps. A name served by several pairs goes to the first in
 * order; an exact name always beats a wildcard, whatever the order.
 */
function compileTable<C>(entries: readonly StoreEntry<C>[]): CertificateTable<C> {
  const exact = new Map<string, StoreEntry<C>>();
  // Keyed by the domain under the `*.`: `*.a.test` is found as `a.test`.
  const wildcard = new Map<string, StoreEntry<C>>();
  for (const entry of entries) {
    for (const name of entry.pair.names) {
      const table = name.startsWith('*.') ? wildcard : exact;
      const key = name.startsWith('*.') ? name.slice(2) : name;
      if (!table.has(key)) table.set(key, entry);
    }
  }
  const fallback = entries[0];
  const match = (serverName: string): StoreEntry<C> | undefined => {
    // Most clients send the name lowercase already: one map lookup without a new string.
    const hit = exact.get(serverName);
    if (hit !== undefined) return hit;
    const name = normaliseName(serverName);
    const parent = wildcardParent(name);
    return exact.get(name) ?? (parent === undefined ? undefined : wildcard.get(parent));
  };
  return Object.freeze({
    entries: Object.freeze([...entries]),
    fallback,
    match,
    select: (serverName: string | null | undefined) => (serverName ? (match(serverName) ?? fallback) : fallback),
  });
}
