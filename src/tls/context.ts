// The TLS settings every listener context shares, and the node:tls SecureContext built once per
// certificate pair (the store's `prepare`). node:tls is the one TLS API that serves several
// certificates by SNI and swaps them at run time on Bun, Deno and Node (docs/tls-listeners.md).
import { createPrivateKey } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { Runtime } from '../server/runtime.ts';
import type { CertificatePair } from './certificate.ts';
import { type CertificateStore, createCertificateStore } from './store.ts';

/** TLS 1.2 and 1.3 only: 1.0 and 1.1 are refused at the handshake (RFC 8996). */
export const MIN_TLS_VERSION = 'TLSv1.2';

/**
 * TLS 1.2 suites: ECDHE with AEAD only, Mozilla's "intermediate" list (no RC4, 3DES, CBC or
 * export suites, no static RSA key exchange). TLS 1.3 suites are OpenSSL's defaults, all AEAD.
 * @see https://wiki.mozilla.org/Security/Server_Side_TLS
 */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** Protocols offered by ALPN, in the server's order of preference. */
export const ALPN_PROTOCOLS = ['h2', 'http/1.1'] as const;

/** The options shared by every context and the server itself. */
export function baseContextOptions(clientCa: string | null): SecureContextOptions {
  return {
    minVersion: MIN_TLS_VERSION,
    ciphers: TLS12_CIPHERS,
    honorCipherOrder: true,
    // The CAs a client certificate must chain to; the server asks only with clientAuth.
    ...(clientCa === null ? {} : { ca: clientCa }),
  };
}

/** The options of one pair's context: the chain served whole, its key, the shared settings. */
export function pairContextOptions(pair: CertificatePair, clientCa: string | null): SecureContextOptions {
  return { ...baseContextOptions(clientCa), cert: pair.chainPem, key: pair.keyPem };
}

/** What the certificate store prepares per pair for the TLS listener: its SecureContext, built once. */
export function secureContextFor(clientCa: string | null): (pair: CertificatePair) => SecureContext {
  return (pair) => createSecureContext(pairContextOptions(pair, clientCa));
}

/** `"ec"`, `"rsa"`, `"ed25519"`...: the pair's key algorithm. */
export function keyTypeOf(pair: CertificatePair): string {
  return createPrivateKey(pair.keyPem).asymmetricKeyType ?? 'unknown';
}

/**
 * Node 20 serves an SNI context's certificate only when its key type is the default context's
 * (nodejs/node#54235: an RSA pair behind an EC first pair gets the EC certificate). Bun and
 * Deno are not affected. The problem naming the files, or undefined.
 */
export function mixedKeyTypesProblem(pair: CertificatePair, others: readonly CertificatePair[]): string | undefined {
  const type = keyTypeOf(pair);
  const other = others.find((o) => o.id !== pair.id && keyTypeOf(o) !== type);
  if (other === undefined) return undefined;
  return `${pair.certFile}: its ${type.toUpperCase()} key cannot be served next to ${other.certFile} (${keyTypeOf(other).toUpperCase()}) on Node 20 (nodejs/node#54235: Node serves an SNI certificate only with the default certificate's key type); use one key type for every certificate, or run the Bun binary or Deno`;
}

/** What `runtime` cannot serve in this set of pairs (Node 20: two key types), or undefined. */
export function runtimePairsProblem(runtime: Runtime, pairs: readonly CertificatePair[]): string | undefined {
  if (runtime !== 'node') return undefined;
  for (const pair of pairs) {
    const problem = mixedKeyTypesProblem(pair, pairs);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/**
 * The TLS listener's certificate store on `runtime`: one SecureContext per pair, built as the pair
 * enters. A pair the runtime cannot serve beside the others is refused at startup (a
 * CertificateStoreError) and at run time (`put` refuses it, the old pair keeps serving).
 */
export function createListenerStore(runtime: Runtime, pairs: readonly CertificatePair[], clientCa: string | null): CertificateStore<SecureContext> {
  const contextFor = secureContextFor(clientCa);
  if (runtime !== 'node') return createCertificateStore(pairs, { prepare: contextFor });
  let store: CertificateStore<SecureContext> | undefined;
  const prepare = (pair: CertificatePair): SecureContext => {
    const problem = mixedKeyTypesProblem(pair, store === undefined ? pairs : store.current.entries.map((entry) => entry.pair));
    if (problem !== undefined) throw new Error(problem);
    return contextFor(pair);
  };
  store = createCertificateStore(pairs, { prepare });
  return store;
}
