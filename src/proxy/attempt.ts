// One attempt: one request to one upstream through the transport. Resolves with the Response or
// a typed ProxyError and never rejects, so the caller (forward; later load balancing and cache
// revalidation) decides what follows. No policy here (./retry.ts has it).
import type { CompiledUpstream } from '../config/compile.ts';
import type { Transport, UpgradeResult, UpstreamInit } from '../transport/types.ts';
import { classifyTransportError, ProxyError } from './errors.ts';

/**
 * How a failed attempt is reported: an abort (client gone, timeout) as the signal's reason when
 * that is a ProxyError, any other failure classified, naming the upstream.
 */
const failureOf =
  (init: UpstreamInit, upstream: CompiledUpstream) =>
  (error: unknown): ProxyError => {
    const reason = init.signal.reason;
    return reason instanceof ProxyError ? reason : classifyTransportError(error, upstream.origin);
  };

/** Sends `init` to `upstream.origin + target`. */
export function sendAttempt(transport: Transport, upstream: CompiledUpstream, target: string, init: UpstreamInit): Promise<Response | ProxyError> {
  const failed = failureOf(init, upstream);
  // Not an async function: one promise per attempt instead of two (measured on the hot path).
  try {
    return transport.fetch(upstream.origin + target, init).then(undefined, failed);
  } catch (error) {
    // A transport that throws instead of rejecting breaks its contract; still an answer, not a 500.
    return Promise.resolve(failed(error));
  }
}

/** Sends an upgrade request (a WebSocket handshake) the same way: the 101 and the connection, the upstream's other answer, or the failure. */
export function sendUpgrade(transport: Transport, upstream: CompiledUpstream, target: string, init: UpstreamInit): Promise<UpgradeResult | ProxyError> {
  const failed = failureOf(init, upstream);
  try {
    return transport.upgrade(upstream.origin + target, init).then(undefined, failed);
  } catch (error) {
    return Promise.resolve(failed(error));
  }
}
