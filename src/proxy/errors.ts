// Proxy failures carry who failed and whether a retry would be safe; one function maps them to
// the status the client sees (Pingora's model). Retries themselves arrive with load balancing.

/** Who a failure belongs to. */
export type ErrorSource = 'upstream' | 'client' | 'internal';

/** What went wrong, as far as the status code is concerned. */
export type ErrorKind =
  /** The upstream refused the connection or it could not be opened (DNS, no route). */
  | 'connect'
  /** The connection broke before a full response head arrived. */
  | 'reset'
  /** No response head within the route's timeout. */
  | 'timeout'
  /** The client went away before the response head was sent. */
  | 'client-closed'
  /** The request body crossed the body limit while streaming. */
  | 'body-too-large'
  /** A bug or an unexpected runtime error. */
  | 'internal';

export class ProxyError extends Error {
  override readonly name = 'ProxyError';
  constructor(
    readonly kind: ErrorKind,
    readonly source: ErrorSource,
    /** True when nothing reached the upstream, so another attempt cannot duplicate work. */
    readonly retryable: boolean,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The status and short body for a failure. 499 is nginx's "client closed request", log-only. */
export function statusFor(kind: ErrorKind): number {
  switch (kind) {
    case 'connect':
    case 'reset':
      return 502;
    case 'timeout':
      return 504;
    case 'client-closed':
      return 499;
    case 'body-too-large':
      return 413;
    default:
      return 500;
  }
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT']);

/** Classifies an error thrown by a transport into a ProxyError naming `upstream`. */
export function classifyTransportError(error: unknown, upstream: string): ProxyError {
  if (error instanceof ProxyError) return error;
  const code = errorCode(error);
  if (code && CONNECT_CODES.has(code)) {
    return new ProxyError('connect', 'upstream', true, `upstream ${upstream} refused or unreachable (${code})`, { cause: error });
  }
  const detail = code ?? (error instanceof Error ? error.message : String(error));
  return new ProxyError('reset', 'upstream', false, `upstream ${upstream} failed before responding (${detail})`, { cause: error });
}

/** The most specific error code in an error or its causes (runtimes nest them differently). */
export function errorCode(error: unknown): string | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 4 && e && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
