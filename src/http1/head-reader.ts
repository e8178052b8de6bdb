// Reading one message head (RFC 9112 §2.1) off socket reads: where it ends, the byte limit,
// bare-LF refusal, and the empty lines a server skips. Knows nothing of what the head says
// (start-line.ts and fields.ts parse it); HeadBuffer keeps the pieces of a head split over reads.
import { HeadBuffer } from './head-buffer.ts';

const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);

/** What `read` found: the head is complete, still arriving, over the limit, or has a bare LF. */
export type HeadResult = 'complete' | 'incomplete' | 'too-large' | 'bare-lf';

export interface HeadReaderOptions {
  /** The empty line ending the head may start at this offset, not later. */
  readonly maxBytes: number;
  /**
   * Server side: skip empty lines before a request line (RFC 9112 §2.2), and refuse a bare LF in
   * a head still arriving at once, rather than at the head timeout.
   */
  readonly server: boolean;
}

/** True when `buf` has an LF not preceded by CR; `before` is the byte before `buf` (-1: none). */
export function hasBareLf(buf: Buffer, before: number): boolean {
  for (let at = buf.indexOf(10); at >= 0; at = buf.indexOf(10, at + 1)) if ((at === 0 ? before : buf[at - 1]) !== 13) return true;
  return false;
}

export class HeadReader {
  /** After 'complete': the head, start line and field lines, without its final CRLFCRLF (latin1). */
  head = '';
  /** After 'complete': the bytes behind the head (a body, a pipelined request), or an empty buffer. */
  rest: Buffer = EMPTY;
  /**
   * Server side, while a head is still incomplete: its start line once that line has ended (so
   * a line that can never start a request, such as HTTP/0.9's `GET /`, is refused at once
   * rather than at the head timeout); null before, and after 'complete'.
   */
  startLine: string | null = null;
  private readonly parts = new HeadBuffer();

  constructor(readonly options: HeadReaderOptions) {}

  /** True while part of a head is buffered (the next read continues it). */
  get pending(): boolean {
    return this.parts.size > 0;
  }

  /** Bytes of a head buffered so far. */
  get size(): number {
    return this.parts.size;
  }

  /**
   * Takes one read. Returns 'complete' (see `head` and `rest`), 'incomplete' (the bytes
   * are kept: pass the next read), 'too-large' or 'bare-lf' (the reader is then unusable).
   */
  read(chunk: Buffer): HeadResult {
    if (this.parts.size === 0) return this.first(chunk);
    // The rest of a head: only the new bytes are searched (head-buffer.ts says why).
    const before = this.parts.lastByte;
    const whole = this.parts.push(chunk);
    if (whole !== null) return this.first(whole);
    if (this.options.server && this.startLine === null && chunk.indexOf(10) >= 0) this.noteStartLine(this.parts.peek());
    // (+3: a read may end inside the final CRLFCRLF of a head exactly at the limit)
    if (this.parts.size > this.options.maxBytes + 3) return 'too-large';
    if (this.options.server && hasBareLf(chunk, before)) return 'bare-lf';
    return 'incomplete';
  }

  /** A read that starts a head (or holds a whole one already buffered). */
  private first(input: Buffer): HeadResult {
    let buf = input;
    if (this.options.server) {
      // RFC 9112 §2.2: empty lines before a request line are ignored.
      let start = 0;
      while (start + 1 < buf.byteLength && buf[start] === 13 && buf[start + 1] === 10) start += 2;
      if (start > 0) buf = buf.subarray(start);
      if (buf.byteLength === 0) return 'incomplete';
    }
    const end = buf.indexOf(CRLFCRLF);
    const max = this.options.maxBytes;
    if (end >= 0 && end <= max) {
      this.startLine = null;
      this.head = buf.toString('latin1', 0, end);
      this.rest = end + 4 === buf.byteLength ? EMPTY : buf.subarray(end + 4);
      return 'complete';
    }
    if (buf.byteLength > max + 3) return 'too-large';
    // Lines end in CRLF (RFC 9112 §2.2); a bare LF would otherwise wait for the head timeout.
    if (this.options.server && hasBareLf(buf, -1)) return 'bare-lf';
    this.parts.push(buf);
    if (this.options.server) this.noteStartLine(buf);
    return 'incomplete';
  }

  private noteStartLine(buf: Buffer): void {
    // Empty lines before it are skipped here too: a read that ended inside one ("\r", then
    // "\n" + the request line) left it at the front of the buffered bytes.
    let start = 0;
    while (start + 1 < buf.byteLength && buf[start] === 13 && buf[start + 1] === 10) start += 2;
    const eol = buf.indexOf(CRLF, start);
    if (eol >= 0) this.startLine = buf.toString('latin1', start, eol);
  }
}
