// Writing to a Bun socket: `write()` takes what the kernel accepts and buffers nothing, so the
// rest is ours to keep until `drain`. One per connection, shared by our server and client.

/** The part of a Bun socket an Outbox writes to. */
export interface WritableSocket {
  write(data: Uint8Array, byteOffset?: number, byteLength?: number): number;
}

export class Outbox {
  /** Bytes the socket has not taken yet (a copy: callers may reuse their buffer). */
  unsent: Uint8Array | null = null;
  private waiter: (() => void) | null = null;

  /**
   * Writes `length` bytes of `bytes`. Returns undefined when the socket took them all, null when
   * it is closed, else a promise that resolves once the rest has been written (or the socket
   * went away: see `release`).
   */
  write(socket: WritableSocket, bytes: Uint8Array, length = bytes.byteLength): Promise<void> | undefined | null {
    const n = socket.write(bytes, 0, length);
    if (n === length) return undefined;
    if (n < 0) return null;
    this.unsent = Buffer.from(bytes.subarray(n, length));
    return new Promise<void>((resolve) => {
      this.waiter = resolve;
    });
  }

  /** The socket's `drain`: writes what is left, and wakes the writer once it is all out. */
  drain(socket: WritableSocket): void {
    const unsent = this.unsent;
    if (unsent === null) return;
    const n = socket.write(unsent);
    if (n >= 0 && n < unsent.byteLength) {
      this.unsent = unsent.subarray(n);
      return;
    }
    this.release(); // all written, or the socket is closed (the close handler says which)
  }

  /** Drops what was not written and wakes a waiting writer (the socket is done or gone). */
  release(): void {
    this.unsent = null;
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }
}
