// The live side of load balancing: per (route, upstream) health and load, kept outside the
// compiled config so a reload keeps it for routes whose key and group are unchanged, and so the
// coming metrics and dashboard can read it (`Balancers.snapshot`). Two routes that name the same
// address keep separate states (Caddy keys health by address: caddy#4341, #7870).
//
// An upstream is available when active checks (if any) say up, it is not cooling down after
// passive failures, and it is under its `maxInFlight`. None of that reads a clock on the request
// path: a cool-down ends on a timer.
import type { CompiledConfig, CompiledGroup, CompiledRoute, CompiledTarget } from '../config/compile.ts';
import type { Logger } from '../log/logger.ts';
import type { Transport } from '../transport/types.ts';
import { HealthChecks } from './health.ts';
import { createPicker, type Picker, type PickFacts } from './policies.ts';

/** Why an upstream is out, for logs and the dashboard. */
export type HealthSource = 'active' | 'passive';

/** One upstream of one route. */
export class TargetState {
  inFlight = 0;
  /** Active checks' verdict; true until a check says otherwise (and always without checks). */
  activeUp = true;
  /** Epoch ms the passive cool-down ends; 0 when not cooling. */
  coolingUntil = 0;
  /** Passive failures in the current window, and when the window began. */
  failures = 0;
  windowStart = 0;
  /** Active checks in a row that passed / failed. */
  passes = 0;
  fails = 0;
  /** The last reason it went down, for the dashboard. */
  lastReason: string | null = null;
  cooldownTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  constructor(
    readonly route: string,
    readonly target: CompiledTarget,
  ) {}

  get up(): boolean {
    return this.activeUp && this.coolingUntil === 0;
  }
}

/** What the dashboard and metrics read of one upstream. */
export interface TargetSnapshot {
  readonly route: string;
  readonly upstream: string;
  readonly up: boolean;
  readonly activeUp: boolean;
  readonly coolingUntil: number | null;
  readonly inFlight: number;
  readonly lastReason: string | null;
}

/** One route's group at run time: its targets' states and its picker. */
export class RouteBalancer {
  readonly states: TargetState[];
  readonly picker: Picker;
  /** Availability, as the picker's filter (made once). */
  readonly available: (index: number) => boolean;

  constructor(
    readonly route: string,
    readonly group: CompiledGroup,
    states: TargetState[],
    private readonly logger: Logger,
    secret: string | undefined,
    private readonly now: () => number,
  ) {
    this.states = states;
    this.picker = createPicker(group.policy, group.targets, states, { secret });
    const targets = group.targets;
    this.available = (i) => {
      const s = states[i] as TargetState;
      return s.activeUp && s.coolingUntil === 0 && s.inFlight < (targets[i] as CompiledTarget).maxInFlight;
    };
  }

  /** The first choice for a request, or -1 when no upstream is available. */
  pick(facts: PickFacts): number {
    return this.picker.pick(facts, this.available);
  }

  /** The next choice after the tried ones, or -1. */
  pickAgain(facts: PickFacts, tried: readonly number[]): number {
    const available = this.available;
    return this.picker.pick(facts, (i) => available(i) && !tried.includes(i));
  }

  /** Seconds a client should wait before an upstream may be back (Retry-After for a 503). */
  retryAfterSeconds(): number {
    const now = this.now();
    let soonest = Number.POSITIVE_INFINITY;
    for (const s of this.states) {
      if (s.coolingUntil !== 0) soonest = Math.min(soonest, s.coolingUntil - now);
      else if (!s.activeUp && this.group.health !== null) soonest = Math.min(soonest, this.group.health.intervalMs);
      else soonest = Math.min(soonest, 1000); // at its cap: the next free slot is soon
    }
    return Math.max(1, Math.ceil((Number.isFinite(soonest) ? soonest : 1000) / 1000));
  }

  /** A try failed in a way that counts against the upstream (never a client's leaving). */
  failed(index: number, reason: string): void {
    const passive = this.group.passive;
    if (passive === null) return;
    const s = this.states[index] as TargetState;
    const now = this.now();
    if (now - s.windowStart > passive.windowMs) {
      s.windowStart = now;
      s.failures = 0;
    }
    s.failures++;
    if (s.failures < passive.failures || s.coolingUntil !== 0) return;
    const wasUp = s.up;
    s.coolingUntil = now + passive.cooldownMs;
    s.cooldownTimer = setTimeout(() => this.cooled(s), passive.cooldownMs);
    (s.cooldownTimer as { unref?: () => void }).unref?.();
    if (wasUp)
      this.down(s, 'passive', `${s.failures} failure${s.failures === 1 ? '' : 's'} within ${passive.windowMs} ms, out for ${passive.cooldownMs} ms: ${reason}`);
  }

