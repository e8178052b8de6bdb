// The signal of one upstream exchange, forward's and a tunnel's alike, try by try: the current
// try's signal is aborted with a ProxyError when the client leaves (before or during the
// response), when the request body broke its limits, or when no response head came within the
// route's timeout. Each try gets its own deadline, so a retry after a timed-out try has the
// full time again; a client that left or a body that failed ends every try.
import type { CompiledRoute } from '../config/compile.ts';
import type { AccessRecord } from '../log/access-log.ts';
import { ProxyError } from './errors.ts';

/** A class, not a closure bag: its methods are made once, not per request. */
export class ExchangeControl {
  private controller = new AbortController();
  private answeredYet = false;
  private over = false;
  private origin: string;
  private timer: ReturnType<typeof setTimeout> | undefined = undefined;
  // Client gone: cancel the upstream exchange at once (a response body then errors, which
  // closes the upstream connection).
  private readonly onClientAbort = () => {
    this.over = true;
    this.controller.abort(new ProxyError('client-closed', 'client', false, 'client closed the connection'));
    if (this.answeredYet) {
      this.rec.status = 499;
      this.rec.error = 'client closed the connection during the response';
    }
  };
  /** Cancels the exchange; its answer becomes `error`'s status (a body that broke its limits). Bound: passed as a callback. */
  readonly fail = (error: ProxyError): void => {
    this.over = true;
    this.controller.abort(error);
  };
  /** Starts the current try's response-head deadline (once the request body has been passed on). Bound: passed as a callback. */
  readonly startTimer = (): void => {
    if (this.answeredYet) return;
    clearTimeout(this.timer);
    const deadline = this.controller;
    const upstream = this.origin;
    const ms = this.route.timeoutMs;
    this.timer = setTimeout(
      () => deadline.abort(new ProxyError('timeout', 'upstream', false, `upstream ${upstream} sent no response head within ${ms} ms`)),
      ms,
    );
  };

  constructor(
    private readonly clientSignal: AbortSignal,
    private readonly route: CompiledRoute,
    private readonly rec: AccessRecord,
  ) {
    this.origin = route.upstream.origin;
    if (clientSignal.aborted) this.onClientAbort();
    else clientSignal.addEventListener('abort', this.onClientAbort, { once: true });
  }

  /** The current try's signal. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /**
   * Prepares a try of a group to `origin` (named by its timeout): a fresh signal when the last
   * one was aborted by its deadline. False when the exchange is over (client gone, body failed).
   */
  retry(origin: string): boolean {
    if (this.over) return false;
    clearTimeout(this.timer);
    this.origin = origin;
    if (this.controller.signal.aborted) this.controller = new AbortController();
    return true;
  }

  /** The response head is in: no deadline any more, and a client that leaves now is logged 499. */
  answered(): void {
    this.answeredYet = true;
    clearTimeout(this.timer);
  }

  /** The connection is no longer HTTP (a tunnel), or the request is answered without a try: the deadline and the client's signal no longer apply. */
  release(): void {
    clearTimeout(this.timer);
    this.clientSignal.removeEventListener('abort', this.onClientAbort);
  }
}

export function exchangeControl(clientSignal: AbortSignal, route: CompiledRoute, rec: AccessRecord): ExchangeControl {
  return new ExchangeControl(clientSignal, route, rec);
}
