// A tunnel: two ByteStreams (./types.ts) joined after a 101, bytes copied both ways with
// backpressure (the next read waits for the write before it), a peer's end passed on as our end
// of the other side, a break on either side tearing down both, and an idle timeout. It counts
// the bytes each way for the tunnel's access line. With `websocket`, it also follows frame
// boundaries (./frames.ts) so that `goAway` can say 1001 Going Away to both peers between two
// frames on shutdown, and wait for their close frames.
import { closeFrame, FrameCursor, GOING_AWAY, OP_CLOSE } from './frames.ts';
import type { ByteStream } from './types.ts';

/** How a tunnel ended. */
export type TunnelEnd =
  /** Both peers ended their sides (each end passed on to the other). */
  | 'closed'
  /** No byte either way for `idleMs`. */
  | 'idle'
  /** One side broke (reset, write to a closed peer): both were torn down. */
  | 'error'
  /** `stop()` was called, or `goAway` ran (shutdown). */
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
  /** The bytes are a WebSocket connection (client first): follow frames, allow `goAway`. @default false */
  readonly websocket?: boolean;
}

export interface Tunnel {
  /** Resolves once both sides are done, however the tunnel ended. Never rejects. */
  readonly done: Promise<TunnelResult>;
  /** Tears both sides down now (shutdown past its grace period). */
  stop(reason?: Error): void;
  /**
   * WebSocket tunnels: sends close 1001 to both peers, each between two frames (the frame in
   * flight is passed on whole first), stops passing on frames, and ends both sides once each
   * peer has sent its close frame or ended, or tears them down after `graceMs`. Other tunnels: `stop`.
   */
  goAway(graceMs: number): void;
}

/** One direction of a tunnel. */
interface Direction {
  readonly side: 'client' | 'upstream';
  readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  /** Frame boundaries of what `side` sends (websocket tunnels only). */
  readonly cursor: FrameCursor | null;
  /** Our close frames to the other peer are masked when that peer is the server. */
  readonly masked: boolean;
  writing: boolean;
  /** `side` ended its sending (FIN): the writer to the other peer is closed or closing. */
  ended: boolean;
  /** Our close frame has gone to the other peer: `side`'s frames are no longer passed on. */
  saidGoodbye: boolean;
  /** `side` sent a close frame (or ended) after goAway began. */
  done: boolean;
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

  let goingAway = false;
  const makeDirection = (from: ByteStream, to: ByteStream, side: 'client' | 'upstream') => ({
    reader: from.readable.getReader(),
    dir: {
      side,
      writer: to.writable.getWriter(),
      cursor: options.websocket === true ? new FrameCursor() : null,
      masked: side === 'client',
      writing: false,
      ended: false,
      saidGoodbye: false,
      done: false,
    } as Direction,
  });
  const fromClient = makeDirection(client, upstream, 'client');
  const fromUpstream = makeDirection(upstream, client, 'upstream');

  /** Sends our close frame to the peer `dir` writes to; its side's frames stop there. */
  const sayGoodbye = (dir: Direction) => {
    if (dir.saidGoodbye) return;
    dir.saidGoodbye = true;
    // The other peer's side is closed or closing (its FIN passed on): nothing more may go there.
    // (Node 20's WritableStream throws, not rejects, on a write during a close.)
    if (dir.ended) return;
    try {
      dir.writer.write(closeFrame(GOING_AWAY, 'going away', dir.masked)).catch(() => {});
    } catch {
      // closing under us: the peer is leaving anyway
    }
  };

  /** Both peers have answered our goodbye (or ended): end both sides after what was written. */
  const peerDone = (dir: Direction) => {
    dir.done = true;
    if (!fromClient.dir.done || !fromUpstream.dir.done || finished) return;
    const close = (d: Direction) => (d.ended ? Promise.resolve() : d.writer.close());
    void Promise.allSettled([close(fromClient.dir), close(fromUpstream.dir)]).then(() => tearDown('stopped'));
  };

  /** Watches what `dir`'s side sends after our goodbye for its close frame; nothing is passed on. */
  const watchForClose = (dir: Direction, bytes: Uint8Array, from: number) => {
    if (!dir.done && (dir.cursor as FrameCursor).scan(bytes, from, (opcode) => opcode === OP_CLOSE) >= 0) peerDone(dir);
  };

  /** Copies `from` into `to` until `from` ends (then ends `to`) or either breaks. */
  const pump = async ({ reader, dir }: { reader: ReadableStreamDefaultReader<Uint8Array>; dir: Direction }): Promise<void> => {
    const { side, writer, cursor } = dir;
    try {
      for (;;) {
        const { done: ended, value } = await reader.read();
        if (ended) break;
        last = now();
        if (side === 'client') clientToUpstream += value.byteLength;
        else upstreamToClient += value.byteLength;
        if (dir.saidGoodbye) {
          watchForClose(dir, value, 0);
          continue;
        }
        if (cursor !== null && goingAway) {
          // Pass on the rest of the frame in flight, then say goodbye in its place.
          const cut = cursor.atBoundary ? 0 : cursor.scan(value, 0, () => true);
          if (cut < 0) {
            await writer.write(value);
            continue;
          }
          if (cut > 0) await writer.write(value.subarray(0, cut));
          sayGoodbye(dir);
          watchForClose(dir, value, cut);
          continue;
        }
        cursor?.scan(value);
        dir.writing = true;
        await writer.write(value);
        dir.writing = false;
        if (goingAway && cursor?.atBoundary) sayGoodbye(dir);
      }
      first ??= side;
      dir.ended = true;
      if (goingAway) {
        peerDone(dir);
        return;
      }
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

  void Promise.all([pump(fromClient), pump(fromUpstream)]).then(() => finish(goingAway ? 'stopped' : 'closed'));

  return {
    done,
    stop(reason) {
      tearDown('stopped', reason);
    },
    goAway(graceMs) {
      if (finished || goingAway) return;
      if (options.websocket !== true) {
        tearDown('stopped');
        return;
      }
      goingAway = true;
      const grace = setTimeout(() => tearDown('stopped'), graceMs);
      void done.then(() => clearTimeout(grace));
      // A direction idle between frames says goodbye now; one mid-write does after its write.
      // One whose peer already ended (half-closed tunnel) has nothing left to wait for.
      for (const { dir } of [fromClient, fromUpstream]) {
        if (!dir.writing && (dir.cursor as FrameCursor).atBoundary) sayGoodbye(dir);
        if (dir.ended) peerDone(dir);
      }
    },
  };
}
