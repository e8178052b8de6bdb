// Chunked transfer coding (RFC 9112 §7.1), decoded incrementally from socket reads: request
// bodies on our Bun server, response bodies on our Bun client (both through body-decoder.ts).

const CRLF = Buffer.from('\r\n');
const HEX = /^[0-9A-Fa-f]{1,13}$/;
// A chunk extension or a trailer line holds no control character but HTAB: a bare CR or LF in
// one is a line end to some parser and data to another (RFC 9112 §7.1.1, §2.2).
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
// A trailer field line: a token, a colon, a value (RFC 9112 §7.1.2, §5).
const TRAILER_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:/;
/** Longest chunk-size line (size plus extensions) accepted. */
const MAX_LINE_BYTES = 4096;
/** Largest trailer section accepted (the fields are read and dropped). */
const MAX_TRAILER_BYTES = 64 * 1024;

const SIZE_LINE = 0;
const DATA = 1;
const DATA_END = 2;
const TRAILERS = 3;
const DONE = 4;

export class ChunkedError extends Error {
  override readonly name = 'ChunkedError';
}

export class ChunkedDecoder {
  private state = SIZE_LINE;
  private remaining = 0;
  private trailerBytes = 0;
  /** The first chunk-size line has been read (and was valid). */
  sized = false;

  /** Starts a new body (decoders are kept per connection, not made per message). */
  reset(): void {
    this.state = SIZE_LINE;
    this.remaining = 0;
    this.trailerBytes = 0;
    this.sized = false;
  }

  /** True once the last chunk and the trailer section have been read. */
  get done(): boolean {
    return this.state === DONE;
  }

  /**
   * Decodes `input`, passing chunk data to `onData` (slices of `input`, no copies). Returns the
   * bytes not consumed: an incomplete line to prepend to the next read, or, once `done`, what
   * follows the message (a pipelined request). Throws ChunkedError on a malformed body.
   */
  decode(input: Buffer, onData: (data: Buffer) => void): Buffer {
    let buf = input;
    while (buf.byteLength > 0 && this.state !== DONE) {
      if (this.state === DATA) {
        const take = Math.min(this.remaining, buf.byteLength);
        onData(take === buf.byteLength ? buf : buf.subarray(0, take));
        this.remaining -= take;
        buf = buf.subarray(take);
        if (this.remaining === 0) this.state = DATA_END;
        continue;
      }
      if (this.state === DATA_END) {
        if (buf.byteLength < 2) return buf;
        if (buf[0] !== 13 || buf[1] !== 10) throw new ChunkedError('chunk data not followed by CRLF');
        buf = buf.subarray(2);
        this.state = SIZE_LINE;
        continue;
      }
      const eol = buf.indexOf(CRLF);
      if (eol < 0) {
        if (buf.byteLength > MAX_LINE_BYTES) throw new ChunkedError('chunk line too long');
        return buf;
      }
      if (this.state === TRAILERS) {
        this.trailerBytes += eol + 2;
        if (this.trailerBytes > MAX_TRAILER_BYTES) throw new ChunkedError('trailer section too large');
        if (eol === 0) this.state = DONE;
        else {
          // Dropped, but checked: read loosely, a request pipelined behind would be a trailer here.
          const line = buf.toString('latin1', 0, eol);
          if (!TRAILER_LINE.test(line) || CONTROL.test(line)) throw new ChunkedError('invalid trailer field');
        }
        buf = buf.subarray(eol + 2);
        continue;
      }
      if (eol > MAX_LINE_BYTES) throw new ChunkedError('chunk line too long');
      const line = buf.toString('latin1', 0, eol);
      buf = buf.subarray(eol + 2);
      const semi = line.indexOf(';');
      // BWS before extensions is tolerated (RFC 9112 §7.1.1); the size itself is bare hex.
      const hex = semi < 0 ? line : line.slice(0, semi).trimEnd();
      if (!HEX.test(hex)) throw new ChunkedError('invalid chunk size');
      if (semi >= 0 && CONTROL.test(line)) throw new ChunkedError('invalid chunk extension');
      const size = Number.parseInt(hex, 16);
      this.sized = true;
      if (size === 0) this.state = TRAILERS;
      else {
        this.remaining = size;
        this.state = DATA;
      }
    }
    return buf;
  }
}
