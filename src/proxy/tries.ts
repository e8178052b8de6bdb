// The tries of a request to a route with a group of upstreams: the balancer picks, each try goes
// through `sendAttempt`, and after a failure the retry policy (retry.ts) decides whether the
// policy's next choice gets the request: never an upstream already tried, never after the
// route's `tries` or `tryDurationMs`, never a body twice unless it was kept whole. Passive
// health hears of every failure that is the upstream's; in-flight counts last until the
// response's last byte.

import type { PickFacts } from '../balancer/policies.ts';
import type { RouteBalancer, TargetState } from '../balancer/state.ts';
import type { CompiledRoute, CompiledTarget } from '../config/compile.ts';
import type { AccessRecord } from '../log/access-log.ts';
import type { Transport, UpstreamInit } from '../transport/types.ts';
import { sendAttempt } from './attempt.ts';
import { ProxyError } from './errors.ts';
import type { ExchangeControl } from './exchange.ts';
import { type BodyState, countsAgainst, isIdempotent, mayRetryStatus, mayTryNext } from './retry.ts';

export interface TryRequest {
  readonly transport: Transport;
  readonly route: CompiledRoute;
  readonly balancer: RouteBalancer;
  readonly exchange: ExchangeControl;
  readonly rec: AccessRecord;
  readonly method: string;
  /** The target as it goes upstream. */
  readonly target: string;
  readonly headers: Headers;
  readonly facts: PickFacts;
  /**
   * The request body: none, kept whole (sent again as is), or a stream (sent once; the body
   * watch starts the head deadline when it ends, so a try does not).
   */
  readonly body: null | Uint8Array | ReadableStream<Uint8Array>;
}

/** What the tries came to: the answer (or the last failure), the upstream it came from, and its in-flight release. */
export interface TryOutcome {
  readonly outcome: Response | ProxyError;
  /** The index of the upstream that answered (or failed last); -1 when none was tried. */
  readonly index: number;
  /** Ends the answer's in-flight count (call once its body is done). */
  readonly done: () => void;
}

/** No upstream available at all: 503 with Retry-After, at once. */
export function noUpstream(route: CompiledRoute, balancer: RouteBalancer): ProxyError {
  const n = balancer.states.length;
  const down = balancer.states.filter((s) => !s.up).length;
  const what = down === n ? `all ${n} down or cooling down` : `${down} of ${n} down or cooling down, the rest at maxInFlight`;
  return new ProxyError('no-upstream', 'internal', false, `no upstream available for route ${route.key} (${what})`, {
    retryAfterSeconds: balancer.retryAfterSeconds(),
  });
}

