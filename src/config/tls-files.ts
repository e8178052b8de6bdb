// The files a config's TLS settings name, read and checked once at load (and again by certificate
// reload): certificate pairs for the TLS listener, the client-certificate CA, each route's
// upstream CA and client certificate. Paths are relative to the routes file. Every problem names
// its file, so `switchyard check` and a failed start say the same thing.
import { createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { impliedAlgorithm } from '../access/jwt.ts';
import { type CertificatePair, loadCaBundle, loadCertificatePair } from '../tls/certificate.ts';
import type { UpstreamTlsOptions } from '../transport/types.ts';
import { BCRYPT_HASH, upstreamOrigins } from './schema.ts';
import type { Auth, Config } from './types.ts';

/** One configured pair: where its files are (absolute, for reading and watching) and how messages name them. */
export interface PairFiles {
  readonly cert: string;
  readonly key: string;
  /** `tls.certificates[0]`, for messages. */
  readonly at: string;
}

/** What the TLS settings of a config need from disk, read and checked. */
export interface TlsFiles {
  /** The listener's pairs in configured order (the first is the default); empty without `tls`. */
  readonly pairs: readonly CertificatePair[];
  /** Where each pair's files are, in the same order, for reload. */
  readonly pairFiles: readonly PairFiles[];
  /** `tls.clientAuth.ca` as PEM, or null. */
  readonly clientCa: string | null;
  /** Per route index: its compiled upstream TLS options (one object per route, for the transport's pools). */
  readonly upstreamTls: ReadonlyMap<number, UpstreamTlsOptions>;
  /** Not fatal, but worth a log line at every start (an insecure upstream, a chain warning). */
  readonly warnings: readonly string[];
  /** Per route index: the text of each `auth` jwt `key`, in the order they appear (access/auth.ts compileAuth). */
  readonly jwtKeys: ReadonlyMap<number, readonly string[]>;
  /** Per route index: the users of each `auth` basic `file` (htpasswd), in the order they appear. */
  readonly htpasswd: ReadonlyMap<number, readonly Readonly<Record<string, string>>[]>;
}

export type TlsFilesResult = { ok: true; files: TlsFiles } | { ok: false; problems: string[] };

/** Nothing to read: a config without TLS settings. */
export const NO_TLS_FILES: TlsFiles = {
  pairs: [],
  pairFiles: [],
  clientCa: null,
  upstreamTls: new Map(),
  warnings: [],
  jwtKeys: new Map(),
  htpasswd: new Map(),
};

/** Reads and checks one listener pair. */
export async function loadPair(files: PairFiles, base: string, now?: () => number) {
  return loadCertificatePair({ cert: files.cert, key: files.key }, { relativeTo: base, now });
}

/**
 * Reads every file the config's TLS settings name, relative to `routesFile`'s folder. All
 * problems at once, each naming its file (and where it is configured when that helps).
 */
export async function loadTlsFiles(config: Config, routesFile: string, now?: () => number): Promise<TlsFilesResult> {
  const base = dirname(routesFile);
  const at = (path: string) => (isAbsolute(path) ? path : resolve(base, path));
  const problems: string[] = [];
  const warnings: string[] = [];
  const pairs: CertificatePair[] = [];
  const pairFiles: PairFiles[] = [];
  let clientCa: string | null = null;
  const upstreamTls = new Map<number, UpstreamTlsOptions>();

  const tls = config.tls;
  if (tls !== undefined) {
    const results = await Promise.all(
      tls.certificates.map((files, i) => {
        const pf: PairFiles = { cert: at(files.cert), key: at(files.key), at: `tls.certificates[${i}]` };
        pairFiles.push(pf);
        return loadPair(pf, base, now);
      }),
    );
    for (const result of results) {
      if (result.ok) {
        pairs.push(result.pair);
        warnings.push(...result.warnings);
      } else problems.push(...result.problems);
    }
    if (tls.clientAuth !== undefined) {
      const read = await loadCaBundle(at(tls.clientAuth.ca), 'client CA bundle (tls.clientAuth.ca)', base);
      if (read.ok) clientCa = read.pem;
      else problems.push(...read.problems);
    }
  }

  await Promise.all(
    config.routes.map(async (route, i) => {
      const options = route.upstreamTls;
      if (options === undefined) return;
      let ca: string | undefined;
      let cert: string | undefined;
      let key: string | undefined;
      if (options.ca !== undefined) {
        const read = await loadCaBundle(at(options.ca), `CA bundle (routes[${i}].upstreamTls.ca)`, base);
        if (read.ok) ca = read.pem;
        else problems.push(...read.problems);
      }
      if (options.cert !== undefined && options.key !== undefined) {
        const result = await loadCertificatePair({ cert: at(options.cert), key: at(options.key) }, { relativeTo: base, now });
        if (result.ok) {
          cert = result.pair.chainPem;
          key = result.pair.keyPem;
        } else problems.push(...result.problems.map((p) => `${p} (routes[${i}].upstreamTls)`));
      }
      const insecure = options.insecure === true;
      if (insecure) warnings.push(`routes[${i}].upstreamTls.insecure: the certificate of ${upstreamOrigins(route.upstream).join(', ')} is not verified`);
      upstreamTls.set(i, Object.freeze({ ca, serverName: options.serverName, cert, key, insecure }));
    }),
  );

  const jwtKeys = new Map<number, string[]>();
  const htpasswd = new Map<number, Record<string, string>[]>();
  await Promise.all(
    config.routes.map(async (route, i) => {
      const { keys, users } = await loadAuthFiles(route.auth, `routes[${i}].auth`, at, problems);
      if (keys.length > 0) jwtKeys.set(i, keys);
      if (users.length > 0) htpasswd.set(i, users);
    }),
  );

  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, files: { pairs, pairFiles, clientCa, upstreamTls, warnings, jwtKeys, htpasswd } };
}

