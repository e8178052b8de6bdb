// Proxy failures carry who failed, whether another attempt is safe, and the short text the
// client may see; one function maps them to the status (Pingora's model). Every answer the proxy
// makes itself is one of these, so each such access line names its error.
import { UpstreamError } from '../transport/types.ts';

/** Who a failure belongs to. */
export type ErrorSource = 'upstream' | 'client' | 'internal';

/** What went wrong, as far as the status code is concerned. */
export type ErrorKind =
  /** The request is malformed or ambiguous (Host, target authority, version, framing). */
  | 'bad-request'
  /** The request target is longer than `limits.maxUrlBytes`. */
  | 'target-too-long'
  /** The route's `allow` / `deny` refuses the client. */
  | 'forbidden'
  /** The route's `auth` found no valid credentials (401 with its challenges). */
  | 'unauthorized'
  /** The route's `rateLimit` is used up for this key (429 with Retry-After). */
  | 'rate-limited'
  /** A `store: 'redis'` limit with `onStoreDown: 'deny'` while Redis cannot answer (503, fail closed). */
  | 'limit-store-down'
  /** No route takes the request's host and path. */
  | 'no-route'
  /** The request's header fields exceed `limits.maxHeaderBytes`. */
  | 'headers-too-large'
  /** A transfer coding we cannot undo, so must not forward (RFC 9112 §6.1). */
  | 'unsupported-coding'
  /** CONNECT: a reverse proxy opens no tunnel to an address the client names (RFC 9110 §9.3.6). */
  | 'unsupported-method'
  /** The request body crossed the body limit (declared or while streaming). */
  | 'body-too-large'
  /** The request body stalled, or arrived below `limits.bodyMinBytesPerSecond` (slowloris bodies). */
  | 'body-timeout'
  /** A WebSocket handshake with a version other than 13 (RFC 6455 §4.4). */
  | 'websocket-version'
  /** The route's `websocket.maxTunnels` tunnels are open, or shutdown began. */
  | 'tunnel-limit'
  /** Every upstream of the route is down, cooling down or at its `maxInFlight` (503 with Retry-After). */
  | 'no-upstream'
  /** The upstream refused the connection or it could not be opened (DNS, no route). */
  | 'connect'
  /**
   * The TLS handshake with the upstream failed: its certificate did not verify (unknown CA,
   * wrong name, expired, self-signed), or the upstream refused the handshake (our client
   * certificate, protocol). A setting or certificate to fix, never retried.
   */
  | 'tls'
  /** The connection broke before a full response head arrived. */
  | 'reset'
  /** No response head within the route's timeout, no connection within its connect timeout, or a body that went idle. */
  | 'timeout'
  /** The client went away before the response head was sent. */
  | 'client-closed'
  /** A bug or an unexpected runtime error. */
  | 'internal';

export interface ProxyErrorOptions {
  readonly cause?: unknown;
  /**
   * The short text the client gets, when it names nothing internal (the client's own
   * mistakes). Without it the client gets the status's generic text (`bad gateway`).
   */
  readonly reply?: string;
  /**
   * The attempt went out on a reused pooled connection and no byte of the response came back:
   * the connection was likely stale, and an idempotent request may be sent again (proxy/retry.ts).
   * @default false
   */
  readonly staleConnection?: boolean;
  /** Sent as `Retry-After` (seconds) with the answer. */
  readonly retryAfterSeconds?: number;
}

