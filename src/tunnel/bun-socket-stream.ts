// A Bun socket after 101 Switching Protocols, as a ByteStream (./types.ts): our Bun server
// hands the client's side over with it, our Bun client the upstream's. Reads queue with
// backpressure (the socket pauses), writes go through the connection's Outbox. No framing.

import { BODY_QUEUE } from '../http/buffering.ts';
import type { Outbox, WritableSocket } from '../http1/outbox.ts';
import type { ByteStream } from './types.ts';

/** The socket calls a tunnel makes. */
export interface TunnelSocket extends WritableSocket {
  /** Sends FIN after what was written and keeps reading (a half-close). */
  shutdown(): void;
  terminate(): void;
  pause(): void;
  resume(): void;
}

/**
 * The glue calls `data`, `end` (peer FIN) and `closed` from its socket handlers and keeps
 * calling `out.drain` on drain; the owner of the stream reads `readable` and writes `writable`.
 */
export class SocketByteStream implements ByteStream {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  private reader!: ReadableStreamDefaultController<Uint8Array>;
  private writer!: WritableStreamDefaultController;
  private paused = false;
  /** The readable is closed, errored or cancelled: later input is dropped. */
  private readDone = false;
  /** The socket is closed. */
  private gone = false;

  constructor(
    private readonly socket: TunnelSocket,
    private readonly out: Outbox,
    /** Bytes the peer sent right behind the message head, already read. */
    first: Buffer | null,
  ) {
    this.readable = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.reader = controller;
        },
        pull: () => this.resume(),
        cancel: () => {
          // Nobody reads any more: drop what comes, but never stall the socket over it.
          this.readDone = true;
          this.resume();
        },
      },
      BODY_QUEUE,
    );
    this.writable = new WritableStream<Uint8Array>({
      start: (controller) => {
        this.writer = controller;
      },
      write: (chunk) => this.write(chunk),
      close: () => {
        // Every write has resolved, so nothing is left in the Outbox: FIN after it. shutdown(),
        // not end(): on Bun 1.4.5 end() closes the socket whole (the peer's later bytes are
        // lost and 'close' fires at once), shutdown() closes only our sending half.
        if (!this.gone) socket.shutdown();
      },
      abort: (reason) => this.destroy(reason instanceof Error ? reason : undefined),
    });
    if (first !== null && first.byteLength > 0) this.data(first);
  }

  /** Bytes from the peer. */
  data(chunk: Buffer): void {
    if (this.readDone) return;
    this.reader.enqueue(chunk);
    if ((this.reader.desiredSize ?? 1) <= 0 && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  /** The peer closed its side (FIN): the readable ends, our side stays writable. */
  end(): void {
    if (this.readDone) return;
    this.readDone = true;
    this.reader.close();
  }

  /** The socket is closed: with `error` (or before the peer's FIN) the streams error. */
  closed(error?: Error): void {
    if (this.gone) return;
    this.gone = true;
    const reason = error ?? new Error('connection closed');
    this.out.release();
    this.writer.error(reason);
    if (this.readDone) return;
    this.readDone = true;
    if (error === undefined) this.reader.close();
    else this.reader.error(reason);
  }

  destroy(reason?: Error): void {
    if (this.gone) return;
    this.socket.terminate();
    this.closed(reason ?? new Error('connection destroyed'));
  }

  private resume(): void {
    if (!this.paused || this.gone) return;
    this.paused = false;
    this.socket.resume();
  }

  private async write(chunk: Uint8Array): Promise<void> {
    if (this.gone) throw new Error('connection closed');
    if (chunk.byteLength === 0) return;
    const pending = this.out.write(this.socket, chunk);
    if (pending === null) throw new Error('connection closed');
    if (pending === undefined) return;
    await pending;
    // The Outbox also wakes a waiting writer when the socket went away with bytes unsent.
    if (this.gone) throw new Error('connection closed');
  }
}