/**
 * The key text of every `jwt` entry with a `key` in `auth`, in order (a file is read; PEM or JWK
 * text is taken as it is), each checked to be a public key jose can use. Problems name the path.
 */
async function loadAuthFiles(
  auth: Config['routes'][number]['auth'],
  path: string,
  at: (p: string) => string,
  problems: string[],
): Promise<{ keys: string[]; users: Record<string, string>[] }> {
  const keys: string[] = [];
  const users: Record<string, string>[] = [];
  if (auth === undefined) return { keys, users };
  const entries: [Auth, string][] =
    'anyOf' in auth
      ? auth.anyOf.map((a, j) => [a, `${path}.anyOf[${j}]`])
      : 'allOf' in auth
        ? auth.allOf.map((a, j) => [a, `${path}.allOf[${j}]`])
        : [[auth, path]];
  for (const [entry, where] of entries) {
    if ('basic' in entry && entry.basic.file !== undefined) {
      users.push(await loadHtpasswd(entry.basic.file, `${where}.basic.file`, at, problems));
      continue;
    }
    if (!('jwt' in entry) || entry.jwt.key === undefined) continue;
    const key = entry.jwt.key;
    const inline = key.trimStart().startsWith('-----BEGIN') || key.trimStart().startsWith('{');
    let text = key;
    if (!inline) {
      try {
        text = await readFile(at(key), 'utf8');
      } catch (error) {
        const code = (error as { code?: string }).code;
        problems.push(`${where}.jwt.key: cannot read ${key} (${code === 'ENOENT' ? 'file not found' : (code ?? String(error))})`);
        keys.push('');
        continue;
      }
    }
    try {
      // With pinned algorithms the key need not imply one, but it must be a public key.
      if (entry.jwt.algorithms === undefined) impliedAlgorithm(text);
      else if (!text.trimStart().startsWith('{')) createPublicKey(text);
    } catch (error) {
      problems.push(`${where}.jwt.key: ${inline ? 'the key' : key} is not a usable public key (PEM or JWK): ${(error as Error).message.split('\n')[0]}`);
    }
    keys.push(text);
  }
  return { keys, users };
}

/** An htpasswd file's users (`name:hash` lines; `#` comments), bcrypt hashes only (`htpasswd -B`). */
async function loadHtpasswd(file: string, where: string, at: (p: string) => string, problems: string[]): Promise<Record<string, string>> {
  const users: Record<string, string> = {};
  let text: string;
  try {
    text = await readFile(at(file), 'utf8');
  } catch (error) {
    const code = (error as { code?: string }).code;
    problems.push(`${where}: cannot read ${file} (${code === 'ENOENT' ? 'file not found' : (code ?? String(error))})`);
    return users;
  }
  const before = problems.length;
  text.split(/\r?\n/).forEach((raw, n) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    const name = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (colon <= 0) problems.push(`${where}: ${file} line ${n + 1}: not "name:hash"`);
    else if (!BCRYPT_HASH.test(hash)) problems.push(`${where}: ${file} line ${n + 1} (${name}): not a bcrypt hash (write it with htpasswd -B)`);
    else users[name] = hash;
  });
  if (Object.keys(users).length === 0 && problems.length === before) problems.push(`${where}: ${file} names no user`);
  return users;
}
