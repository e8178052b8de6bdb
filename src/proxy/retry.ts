// The retry policy: whether a failed attempt may be sent again. Pure and the same on every
// runtime; transports only report what happened on the connection (UpstreamError.facts).

/** One first attempt and at most one retry. */
export const MAX_ATTEMPTS = 2;

// RFC 9110 §9.2.2: methods whose intended effect is the same however often they are sent.
// Methods are case-sensitive (§9.1): `get` is not GET.
const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** What the policy needs to know about a failed attempt. */
export interface FailedAttempt {
  /** The upstream cannot have acted on the request (`ProxyError.retryable`: connect failed). */
  readonly retryable: boolean;
  /** Sent on a reused pooled connection and no byte came back (`ProxyError.staleConnection`). */
  readonly staleConnection: boolean;
}

/**
 * True when the request may be sent once more, on a fresh connection: a stale pooled connection
 * (the upstream closed it as the request went out) dropped an idempotent request without a
 * body, at most once (RFC 9112 §9.3.1: a client may retry those on a new connection; RFC 9110
 * §9.2.2). That is the retry the foundation's Bun transport made, now the same on every runtime.
 *
 * A connect failure (`retryable`: the upstream cannot have seen the request) is not retried
 * against the same upstream, which just refused: like nginx's proxy_next_upstream, it moves on
 * to the next candidate, and candidates come with load balancing (issue 9). A request body was
 * streamed and is gone, so such requests are never retried. The caller does not ask once the
 * client left or the timeout fired.
 */
export function mayRetry(failure: FailedAttempt, method: string, hasBody: boolean, attemptsMade: number): boolean {
  if (attemptsMade >= MAX_ATTEMPTS || hasBody) return false;
  return failure.staleConnection && IDEMPOTENT.has(method);
}
