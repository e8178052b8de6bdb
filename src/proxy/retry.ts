// The retry policy: whether a failed try may be sent again, and where. Pure and the same on
// every runtime; transports only report what happened on the connection (UpstreamError.facts).

import type { CompiledRetry } from '../config/compile.ts';
import type { ProxyError } from './errors.ts';

/** One first attempt and at most one retry, on a single upstream (the stale-connection retry). */
export const MAX_ATTEMPTS = 2;

// RFC 9110 §9.2.2: methods whose intended effect is the same however often they are sent.
// Methods are case-sensitive (§9.1): `get` is not GET.
const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export const isIdempotent = (method: string): boolean => IDEMPOTENT.has(method);

/** What the policy needs to know about a failed attempt. */
export interface FailedAttempt {
  /** The upstream cannot have acted on the request (`ProxyError.retryable`: connect failed). */
  readonly retryable: boolean;
  /** Sent on a reused pooled connection and no byte came back (`ProxyError.staleConnection`). */
  readonly staleConnection: boolean;
}

/**
 * True when the request may be sent once more to the same upstream, on a fresh connection: a
 * stale pooled connection (the upstream closed it as the request went out) dropped an
 * idempotent request without a body, at most once (RFC 9112 §9.3.1: a client may retry those
 * on a new connection; RFC 9110 §9.2.2). Other failures move to the next upstream of a group
 * (`mayTryNext`); a single upstream that refused is not asked again. The caller does not ask
 * once the client left or the body failed.
 */
export function mayRetry(failure: FailedAttempt, method: string, hasBody: boolean, attemptsMade: number): boolean {
  if (attemptsMade >= MAX_ATTEMPTS || hasBody) return false;
  return failure.staleConnection && IDEMPOTENT.has(method);
}

/**
 * Where a request's body stands for another try:
 * - `none`: no body;
 * - `kept`: read whole before the first try (at most `retry.replayBodyBytes`), sent again as is;
 * - `untouched`: streamed, and no byte of it was taken by a try yet (it can still go elsewhere);
 * - `sent`: streamed and (partly) gone: never sent twice.
 */
export type BodyState = 'none' | 'kept' | 'untouched' | 'sent';

const replayable = (body: BodyState) => body === 'none' || body === 'kept';

/**
 * True when a failed try may go to the next upstream:
 * - nothing reached the upstream (refused, unreachable, connect timeout): every method, POST
 *   included, as long as the body can still be sent (kept or untouched);
 * - the request went out: only idempotent methods whose body is replayable, when the connection
 *   failed before a response head (reset, closed: nginx's `proxy_next_upstream error`), or the
 *   head timed out and `retry.onTimeout` allows it.
 * A client that left, a body that broke its limits, a TLS setting that failed: never.
 */
export function mayTryNext(failure: ProxyError, method: string, body: BodyState, retry: CompiledRetry): boolean {
  if (failure.source !== 'upstream' || body === 'sent') return false;
  if (failure.retryable) return true;
  if (!IDEMPOTENT.has(method)) return false;
  if (failure.kind === 'reset') return true;
  return failure.kind === 'timeout' && retry.onTimeout;
}

/** True when an upstream's answer with `status` sends the request to the next upstream (`retry.statuses`). */
export function mayRetryStatus(status: number, method: string, body: BodyState, retry: CompiledRetry): boolean {
  return retry.statuses.has(status) && IDEMPOTENT.has(method) && replayable(body);
}

/**
 * A failure that counts against the upstream's passive health: its connection failed, broke or
 * timed out. Never a client that left (`client-closed` is the client's), and never the stale
 * keep-alive race (the upstream merely closed an idle connection as the request went out).
 */
export function countsAgainst(failure: ProxyError): boolean {
  if (failure.source !== 'upstream' || failure.staleConnection) return false;
  return failure.kind === 'connect' || failure.kind === 'reset' || failure.kind === 'timeout' || failure.kind === 'tls';
}
