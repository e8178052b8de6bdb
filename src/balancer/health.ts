// Active health checks: one timer per (route, upstream), each wait shortened by a random
// jitter so the checks of many upstreams drift apart instead of arriving together. A check is
// an ordinary request through the proxy's own transport (the same TLS settings, the same
// connect logic), on a fresh connection so a pooled one the traffic keeps warm cannot answer
// for an upstream that stopped accepting. Verdicts go to the route's balancer (state.ts).
import type { CompiledHealth, CompiledTarget } from '../config/compile.ts';
import type { Logger } from '../log/logger.ts';
import type { Transport } from '../transport/types.ts';
import type { RouteBalancer } from './state.ts';

/** How much of an answer's body a body match reads. */
const BODY_MATCH_BYTES = 64 * 1024;

/** One route's checks: the balancer they report to (swapped by a reload) and their timers. */
interface RouteChecks {
  balancer: RouteBalancer;
  readonly timers: (ReturnType<typeof setTimeout> | undefined)[];
  readonly inFlight: AbortController[];
  stopped: boolean;
}

export class HealthChecks {
  private readonly routes = new Map<RouteBalancer, RouteChecks>();

  constructor(
    private readonly transport: Transport,
    private readonly logger: Logger,
    private readonly random: () => number = Math.random,
  ) {}

  /** Starts checking every target of `balancer` (nothing without a `health` section). */
  start(balancer: RouteBalancer): void {
    const health = balancer.group.health;
    if (health === null) return;
    const checks: RouteChecks = { balancer, timers: [], inFlight: [], stopped: false };
    this.routes.set(balancer, checks);
    // The first check of each comes soon, spread over the jitter, so a dead upstream is known
    // within about one interval of the start.
    balancer.group.targets.forEach((target, i) => {
      this.schedule(checks, health, target, i, this.random() * Math.max(health.jitterMs, 50));
    });
  }

  /** A reload kept the states: the running checks now report to `next`. */
  rebind(old: RouteBalancer, next: RouteBalancer): void {
    const checks = this.routes.get(old);
    if (checks === undefined) return;
    this.routes.delete(old);
    checks.balancer = next;
    this.routes.set(next, checks);
  }

  stop(balancer: RouteBalancer): void {
    const checks = this.routes.get(balancer);
    if (checks === undefined) return;
    checks.stopped = true;
    for (const timer of checks.timers) clearTimeout(timer);
    for (const controller of checks.inFlight) controller.abort();
    this.routes.delete(balancer);
  }

  private schedule(checks: RouteChecks, health: CompiledHealth, target: CompiledTarget, i: number, delayMs: number): void {
    if (checks.stopped) return;
    const timer = setTimeout(async () => {
      const { ok, reason } = await this.check(checks, health, target);
      if (checks.stopped) return;
      try {
        checks.balancer.checked(i, ok, reason);
      } catch (error) {
        this.logger.error('health check failed', { error: error instanceof Error ? (error.stack ?? error.message) : String(error), upstream: target.origin });
      }
      this.schedule(checks, health, target, i, health.intervalMs - this.random() * health.jitterMs);
    }, delayMs);
    // Checks never keep the process alive on their own.
    (timer as { unref?: () => void }).unref?.();
    checks.timers[i] = timer;
  }

  /** One check: its verdict and, when it failed, why. Never rejects. */
  private async check(checks: RouteChecks, health: CompiledHealth, target: CompiledTarget): Promise<{ ok: boolean; reason: string }> {
    const controller = new AbortController();
    checks.inFlight.push(controller);
    const timer = setTimeout(() => controller.abort(new Error(`no answer within ${health.timeoutMs} ms`)), health.timeoutMs);
    const url = `${target.origin}${health.path}`;
    // `connection: close`: the check's connection is not left in the pool for traffic to reuse.
    const headers = new Headers({ host: health.host ?? target.hostPort, 'user-agent': 'switchyard-health-check', accept: '*/*', connection: 'close' });
    try {
      const init = {
        method: health.method,
        headers,
        body: null,
        signal: controller.signal,
        fresh: true,
        connectTimeoutMs: health.timeoutMs,
        bodyIdleTimeoutMs: health.timeoutMs,
      };
      const response = await this.transport.fetch(url, target.tls === undefined ? init : { ...init, tls: target.tls });
      const status = response.status;
      if (status < health.statusFrom || status > health.statusTo) {
        await response.body?.cancel().catch(() => {});
        return { ok: false, reason: `check ${health.method} ${health.path} got ${status}, expected ${health.statusFrom}-${health.statusTo}` };
      }
      if (health.body === null) {
        await response.body?.cancel().catch(() => {});
        return { ok: true, reason: '' };
      }
      const text = await readText(response.body, BODY_MATCH_BYTES);
      return text.includes(health.body)
        ? { ok: true, reason: '' }
        : { ok: false, reason: `check ${health.method} ${health.path}: body does not contain ${JSON.stringify(health.body)}` };
    } catch (error) {
      const why = controller.signal.aborted
        ? String((controller.signal.reason as Error)?.message ?? 'aborted')
        : error instanceof Error
          ? error.message
          : String(error);
      return { ok: false, reason: `check ${health.method} ${health.path} failed: ${why}` };
    } finally {
      clearTimeout(timer);
      const at = checks.inFlight.indexOf(controller);
      if (at >= 0) checks.inFlight.splice(at, 1);
    }
  }
}

/** Up to `max` bytes of a body as text; the rest is not read. */
async function readText(body: ReadableStream<Uint8Array> | null, max: number): Promise<string> {
  if (body === null) return '';
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < max) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    void reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).subarray(0, max).toString('utf8');
}
