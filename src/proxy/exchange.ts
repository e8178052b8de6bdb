// The signal of one upstream exchange, forward's and a tunnel's alike: aborted with a
// ProxyError when the client leaves (before or during the response) or when no response head
// came within the route's timeout. One deadline covers every attempt.
import type { CompiledRoute } from '../config/compile.ts';
import type { AccessRecord } from '../log/access-log.ts';
import { ProxyError } from './errors.ts';

export interface ExchangeControl {
  readonly signal: AbortSignal;
  /** Cancels the exchange; its answer becomes `error`'s status (a body that broke its limits). */
  fail(error: ProxyError): void;
  /** Starts the response-head deadline (once the request body has been passed on). */
  startTimer(): void;
  /** The response head is in: no deadline any more, and a client that leaves now is logged 499. */
  answered(): void;
  /** The connection is no longer HTTP (a tunnel): the deadline and the client's signal no longer apply. */
  release(): void;
}

export function exchangeControl(clientSignal: AbortSignal, route: CompiledRoute, rec: AccessRecord): ExchangeControl {
  const controller = new AbortController();
  let answered = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // Client gone: cancel the upstream exchange at once (a response body then errors, which
  // closes the upstream connection).
  const onClientAbort = () => {
    controller.abort(new ProxyError('client-closed', 'client', false, 'client closed the connection'));
    if (answered) {
      rec.status = 499;
      rec.error = 'client closed the connection during the response';
    }
  };
  if (clientSignal.aborted) onClientAbort();
  else clientSignal.addEventListener('abort', onClientAbort, { once: true });
  return {
    signal: controller.signal,
    fail: (error) => controller.abort(error),
    startTimer() {
      if (answered) return;
      const { origin } = route.upstream;
      timer = setTimeout(
        () => controller.abort(new ProxyError('timeout', 'upstream', false, `upstream ${origin} sent no response head within ${route.timeoutMs} ms`)),
        route.timeoutMs,
      );
    },
    answered() {
      answered = true;
      clearTimeout(timer);
    },
    release() {
      clearTimeout(timer);
      clientSignal.removeEventListener('abort', onClientAbort);
    },
  };
}
