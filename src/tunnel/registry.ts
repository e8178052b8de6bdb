// The open tunnels of the process: how many each route has (its `websocket.maxTunnels` cap),
// and every one of them, so that shutdown can say goodbye to all (close 1001 to both peers).
// Kept by route key, never by position, so a live reload keeps the counts (design.md).
import type { Tunnel } from './pipe.ts';

export class TunnelRegistry {
  private readonly perRoute = new Map<string, number>();
  private readonly open = new Set<Tunnel>();
  private closing = false;

  /** Counts a new tunnel for `route`, or false when the route is at `max` or shutdown began. */
  reserve(route: string, max: number): boolean {
    const count = this.perRoute.get(route) ?? 0;
    if (this.closing || count >= max) return false;
    this.perRoute.set(route, count + 1);
    return true;
  }

  /** Gives back a reservation that opened no tunnel (tracked ones are given back when they end). */
  release(route: string): void {
    const count = this.perRoute.get(route) ?? 0;
    if (count <= 1) this.perRoute.delete(route);
    else this.perRoute.set(route, count - 1);
  }

  /**
   * Tracks a tunnel opened on a reservation for `route` until it is done, then gives the
   * reservation back; a shutdown already under way tells it at once.
   */
  track(route: string, tunnel: Tunnel, graceMs: () => number): void {
    this.open.add(tunnel);
    void tunnel.done.then(() => {
      this.open.delete(tunnel);
      this.release(route);
    });
    if (this.closing) tunnel.goAway(graceMs());
  }

  /** Shutdown: every tunnel says 1001 to both peers; resolves when all are done or after `graceMs`. */
  async goAway(graceMs: number): Promise<void> {
    this.closing = true;
    const all = [...this.open];
    for (const tunnel of all) {
      try {
        tunnel.goAway(graceMs);
      } catch {
        // One tunnel's failure must not keep the goodbye from the others; the grace ends it.
        tunnel.stop();
      }
    }
    await Promise.all(all.map((tunnel) => tunnel.done));
  }
}
