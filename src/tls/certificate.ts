// One certificate pair (a PEM chain and its private key) checked before it may serve: the chain
// as served, the names it covers, its validity window, and every problem named by its file.
// It neither selects certificates (store.ts) nor builds a runtime's TLS context (the listeners).
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isAbsolute, relative } from 'node:path';
import { certificateNames } from './names.ts';

/** A certificate pair that passed every check, ready for the store and a TLS listener. */
export interface CertificatePair {
  /** What the store keys the pair by (replace and remove name it); by default the certificate file as shown. */
  readonly id: string;
  /** The certificate file as messages name it (relative to `relativeTo` when loaded from disk). */
  readonly certFile: string;
  /** The key file as messages name it. */
  readonly keyFile: string;
  /** Every certificate of the file, leaf first, intermediates after, as PEM: served whole. */
  readonly chainPem: string;
  /** The private key's PEM block, as every runtime's TLS server takes it. */
  readonly keyPem: string;
  /** How many certificates `chainPem` holds (the leaf counts). */
  readonly chainLength: number;
  /** The names the leaf serves, normalised (`names.ts`), wildcards as `*.a.test`. */
  readonly names: readonly string[];
  /** Start of the leaf's validity, ms since the epoch. */
  readonly notBeforeMs: number;
  /** End of the leaf's validity, ms since the epoch. */
  readonly notAfterMs: number;
  /** The leaf's subject, as node:crypto writes it (`CN=a.test`). */
  readonly subject: string;
  /** The leaf's issuer. */
  readonly issuer: string;
  /** SHA-256 fingerprint of the leaf, `AB:CD:...`: tells a renewed certificate from the same one. */
  readonly fingerprint256: string;
}

/** What checking a pair found: the pair (with warnings that do not stop it), or every problem. */
export type CertificatePairResult =
  | { readonly ok: true; readonly pair: CertificatePair; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly id: string; readonly problems: readonly string[] };

/** A pair's PEM text already in memory (from disk, or issued by ACME), with the names to show. */
export interface CertificatePairPem {
  /** The certificate file's text: the leaf first, then any intermediates. */
  readonly certPem: string;
  /** The key file's text: one unencrypted private key. */
  readonly keyPem: string;
  /** How messages name the certificate's source. */
  readonly certFile: string;
  /** How messages name the key's source. */
  readonly keyFile: string;
  /** The store key. @default certFile */
  readonly id?: string;
}

/** Options of the checks. */
export interface CertificateCheckOptions {
  /** The clock validity is judged by, ms since the epoch. @default Date.now */
  readonly now?: () => number;
}

/** The two files of a pair, as absolute paths (the config layer resolves them against routes.ts). */
export interface CertificateFiles {
  /** The certificate (chain) file. */
  readonly cert: string;
  /** The private key file. */
  readonly key: string;
}

/** Options of `loadCertificatePair`. */
export interface LoadCertificateOptions extends CertificateCheckOptions {
  /** Messages name files relative to this folder (the routes file's) when they lie under it. @default absolute paths */
  readonly relativeTo?: string;
  /** The store key. @default the certificate file as shown */
  readonly id?: string;
}

/**
 * Reads both files of a pair and checks them (`parseCertificatePair`). Never throws for bad
 * input: a missing or unreadable file is a problem naming it, like every other.
 */
export async function loadCertificatePair(files: CertificateFiles, options: LoadCertificateOptions = {}): Promise<CertificatePairResult> {
  const certFile = shownPath(files.cert, options.relativeTo);
  const keyFile = shownPath(files.key, options.relativeTo);
  const id = options.id ?? certFile;
  const [cert, key] = await Promise.all([readText(files.cert, certFile), readText(files.key, keyFile)]);
  const problems = [cert, key].filter((read) => !read.ok).map((read) => read.problem);
  if (!cert.ok || !key.ok) return { ok: false, id, problems };
  return parseCertificatePair({ certPem: cert.text, keyPem: key.text, certFile, keyFile, id }, options);
}

/**
 * Reads a CA bundle (one or more PEM certificates: a private CA for upstreams, the CAs of client
 * certificates) and returns its certificates as PEM, or the problem, naming the file and `what`
 * it is configured as.
 */
export async function loadCaBundle(path: string, what: string, relativeTo?: string): Promise<{ ok: true; pem: string } | { ok: false; problems: string[] }> {
  const shown = shownPath(path, relativeTo);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    return { ok: false, problems: [`${shown}: cannot read ${what} (${readFailure(error)})`] };
  }
  const blocks = pemBlocks(text).filter((block) => block.label === 'CERTIFICATE');
  if (blocks.length === 0) return { ok: false, problems: [`${shown}: ${what} holds no PEM certificate`] };
  for (const block of blocks) {
    try {
      new X509Certificate(block.text);
    } catch {
      return { ok: false, problems: [`${shown}: ${what} holds an unreadable certificate`] };
    }
  }
  return { ok: true, pem: blocks.map((block) => block.text).join('\n') };
}

