// The contract every listener adapter keeps, whatever runtime server it wraps.
import type { ConnInfo } from '../app-env.ts';

/** `app.fetch` bound to connection facts. */
export type AppFetch = (request: Request, conn: ConnInfo) => Response | Promise<Response>;

export interface ListenOptions {
  readonly hostname: string;
  readonly port: number;
  /** Largest request head, in bytes, where the runtime lets us set it. */
  readonly maxHeaderBytes: number;
  /**
   * Told about input refused before it became a request (unparsable head, slow head), where the
   * listener answers by itself. Listeners whose runtime answers such input unseen do not call it.
   */
  readonly onBadRequest?: (info: { client: string; status: number; reason: string }) => void;
}

export interface Listener {
  readonly hostname: string;
  readonly port: number;
  /**
   * Stops accepting at once, lets requests in flight finish for up to `graceMs`, then closes
   * whatever is left. Resolves when the listener is closed.
   */
  stop(graceMs: number): Promise<void>;
}