export class ProxyError extends Error {
  override readonly name = 'ProxyError';
  readonly reply: string | undefined;
  readonly staleConnection: boolean;
  readonly retryAfterSeconds: number | undefined;
  constructor(
    readonly kind: ErrorKind,
    readonly source: ErrorSource,
    /** True when the upstream cannot have acted on the request, so another attempt cannot duplicate work. */
    readonly retryable: boolean,
    /** For the log: lowercase, names the upstream or host involved. */
    message: string,
    options?: ProxyErrorOptions,
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.reply = options?.reply;
    this.staleConnection = options?.staleConnection ?? false;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

/** A refusal of the client's own request: the log line and the client's body say the same. */
export function clientError(kind: ErrorKind, text: string): ProxyError {
  return new ProxyError(kind, 'client', false, text, { reply: text });
}

/** The status for a failure. 499 is nginx's "client closed request", log-only in practice. */
export function statusFor(kind: ErrorKind): number {
  switch (kind) {
    case 'bad-request':
      return 400;
    case 'target-too-long':
      return 414;
    case 'forbidden':
      return 403;
    case 'unauthorized':
      return 401;
    case 'rate-limited':
      return 429;
    case 'no-route':
      // RFC 9110 §15.5.20: this server is not authoritative for the host.
      return 421;
    case 'headers-too-large':
      return 431;
    case 'unsupported-coding':
    case 'unsupported-method':
      return 501;
    case 'body-too-large':
      return 413;
    case 'body-timeout':
      return 408;
    case 'websocket-version':
      return 426;
    case 'tunnel-limit':
    case 'no-upstream':
    case 'limit-store-down':
      return 503;
    case 'connect':
    case 'tls':
    case 'reset':
      return 502;
    case 'timeout':
      return 504;
    case 'client-closed':
      return 499;
    default:
      return 500;
  }
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT']);
/** A connect that took longer than the route's connect timeout: undici's, and ours on Bun (bun-socket.ts). */
const CONNECT_TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);
/** A response body that went idle past the route's body idle timeout. */
const BODY_TIMEOUT_CODES = new Set(['UND_ERR_BODY_TIMEOUT', 'UPSTREAM_BODY_TIMEOUT']);

/**
 * The codes node:tls gives (Bun's and Deno's node:tls the same) when the upstream's certificate
 * fails verification: OpenSSL's X509_V_ERR names, and node's own for a name mismatch, each with
 * the words the log line uses.
 */
const VERIFY_FAILURES: ReadonlyMap<string, string> = new Map([
  ['UNABLE_TO_GET_ISSUER_CERT', 'issuer certificate not found'],
  ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'certificate not issued by a trusted CA'],
  // Node and Bun: the issuer of a chain of one is unknown; Deno 2.9 also says so of an expired one.
  ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'certificate not issued by a trusted CA, or chain incomplete'],
  ['SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in chain'],
  ['DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate'],
  ['CERT_HAS_EXPIRED', 'certificate has expired'],
  ['CERT_NOT_YET_VALID', 'certificate is not yet valid'],
  ['ERROR_IN_CERT_NOT_BEFORE_FIELD', 'certificate has an invalid start date'],
  ['ERROR_IN_CERT_NOT_AFTER_FIELD', 'certificate has an invalid end date'],
  ['ERR_TLS_CERT_ALTNAME_INVALID', 'certificate does not name the host'],
  ['HOSTNAME_MISMATCH', 'certificate does not name the host'],
  ['CERT_SIGNATURE_FAILURE', 'certificate signature does not verify'],
  ['UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'certificate signature does not verify'],
  ['UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', "issuer's public key unreadable"],
  ['CERT_REVOKED', 'certificate revoked'],
  ['CERT_UNTRUSTED', 'certificate not trusted'],
  ['CERT_REJECTED', 'certificate rejected'],
  ['INVALID_CA', 'invalid CA certificate in chain'],
  ['INVALID_PURPOSE', 'certificate not meant for a TLS server'],
  ['PATH_LENGTH_EXCEEDED', 'chain longer than a CA allows'],
  ['CERT_CHAIN_TOO_LONG', 'chain too long'],
]);

/**
 * The log line of a failed TLS handshake, or undefined for any other failure. A verification
 * code is always the handshake's; an `ERR_SSL_` code only counts before a connection was made
 * (later it is a broken connection, a reset).
 */
function tlsFailure(code: string | undefined, error: unknown, connectFailed: boolean, upstream: string): string | undefined {
  if (code === undefined) return undefined;
  const words = VERIFY_FAILURES.get(code);
  if (words === undefined) return connectFailed && code.startsWith('ERR_SSL_') ? `upstream ${upstream} failed the TLS handshake (${code})` : undefined;
  // A name mismatch says which name was checked (node:tls's `host` on the error, every runtime).
  const checked = code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? errorField(error, 'host') : undefined;
  return `upstream ${upstream} failed TLS verification: ${checked === undefined ? words : `${words} ${checked}`} (${code})`;
}

/**
 * Classifies an error a transport rejected with into a ProxyError naming `upstream`. An
 * `UpstreamError` says itself what happened on the connection; other errors (undici's) are
 * classified by their code.
 */
export function classifyTransportError(error: unknown, upstream: string): ProxyError {
  if (error instanceof ProxyError) return error;
  const code = errorCode(error);
  const facts = error instanceof UpstreamError ? error.facts : null;
  const tls = tlsFailure(code, error, facts?.connectFailed ?? true, upstream);
  // Not retryable, though the upstream cannot have seen the request: another attempt gets the
  // same certificate and settings, and a candidate that would accept them is no fix either.
  if (tls !== undefined) return new ProxyError('tls', 'upstream', false, tls, { cause: error });
  if (code !== undefined && BODY_TIMEOUT_CODES.has(code)) {
    return new ProxyError('timeout', 'upstream', false, `upstream ${upstream} sent no response body bytes within the body idle timeout (${code})`, {
      cause: error,
    });
  }
  const connectCode = code !== undefined && CONNECT_CODES.has(code);
  if (code !== undefined && CONNECT_TIMEOUT_CODES.has(code) && (facts === null ? connectCode : facts.connectFailed)) {
    // No connection was made, so the upstream saw nothing: retryable for every method; a 504 when it is the last try.
    return new ProxyError('timeout', 'upstream', true, `upstream ${upstream} did not accept a connection within the connect timeout (${code})`, {
      cause: error,
    });
  }
  if (facts?.connectFailed || connectCode) {
    // Retryable only when no connection was made: facts say so where the transport knows;
    // a bare error's connect-phase code is the best there is.
    const retryable = facts === null ? connectCode : facts.connectFailed;
    return new ProxyError('connect', 'upstream', retryable, `upstream ${upstream} refused or unreachable (${code ?? 'connect failed'})`, { cause: error });
  }
  const detail = code ?? (error instanceof Error ? error.message : String(error));
  const staleConnection = facts?.reusedConnection === true && !facts.responseStarted;
  return new ProxyError('reset', 'upstream', false, `upstream ${upstream} failed before responding (${detail})`, { cause: error, staleConnection });
}

/** The most specific error code in an error or its causes (runtimes nest them differently). */
export function errorCode(error: unknown): string | undefined {
  return errorField(error, 'code');
}

/** The first non-empty string `field` of an error or its causes. */
function errorField(error: unknown, field: 'code' | 'host'): string | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 4 && e && typeof e === 'object'; depth++) {
    const value = (e as Record<string, unknown>)[field];
    if (typeof value === 'string' && value) return value;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
