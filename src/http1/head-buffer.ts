// A message head arriving over several reads. Joining each read onto what came before and
// searching it all again costs O(n²) for a head sent in tiny pieces (a 64 KiB head sent a byte at
// a time took ~390 ms of CPU that way); this keeps the pieces and looks only at the new bytes
// and the three before them.

const CRLFCRLF = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);

export class HeadBuffer {
  private parts: Buffer[] = [];
  /** The last (up to) three bytes buffered: a CRLFCRLF may start there. */
  private tail: Buffer = EMPTY;
  /** Bytes buffered. */
  size = 0;

  /** The byte before the next read, or -1 when nothing is buffered. */
  get lastByte(): number {
    return this.tail.byteLength === 0 ? -1 : (this.tail[this.tail.byteLength - 1] as number);
  }

  /** Everything buffered so far as one Buffer, leaving it buffered (a copy when in pieces). */
  peek(): Buffer {
    return this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.size);
  }

  /**
   * Adds `chunk`. Returns everything buffered as one Buffer (and empties itself) once the end of
   * the head has arrived, else null.
   */
  push(chunk: Buffer): Buffer | null {
    const probe = this.tail.byteLength === 0 ? chunk : Buffer.concat([this.tail, chunk]);
    this.parts.push(chunk);
    this.size += chunk.byteLength;
    if (probe.indexOf(CRLFCRLF) >= 0) {
      const all = this.parts.length === 1 ? chunk : Buffer.concat(this.parts, this.size);
      this.parts = [];
      this.tail = EMPTY;
      this.size = 0;
      return all;
    }
    this.tail = probe.byteLength <= 3 ? probe : Buffer.from(probe.subarray(probe.byteLength - 3));
    return null;
  }
}
