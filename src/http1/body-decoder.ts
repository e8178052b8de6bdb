// One incremental decoder for every HTTP/1.1 body framing (RFC 9112 §6.3): Content-Length,
// chunked (chunked.ts) and close-delimited. Socket reads in, body bytes out, what follows the
// body handed back; kept per connection and restarted per message. Framing is decided in framing.ts.
import { ChunkedDecoder } from './chunked.ts';
import { BODY_CHUNKED, BODY_LENGTH, BODY_NONE, BODY_UNTIL_CLOSE } from './framing.ts';

const EMPTY = Buffer.alloc(0);

export class BodyDecoder {
  /** BODY_NONE (done), BODY_LENGTH, BODY_CHUNKED or BODY_UNTIL_CLOSE. */
  kind = BODY_NONE;
  /** BODY_LENGTH: bytes still due. */
  remaining = 0;
  private chunked: ChunkedDecoder | null = null;
  private ended = false;

  /** Starts a body of framing `kind` (framing.ts); `length` for BODY_LENGTH. */
  start(kind: number, length = 0): void {
    this.kind = kind;
    this.remaining = length;
    this.ended = false;
    if (kind === BODY_CHUNKED) {
      if (this.chunked === null) this.chunked = new ChunkedDecoder();
      else this.chunked.reset();
    }
  }

  /** True once the whole body has been read. */
  get done(): boolean {
    switch (this.kind) {
      case BODY_LENGTH:
        return this.remaining === 0;
      case BODY_CHUNKED:
        return (this.chunked as ChunkedDecoder).done;
      case BODY_UNTIL_CLOSE:
        return this.ended;
      default:
        return true;
    }
  }

  /** True once a chunked body's first chunk-size line has been read; always for other framings. */
  get sized(): boolean {
    return this.kind !== BODY_CHUNKED || (this.chunked as ChunkedDecoder).sized;
  }

  /**
   * Decodes `input`, passing body bytes to `onData` (slices of `input`, no copies). Returns
   * what it did not consume: a partial chunk line to prepend to the next read, or, once `done`,
   * the bytes that follow the body. Throws ChunkedError on a malformed chunked body.
   */
  decode(input: Buffer, onData: (data: Buffer) => void): Buffer {
    switch (this.kind) {
      case BODY_LENGTH: {
        const take = Math.min(this.remaining, input.byteLength);
        if (take === 0) return input;
        const all = take === input.byteLength;
        onData(all ? input : input.subarray(0, take));
        this.remaining -= take;
        return all ? EMPTY : input.subarray(take);
      }
      case BODY_CHUNKED:
        return (this.chunked as ChunkedDecoder).decode(input, onData);
      case BODY_UNTIL_CLOSE:
        if (!this.ended && input.byteLength > 0) onData(input);
        return EMPTY;
      default:
        return input;
    }
  }

  /**
   * The connection ended. Returns true when that completes the body (close-delimited, or
   * already done), false when the body was cut short (RFC 9112 §8: incomplete).
   */
  end(): boolean {
    if (this.kind === BODY_UNTIL_CLOSE) this.ended = true;
    return this.done;
  }
}
