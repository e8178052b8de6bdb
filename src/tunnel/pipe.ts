// A tunnel: two ByteStreams (./types.ts) joined after a 101, bytes copied both ways with
// backpressure (the next read waits for the write before it), a peer's end passed on as our end
// of the other side, a break on either side tearing down both, and an idle timeout. It counts
// the bytes each way for the tunnel's access line. Groundwork for WebSocket tunnels (issue 8):
// nothing here knows WebSocket; not yet wired to a route.
import type { ByteStream } from './types.ts';

/** How a tunnel ended. */
export type TunnelEnd =
  /** Both peers ended their sides (each end passed on to the other). */
  | 'closed'
  /** No byte either way for `idleMs`. */
  | 'idle'
  /** One side broke (reset, write to a closed peer): both were torn down. */
  | 'error'
  /** `stop()` was called (shutdown). */
  | 'stopped';

export interface TunnelResult {
  readonly end: TunnelEnd;
  /** Bytes read from `client` and written to `upstream`. */
  readonly clientToUpstream: number;
  /** Bytes read from `upstream` and written to `client`. */
  readonly upstreamToClient: number;
  /** Which side ended or broke first, when one did. */
  readonly first: 'client' | 'upstream' | null;
  readonly error?: Error;
}

export interface TunnelOptions {
  /** Close both sides after this long without a byte either way. 0: never. */
  readonly idleMs: number;
  /** Milliseconds, for the idle check. @default Date.now */
  readonly now?: () => number;
}

export interface Tunnel {
  /** Resolves once both sides are done, however the tunnel ended. Never rejects. */
  readonly done: Promise<TunnelResult>;
  /** Tears both sides down now (shutdown past its grace period). */
  stop(reason?: Error): void;
}

/** Joins `client` and `upstream`; whatever happens, `done` resolves once with how it ended. */
export function pipeTunnel(client: ByteStream, upstream: ByteStream, options: TunnelOptions): Tunnel {
  const now = options.now ?? Date.now;
  let clientToUpstream = 0;
  let upstreamToClient = 0;
  let last = now();
  let first: 'client' | 'upstream' | null = null;
  let finished = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let resolveDone!: (result: TunnelResult) => void;
  const done = new Promise<TunnelResult>((resolve) => {
    resolveDone = resolve;
  });

  const finish = (end: TunnelEnd, error?: Error) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    resolveDone(error === undefined ? { end, clientToUpstream, upstreamToClient, first } : { end, clientToUpstream, upstreamToClient, first, error });
  };

  const tearDown = (end: TunnelEnd, error?: Error) => {
    if (finished) return;
    client.destroy(error);
    upstream.destroy(error);
    finish(end, error);
  };

  /** Copies `from` into `to` until `from` ends (then ends `to`) or either breaks. */
  const pump = async (from: ByteStream, to: ByteStream, side: 'client' | 'upstream'): Promise<void> => {
    const reader = from.readable.getReader();
    const writer = to.writable.getWriter();
    try {
      for (;;) {
        const { done: ended, value } = await reader.read();
        if (ended) break;
        last = now();
        if (side === 'client') clientToUpstream += value.byteLength;
        else upstreamToClient += value.byteLength;
        await writer.write(value);
      }
      first ??= side;
      // The peer is done sending: our side to the other peer ends too (half-close).
      await writer.close();
    } catch (error) {
      first ??= side;
      tearDown('error', error instanceof Error ? error : new Error(String(error)));
    } finally {
      reader.releaseLock();
      writer.releaseLock();
    }
  };

  const idleMs = options.idleMs;
  if (idleMs > 0) {
    const check = () => {
      const quiet = now() - last;
      if (quiet >= idleMs) tearDown('idle');
      else timer = setTimeout(check, idleMs - quiet);
    };
    timer = setTimeout(check, idleMs);
  }

  void Promise.all([pump(client, upstream, 'client'), pump(upstream, client, 'upstream')]).then(() => finish('closed'));

  return {
    done,
    stop(reason) {
      tearDown('stopped', reason);
    },
  };
}