/** Runs the tries; `first` is the balancer's first pick (>= 0). */
export async function tryUpstreams(r: TryRequest, first: number): Promise<TryOutcome> {
  const { transport, route, balancer, exchange, method, target, headers } = r;
  const group = balancer.group;
  const retry = group.retry;
  const targets = group.targets;
  const states = balancer.states;
  const started = Date.now();
  const gate = r.body instanceof ReadableStream ? untilTouched(r.body) : null;
  const kept = r.body instanceof Uint8Array ? r.body : null;
  const tried: number[] = [];
  let index = first;
  let staleRetried = false;
  let fresh = false;
  for (;;) {
    const t = targets[index] as CompiledTarget;
    const state = states[index] as TargetState;
    if (!exchange.retry(t.origin)) break;
    if (tried[tried.length - 1] !== index) tried.push(index);
    if (route.sendUpstreamHost) headers.set('host', t.hostPort);
    const body = kept !== null ? bytesStream(kept) : gate !== null ? gate.next() : null;
    if (gate === null) exchange.startTimer();
    const init: UpstreamInit = {
      method,
      headers,
      body,
      signal: exchange.signal,
      fresh,
      tls: t.tls,
      connectTimeoutMs: route.connectTimeoutMs,
      bodyIdleTimeoutMs: route.bodyIdleTimeoutMs,
    };
    state.inFlight++;
    const outcome = await sendAttempt(transport, t, target, init);
    const bodyState: BodyState = kept !== null ? 'kept' : gate === null ? 'none' : gate.touched ? 'sent' : 'untouched';
    fresh = false;
    if (outcome instanceof ProxyError) {
      state.inFlight--;
      // The stale keep-alive race is no fault of the upstream's: once more on a fresh connection.
      if (outcome.staleConnection && !staleRetried && bodyState === 'none' && isIdempotent(method)) {
        staleRetried = true;
        fresh = true;
        continue;
      }
      if (countsAgainst(outcome)) balancer.failed(index, outcome.message);
      if ((exchange.signal.aborted && !isTimeout(exchange.signal)) || !mayTryNext(outcome, method, bodyState, retry)) return finish(r, tried, outcome, noop);
      const next = nextTry(r, tried, started);
      if (next < 0) return finish(r, tried, outcome, noop);
      index = next;
      continue;
    }
    const status = outcome.status;
    if (group.passive?.statuses.has(status)) balancer.failed(index, `status ${status}`);
    if (mayRetryStatus(status, method, bodyState, retry)) {
      const next = nextTry(r, tried, started);
      if (next >= 0) {
        state.inFlight--;
        void outcome.body?.cancel().catch(() => {});
        index = next;
        continue;
      }
    }
    let released = false;
    const done = () => {
      if (released) return;
      released = true;
      state.inFlight--;
    };
    return finish(r, tried, outcome, done);
  }
  // The exchange ended between tries (client gone, body failed): its reason is the answer.
  const reason = exchange.signal.reason;
  const failure = reason instanceof ProxyError ? reason : new ProxyError('client-closed', 'client', false, 'client closed the connection');
  return finish(r, tried, failure, noop);
}

const noop = () => {};

/** The head deadline aborted the try (its reason is an upstream timeout), not the client or the body. */
const isTimeout = (signal: AbortSignal) => signal.reason instanceof ProxyError && signal.reason.source === 'upstream';

/** The next upstream to try, or -1 when the tries or their time are used up or none is left. */
function nextTry(r: TryRequest, tried: readonly number[], started: number): number {
  const retry = r.balancer.group.retry;
  if (tried.length >= retry.tries || Date.now() - started >= retry.tryDurationMs) return -1;
  return r.balancer.pickAgain(r.facts, tried);
}

/** The outcome, from the last upstream tried (-1 and no upstream in the log when none was). */
function finish(r: TryRequest, tried: readonly number[], outcome: Response | ProxyError, done: () => void): TryOutcome {
  const targets = r.balancer.group.targets;
  const index = tried.length === 0 ? -1 : (tried[tried.length - 1] as number);
  if (index >= 0) r.rec.upstream = (targets[index] as CompiledTarget).origin;
  if (tried.length > 1) r.rec.upstreams = tried.map((i) => (targets[i] as CompiledTarget).origin);
  return { outcome, index, done };
}

/** A kept body as a fresh stream for one try. */
function bytesStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (bytes.byteLength > 0) controller.enqueue(bytes);
      controller.close();
    },
  });
}

/**
 * A streamed body that can still go to another upstream as long as no try has read from it:
 * each try gets its own view (high water mark 0, so nothing is read before the try asks), and a
 * view cancelled before any read leaves the body untouched.
 */
export function untilTouched(body: ReadableStream<Uint8Array>): { readonly touched: boolean; next(): ReadableStream<Uint8Array> } {
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  let touched = false;
  return {
    get touched() {
      return touched;
    },
    next() {
      return new ReadableStream<Uint8Array>(
        {
          async pull(controller) {
            touched = true;
            reader ??= body.getReader();
            const { value, done } = await reader.read();
            if (done) controller.close();
            else controller.enqueue(value);
          },
          cancel(reason) {
            if (touched) return reader?.cancel(reason);
          },
        },
        { highWaterMark: 0 },
      );
    },
  };
}
