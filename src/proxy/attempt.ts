// One attempt: one request to one upstream through the transport. Resolves with the Response or
// a typed ProxyError and never rejects, so the caller (forward; later load balancing and cache
// revalidation) decides what follows. No policy here (./retry.ts has it).
import type { CompiledUpstream } from '../config/compile.ts';
import type { Transport, UpstreamInit } from '../transport/types.ts';
import { classifyTransportError, ProxyError } from './errors.ts';

/**
 * Sends `init` to `upstream.origin + target`. An abort (client gone, timeout) comes back as the
 * signal's reason when that is a ProxyError; any other failure is classified, naming the upstream.
 */
export function sendAttempt(transport: Transport, upstream: CompiledUpstream, target: string, init: UpstreamInit): Promise<Response | ProxyError> {
  const failed = (error: unknown): ProxyError => {
    const reason = init.signal.reason;
    return reason instanceof ProxyError ? reason : classifyTransportError(error, upstream.origin);
  };
  // Not an async function: one promise per attempt instead of two (measured on the hot path).
  try {
    return transport.fetch(upstream.origin + target, init).then(undefined, failed);
  } catch (error) {
    // A transport that throws instead of rejecting breaks its contract; still an answer, not a 500.
    return Promise.resolve(failed(error));
  }
}