/**
 * Checks a pair's PEM text with node:crypto (`X509Certificate`, `createPrivateKey`,
 * `checkPrivateKey`): a parseable chain with the leaf first, one unencrypted key that matches the
 * leaf, and a leaf valid at `now`. Every problem found is reported, each naming its file; never
 * throws for bad input.
 */
export function parseCertificatePair(input: CertificatePairPem, { now = Date.now }: CertificateCheckOptions = {}): CertificatePairResult {
  const { certFile, keyFile } = input;
  const id = input.id ?? certFile;
  const problems: string[] = [];
  const warnings: string[] = [];
  const chain = readChain(input.certPem, certFile, problems);
  const key = readKey(input.keyPem, keyFile, problems);
  const leaf = chain?.certificates[0];
  if (chain === undefined || leaf === undefined || key === undefined) return { ok: false, id, problems };

  if (!leaf.checkPrivateKey(key.object)) problems.push(`${keyFile}: key does not match ${certFile}`);
  const notBeforeMs = x509Time(leaf.validFrom);
  const notAfterMs = x509Time(leaf.validTo);
  if (notBeforeMs === undefined || notAfterMs === undefined) {
    problems.push(`${certFile}: unreadable validity dates (${leaf.validFrom} to ${leaf.validTo})`);
    return { ok: false, id, problems };
  }
  const invalid = validityProblem({ certFile, notBeforeMs, notAfterMs }, now());
  if (invalid !== undefined) problems.push(invalid);
  if (problems.length > 0) return { ok: false, id, problems };

  chainWarnings(chain.certificates, certFile, now(), warnings);
  const { names, ignored } = certificateNames(leaf.subjectAltName, leaf.subject);
  for (const why of ignored) warnings.push(`${certFile}: ${why}`);
  if (names.length === 0) warnings.push(`${certFile}: certificate names no DNS host; it can only serve as the default`);
  const pair: CertificatePair = {
    id,
    certFile,
    keyFile,
    chainPem: chain.pem,
    keyPem: key.pem,
    chainLength: chain.certificates.length,
    names,
    notBeforeMs,
    notAfterMs,
    subject: leaf.subject,
    issuer: leaf.issuer,
    fingerprint256: leaf.fingerprint256,
  };
  return { ok: true, pair, warnings };
}

/**
 * The problem with a leaf's validity at `nowMs`, or undefined while it is valid (both ends
 * inclusive, RFC 5280 §4.1.2.5). The store asks again when a pair enters it at run time.
 */
export function validityProblem(pair: Pick<CertificatePair, 'certFile' | 'notBeforeMs' | 'notAfterMs'>, nowMs: number): string | undefined {
  if (nowMs < pair.notBeforeMs) return `${pair.certFile}: certificate is not valid before ${iso(pair.notBeforeMs)}`;
  if (nowMs > pair.notAfterMs) return `${pair.certFile}: certificate expired at ${iso(pair.notAfterMs)}`;
  return undefined;
}

/** An instant as messages print it: ISO 8601, UTC. */
export const iso = (ms: number): string => new Date(ms).toISOString();

// --- files -----------------------------------------------------------------------------------

type Read = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly problem: string };

async function readText(path: string, shown: string): Promise<Read> {
  try {
    return { ok: true, text: await readFile(path, 'utf8') };
  } catch (error) {
    return { ok: false, problem: `${shown}: ${readFailure(error)}` };
  }
}

function readFailure(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EACCES' || code === 'EPERM') return 'cannot read file (permission denied)';
  if (code === 'EISDIR') return 'is a directory, not a file';
  return `cannot read file (${typeof code === 'string' ? code : String(error)})`;
}

function shownPath(path: string, relativeTo: string | undefined): string {
  if (relativeTo === undefined) return path;
  const shown = relative(relativeTo, path);
  return shown === '' || shown.startsWith('..') || isAbsolute(shown) ? path : shown;
}

// --- PEM -------------------------------------------------------------------------------------

interface PemBlock {
  readonly label: string;
  /** The whole block, BEGIN to END line, with LF line ends. */
  readonly text: string;
}

// RFC 7468 §2: BEGIN and END lines with the same label; text outside blocks (OpenSSL's "Bag
// Attributes", comments) is ignored, as OpenSSL does.
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
const KEY_LABELS = new Set(['PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY']);

