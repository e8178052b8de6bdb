// The signal of one upstream exchange, forward's and a tunnel's alike, try by try: the current
// try's signal is aborted with a ProxyError when the client leaves (before or during the
// response), when the request body broke its limits, or when no response head came within the
// route's timeout. Each try gets its own deadline, so a retry after a timed-out try has the
// full time again; a client that left or a body that failed ends every try.
import type { CompiledRoute } from '../config/compile.ts';
import type { AccessRecord } from '../log/access-log.ts';
import { ProxyError } from './errors.ts';

export interface ExchangeControl {
  /** The current try's signal. */
  readonly signal: AbortSignal;
  /** Cancels the exchange; its answer becomes `error`'s status (a body that broke its limits). */
  fail(error: ProxyError): void;
  /** Starts the current try's response-head deadline (once the request body has been passed on). */
  startTimer(): void;
  /**
   * Prepares another try to `origin` (named by its timeout): a fresh signal when the last one
   * was aborted by its deadline. False when the exchange is over (client gone, body failed).
   */
  retry(origin: string): boolean;
  /** The response head is in: no deadline any more, and a client that leaves now is logged 499. */
  answered(): void;
  /** The connection is no longer HTTP (a tunnel): the deadline and the client's signal no longer apply. */
  release(): void;
}

export function exchangeControl(clientSignal: AbortSignal, route: CompiledRoute, rec: AccessRecord, origin = route.upstream.origin): ExchangeControl {
  let controller = new AbortController();
  let answered = false;
  let over = false;
  let target = origin;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // Client gone: cancel the upstream exchange at once (a response body then errors, which
  // closes the upstream connection).
  const onClientAbort = () => {
    over = true;
    controller.abort(new ProxyError('client-closed', 'client', false, 'client closed the connection'));
    if (answered) {
      rec.status = 499;
      rec.error = 'client closed the connection during the response';
    }
  };
  if (clientSignal.aborted) onClientAbort();
  else clientSignal.addEventListener('abort', onClientAbort, { once: true });
  return {
    get signal() {
      return controller.signal;
    },
    fail: (error) => {
      over = true;
      controller.abort(error);
    },
    startTimer() {
      if (answered) return;
      clearTimeout(timer);
      const deadline = controller;
      const upstream = target;
      timer = setTimeout(
        () => deadline.abort(new ProxyError('timeout', 'upstream', false, `upstream ${upstream} sent no response head within ${route.timeoutMs} ms`)),
        route.timeoutMs,
      );
    },
    retry(origin) {
      if (over) return false;
      clearTimeout(timer);
      target = origin;
      if (controller.signal.aborted) controller = new AbortController();
      return true;
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
