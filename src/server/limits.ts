// What a listener does about clients that misbehave, the same on every runtime: timeouts for
// a request head, a request body (stalled, or too slow on average), an idle keep-alive
// connection and a client that stops taking our bytes; and caps on open connections, for the
// whole process and per client address. The defaults are nginx's where it has one.
import type { Socket } from 'node:net';
import { normalizePeer } from '../proxy/headers.ts';

export interface ClientLimits {
  /** A request head must arrive whole within this long from its first byte (or from the connection's start): 408. */
  readonly headerTimeoutMs: number;
  /** A request body that sends nothing we asked for this long: 408 (nginx client_body_timeout). */
  readonly bodyTimeoutMs: number;
  /** Once we have waited BODY_RATE_GRACE_MS for a body, it must average this many bytes per second of waiting: 408. 0: off. */
  readonly bodyMinBytesPerSecond: number;
  /** A keep-alive connection with no request for this long is closed. */
  readonly idleTimeoutMs: number;
  /** A client that takes none of our bytes for this long while some wait is cut (nginx send_timeout). */
  readonly sendTimeoutMs: number;
  /** Open client connections across the process's listeners; past it new ones are refused. */
  readonly maxConnections: number;
  /** Open client connections from one address; past it its new ones are refused. */
  readonly maxConnectionsPerIp: number;
}

export const DEFAULT_CLIENT_LIMITS: ClientLimits = {
  headerTimeoutMs: 30_000,
  bodyTimeoutMs: 60_000,
  bodyMinBytesPerSecond: 500,
  idleTimeoutMs: 5_000,
  sendTimeoutMs: 60_000,
  maxConnections: 10_000,
  maxConnectionsPerIp: 1_000,
};

/** The minimum body rate is judged only after this much waiting: a body's first packets may be slow. */
export const BODY_RATE_GRACE_MS = 10_000;

/** How often refusals are logged at most: once per interval, with a count. */
export const REFUSAL_REPORT_MS = 10_000;

export interface RefusalReport {
  /** Connections refused since the last report. */
  readonly refused: number;
  /** Why the last one was refused. */
  readonly reason: 'max-connections' | 'max-connections-per-ip';
  /** The address of the last one refused. */
  readonly client: string;
  readonly open: number;
}

/**
 * Counts open client connections, all listeners together, and says whether a new one may be
 * served. The first refusal after a quiet interval is reported at once, the rest of the
 * interval's as one report at its end: a flood is logged once per interval, not per connection.
 */
export class ConnectionGate {
  private open = 0;
  private readonly perIp = new Map<string, number>();
  private unreported = 0;
  private last: { reason: RefusalReport['reason']; client: string } | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly limits: Pick<ClientLimits, 'maxConnections' | 'maxConnectionsPerIp'>,
    private readonly report: (report: RefusalReport) => void,
    private readonly intervalMs = REFUSAL_REPORT_MS,
  ) {}

  get connections(): number {
    return this.open;
  }

  /** True (and counted) when a connection from `client` may be served; call `release` when it closes. */
  admit(client: string): boolean {
    const fromClient = this.perIp.get(client) ?? 0;
    if (this.open >= this.limits.maxConnections) return this.refuse('max-connections', client);
    if (fromClient >= this.limits.maxConnectionsPerIp) return this.refuse('max-connections-per-ip', client);
    this.open++;
    this.perIp.set(client, fromClient + 1);
    return true;
  }

  release(client: string): void {
    const fromClient = this.perIp.get(client);
    if (fromClient === undefined) return;
    this.open--;
    if (fromClient <= 1) this.perIp.delete(client);
    else this.perIp.set(client, fromClient - 1);
  }

  /** Stops the pending report (shutdown), reporting what it held. */
  close(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flush();
  }

  private refuse(reason: RefusalReport['reason'], client: string): false {
    this.last = { reason, client };
    if (this.timer === undefined) {
      this.report({ refused: 1, reason, client, open: this.open });
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, this.intervalMs);
      (this.timer as { unref?: () => void }).unref?.();
    } else this.unreported++;
    return false;
  }

  private flush(): void {
    if (this.unreported === 0 || this.last === null) return;
    this.report({ refused: this.unreported, reason: this.last.reason, client: this.last.client, open: this.open });
    this.unreported = 0;
  }
}

/** What a refused plain-HTTP connection gets before it is closed. */
export const TOO_MANY_CONNECTIONS = Buffer.from(
  'HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 21\r\nconnection: close\r\n\r\ntoo many connections\n',
  'latin1',
);

/**
 * Admits a node:net socket through `gate` (released when it closes), or refuses it: a plain
 * one gets a 503 and is closed, a TLS one (no handshake yet) is closed at once.
 */
export function admitSocket(gate: ConnectionGate | undefined, socket: Socket, plain: boolean): boolean {
  if (gate === undefined) return true;
  const client = normalizePeer(socket.remoteAddress ?? '');
  if (!gate.admit(client)) {
    socket.on('error', () => {});
    if (plain) socket.end(TOO_MANY_CONNECTIONS);
    else socket.destroy();
    // Unread request bytes would turn our close into a reset that can eat the 503.
    socket.resume();
    setTimeout(() => socket.destroy(), 1_000).unref?.();
    return false;
  }
  socket.once('close', () => gate.release(client));
  return true;
}