  /** An active check's verdict. */
  checked(index: number, ok: boolean, reason: string): void {
    const health = this.group.health;
    if (health === null) return;
    const s = this.states[index] as TargetState;
    const wasUp = s.up;
    if (ok) {
      s.passes++;
      s.fails = 0;
      if (!s.activeUp && s.passes >= health.rise) s.activeUp = true;
      // A passing check ends a passive cool-down early: the upstream answers again.
      if (s.activeUp && s.coolingUntil !== 0) this.endCooldown(s);
      if (!wasUp && s.up) this.upAgain(s, 'active', health.rise === 1 ? 'check passed' : `${s.passes} checks in a row passed`);
    } else {
      s.fails++;
      s.passes = 0;
      if (s.activeUp && s.fails >= health.fall) {
        s.activeUp = false;
        if (wasUp) this.down(s, 'active', reason);
        else s.lastReason = reason;
      }
    }
  }

  /** Stops the timers (the route is gone). */
  stop(): void {
    for (const s of this.states) clearTimeout(s.cooldownTimer);
  }

  private cooled(s: TargetState): void {
    const wasUp = s.up;
    this.endCooldown(s);
    if (!wasUp && s.up) this.upAgain(s, 'cooldown', `cool-down of ${this.group.passive?.cooldownMs} ms ended`);
  }

  private endCooldown(s: TargetState): void {
    clearTimeout(s.cooldownTimer);
    s.cooldownTimer = undefined;
    s.coolingUntil = 0;
    s.failures = 0;
  }

  private down(s: TargetState, source: HealthSource, reason: string): void {
    s.lastReason = reason;
    this.logger.warn('upstream down', { route: this.route, upstream: s.target.origin, source, reason });
  }

  private upAgain(s: TargetState, source: 'active' | 'cooldown', reason: string): void {
    this.logger.info('upstream up', { route: this.route, upstream: s.target.origin, source, reason });
  }
}

export interface BalancersOptions {
  readonly logger: Logger;
  /** Sends the active checks. */
  readonly transport: Transport;
  /** The HMAC key of sticky cookies without a secret of their own. @default one random key per process */
  readonly secret?: string;
  readonly now?: () => number;
}

/**
 * Every route's balancer. `sync` is called with each config (start, later reloads): routes
 * whose key and group signature are unchanged keep their states and checks.
 */
export class Balancers {
  private readonly byRoute = new WeakMap<CompiledRoute, RouteBalancer>();
  private byKey = new Map<string, RouteBalancer>();
  private readonly checks: HealthChecks;
  private readonly now: () => number;

  constructor(private readonly options: BalancersOptions) {
    this.now = options.now ?? Date.now;
    this.checks = new HealthChecks(options.transport, options.logger);
  }

  /** The balancer of `route` (which has a group); one of a config not synced yet is made now. */
  for(route: CompiledRoute): RouteBalancer {
    const known = this.byRoute.get(route);
    if (known !== undefined) return known;
    const old = this.byKey.get(route.key);
    const balancer = this.build(route, old);
    if (old !== undefined && old.states !== balancer.states) this.retire(old);
    this.byKey.set(route.key, balancer);
    return balancer;
  }

  /**
   * Builds the balancers of `config`, keeping the states (and running checks) of routes whose
   * key and group signature are unchanged; the rest are retired.
   */
  sync(config: CompiledConfig): void {
    const next = new Map<string, RouteBalancer>();
    for (const route of config.routes) if (route.group !== null) next.set(route.key, this.build(route, this.byKey.get(route.key)));
    for (const [key, old] of this.byKey) if (next.get(key)?.states !== old.states) this.retire(old);
    this.byKey = next;
  }

  /** `route`'s balancer: `old`'s states when its group is unchanged, else fresh ones with their checks started. */
  private build(route: CompiledRoute, old: RouteBalancer | undefined): RouteBalancer {
    const group = route.group as CompiledGroup;
    const { logger, secret } = this.options;
    let balancer: RouteBalancer;
    if (old !== undefined && old.group.signature === group.signature) {
      // The same states behind the new group object (retry settings may differ).
      balancer = old.group === group ? old : new RouteBalancer(route.key, group, old.states, logger, secret, this.now);
      if (balancer !== old) this.checks.rebind(old, balancer);
    } else {
      balancer = new RouteBalancer(
        route.key,
        group,
        group.targets.map((t) => new TargetState(route.key, t)),
        logger,
        secret,
        this.now,
      );
      this.checks.start(balancer);
    }
    this.byRoute.set(route, balancer);
    return balancer;
  }

  /** Every upstream's state, for metrics and the dashboard. */
  snapshot(): TargetSnapshot[] {
    const out: TargetSnapshot[] = [];
    for (const balancer of this.byKey.values()) {
      for (const s of balancer.states) {
        out.push({
          route: s.route,
          upstream: s.target.origin,
          up: s.up,
          activeUp: s.activeUp,
          coolingUntil: s.coolingUntil === 0 ? null : s.coolingUntil,
          inFlight: s.inFlight,
          lastReason: s.lastReason,
        });
      }
    }
    return out;
  }

  /** Stops every check and timer (shutdown). */
  stop(): void {
    for (const balancer of this.byKey.values()) this.retire(balancer);
    this.byKey.clear();
  }

  private retire(balancer: RouteBalancer): void {
    this.checks.stop(balancer);
    balancer.stop();
  }
}