function pemBlocks(text: string): PemBlock[] {
  const lf = text.replace(/\r\n?/g, '\n');
  return [...lf.matchAll(PEM_BLOCK)].map((match) => ({ label: match[1] ?? '', text: match[0] }));
}

const isKeyBlock = (block: PemBlock): boolean => KEY_LABELS.has(block.label) || block.label === 'ENCRYPTED PRIVATE KEY';

interface Chain {
  readonly certificates: readonly X509Certificate[];
  readonly pem: string;
}

function readChain(text: string, certFile: string, problems: string[]): Chain | undefined {
  const blocks = pemBlocks(text);
  const certBlocks = blocks.filter((block) => block.label === 'CERTIFICATE');
  if (certBlocks.length === 0) {
    problems.push(
      blocks.some(isKeyBlock) ? `${certFile}: holds a private key, not a certificate (cert and key swapped?)` : `${certFile}: no PEM certificate found`,
    );
    return undefined;
  }
  const certificates: X509Certificate[] = [];
  for (const [index, block] of certBlocks.entries()) {
    try {
      certificates.push(new X509Certificate(block.text));
    } catch {
      // The runtimes word parse errors differently (OpenSSL, BoringSSL, Rust); the position is what helps.
      problems.push(
        certBlocks.length === 1 ? `${certFile}: malformed certificate` : `${certFile}: certificate ${index + 1} of ${certBlocks.length} is malformed`,
      );
    }
  }
  if (certificates.length < certBlocks.length) return undefined;
  return { certificates, pem: `${certBlocks.map((block) => block.text).join('\n')}\n` };
}

interface Key {
  readonly object: KeyObject;
  readonly pem: string;
}

function readKey(text: string, keyFile: string, problems: string[]): Key | undefined {
  const blocks = pemBlocks(text);
  const keyBlocks = blocks.filter(isKeyBlock);
  if (keyBlocks.length === 0) {
    problems.push(
      blocks.some((block) => block.label === 'CERTIFICATE')
        ? `${keyFile}: holds a certificate, not a private key (cert and key swapped?)`
        : `${keyFile}: no PEM private key found`,
    );
    return undefined;
  }
  if (keyBlocks.length > 1) {
    problems.push(`${keyFile}: holds ${keyBlocks.length} private keys; a key file takes one`);
    return undefined;
  }
  const block = keyBlocks[0]!;
  // PKCS#8 `ENCRYPTED PRIVATE KEY`, or a legacy block with `Proc-Type: 4,ENCRYPTED` (RFC 1421 §4.6.1.1).
  if (block.label === 'ENCRYPTED PRIVATE KEY' || /^Proc-Type:\s*4,\s*ENCRYPTED/m.test(block.text)) {
    problems.push(`${keyFile}: private key is encrypted; switchyard reads unencrypted keys only`);
    return undefined;
  }
  try {
    return { object: createPrivateKey(block.text), pem: `${block.text}\n` };
  } catch {
    // As for certificates, the runtime's wording varies and adds nothing a user can act on.
    problems.push(`${keyFile}: malformed private key`);
    return undefined;
  }
}

// --- chain and dates -------------------------------------------------------------------------

function chainWarnings(certificates: readonly X509Certificate[], certFile: string, nowMs: number, warnings: string[]): void {
  for (let i = 1; i < certificates.length; i++) {
    const issued = certificates[i - 1]!;
    const issuer = certificates[i]!;
    // Served in file order: a client that cannot reorder fails to build the path (RFC 8446 §4.4.2).
    if (!issued.checkIssued(issuer)) warnings.push(`${certFile}: certificate ${i + 1} (${oneLine(issuer.subject)}) did not issue certificate ${i}`);
    const notAfterMs = x509Time(issuer.validTo);
    if (notAfterMs !== undefined && nowMs > notAfterMs)
      warnings.push(`${certFile}: certificate ${i + 1} (${oneLine(issuer.subject)}) expired at ${iso(notAfterMs)}`);
  }
}

const oneLine = (subject: string): string => subject.replaceAll('\n', ', ');

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const X509_TIME = /^([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4}) GMT$/;

/**
 * `validFrom` / `validTo` as ms since the epoch. They are OpenSSL's text (`Dec  1 21:04:33 2026
 * GMT`) on all three runtimes; `validFromDate` exists on Bun and Deno but not on Node 20, and
 * `Date.parse` of this form is implementation-defined, so it is read here.
 */
export function x509Time(text: string): number | undefined {
  const match = X509_TIME.exec(text);
  if (match === null) return undefined;
  const [, month, day, hours, minutes, seconds, year] = match;
  const monthIndex = MONTHS.indexOf(month!);
  if (monthIndex < 0) return undefined;
  return Date.UTC(Number(year), monthIndex, Number(day), Number(hours), Number(minutes), Number(seconds));
}
