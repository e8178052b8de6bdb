// The coarse clock and the one sweep timer of our HTTP/1.1 server and client: a timer per
// connection would cost two native calls per request, so every timeout is checked by a sweep
// once a second against a clock read from a field. Each side registers its own sweep.

/** A coarse clock (1 s resolution while anything is registered) and the sweeps run on its tick. */
export class SweepClock {
  /** `Date.now()` as of the last tick (or registration). */
  now = Date.now();
  /** `date: <IMF-fixdate>\r\n` as of the last tick (RFC 9110 §6.6.1: a server sends Date). */
  dateLine = dateLineAt(this.now);
  private readonly sweeps = new Set<(now: number) => void>();
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(readonly intervalMs = 1_000) {}

  /** Runs `sweep` on every tick until the returned function is called. */
  add(sweep: (now: number) => void): () => void {
    this.sweeps.add(sweep);
    if (this.timer === null) {
      this.update(); // the clock stood still while nothing was registered
      this.timer = setInterval(() => this.tick(), this.intervalMs);
      // The sweep never keeps a process alive on its own.
      (this.timer as { unref?: () => void }).unref?.();
    }
    return () => this.remove(sweep);
  }

  /** One tick: advance the clock and run every sweep (public so tests need not wait for it). */
  tick(now = Date.now()): void {
    this.update(now);
    for (const sweep of this.sweeps) sweep(this.now);
  }

  get size(): number {
    return this.sweeps.size;
  }

  private remove(sweep: (now: number) => void): void {
    this.sweeps.delete(sweep);
    if (this.sweeps.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private update(now = Date.now()): void {
    // The Date line only changes once a second: rebuild it only then.
    if (Math.floor(now / 1000) !== Math.floor(this.now / 1000)) this.dateLine = dateLineAt(now);
    this.now = now;
  }
}

const dateLineAt = (ms: number) => `date: ${new Date(ms).toUTCString()}\r\n`;

/** The clock both Bun sides share: one timer for the process. */
export const clock = new SweepClock();
