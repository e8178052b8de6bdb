// How long a message body is (RFC 9112 §6.3), decided from the framing fields of a parsed head:
// one pure function for requests (our server) and one for responses (our client). The bodiless
// rules for HEAD and 1xx/204/304 come from http/body-rules.ts.
import { endsAtHead } from '../http/body-rules.ts';
import type { FramingFields } from './fields.ts';
import { hasToken } from './fields.ts';

/** Body framings. */
export const BODY_NONE = 0;
export const BODY_LENGTH = 1;
export const BODY_CHUNKED = 2;
export const BODY_UNTIL_CLOSE = 3;

export interface RequestFraming {
  /** BODY_NONE, BODY_LENGTH or BODY_CHUNKED (a request is never close-delimited). */
  readonly kind: number;
  /** BODY_LENGTH: the byte count. */
  readonly length: number;
}

/**
 * A request whose body length cannot be known for sure: answered with `status` and `message`,
 * then the connection closes, since where the next request would start is exactly what is in
 * doubt (RFC 9112 §6.3 items 3-5, §11.2).
 */
export interface FramingRefusal {
  readonly status: 400 | 501;
  readonly message: string;
}

const DIGITS = /^\d+$/;
const ZEROS = /^0+$/;
// The common answers are shared objects: most requests allocate nothing here.
const NONE: RequestFraming = { kind: BODY_NONE, length: 0 };
const CHUNKED: RequestFraming = { kind: BODY_CHUNKED, length: 0 };

export const BOTH_FRAMINGS: FramingRefusal = { status: 400, message: 'bad request: Content-Length with Transfer-Encoding' };
export const BAD_LENGTH: FramingRefusal = { status: 400, message: 'bad request: invalid Content-Length' };
export const TE_IN_HTTP10: FramingRefusal = { status: 400, message: 'bad request: Transfer-Encoding in HTTP/1.0' };
export const CHUNKED_NOT_LAST: FramingRefusal = { status: 400, message: 'bad request: chunked is not the last transfer coding' };
export const CHUNKED_TWICE: FramingRefusal = { status: 400, message: 'bad request: chunked applied twice' };
export const UNKNOWN_CODING: FramingRefusal = { status: 501, message: 'not implemented: transfer coding' };

/**
 * RFC 9110 §9.3.1-2: content in a GET or HEAD has no defined meaning, and the RFC names it as a
 * smuggling vector some servers reject; the runtimes also disagree about it (Bun's Request
 * carries it, Deno's refuses it, @hono/node-server drops it). Refused everywhere, the
 * connection closed. An empty body (`Content-Length: 0`) is no body.
 */
export const BODY_ON_GET: FramingRefusal = { status: 400, message: 'bad request: GET or HEAD with a body' };

/** BODY_ON_GET when `method` takes no body but `framing` declares one, else null. */
export function bodyRefusal(method: string, framing: RequestFraming): FramingRefusal | null {
  return framing.kind !== BODY_NONE && (method === 'GET' || method === 'HEAD') ? BODY_ON_GET : null;
}

const isChunked = (coding: string) => coding.trim().toLowerCase() === 'chunked';

/** True when `value` is a FramingRefusal rather than a framing. */
export const isRefusal = (value: RequestFraming | FramingRefusal): value is FramingRefusal => 'status' in value;

/**
 * A request body's framing (RFC 9112 §6.3 items 3-6), or why it is refused. Only `chunked` alone
 * is decoded; everything a front end and a back end could read two ways is refused rather than
 * guessed at (the request smuggling class, RFC 9112 §11.2):
 * - Transfer-Encoding beside Content-Length (§6.1 allows a server to proceed; we do not);
 * - Transfer-Encoding in HTTP/1.0, which 1.0 peers do not know (§6.1);
 * - a coding list whose last coding is not chunked (400, §6.3 item 4) or which names any other
 *   coding (501: we cannot undo it, and must not pass it on), or chunked twice (400);
 * - a Content-Length that is not one run of decimal digits: signed, hex, padded, or a list,
 *   even of equal values (two fields arrive joined into a list).
 */
export function requestFraming(fields: FramingFields, http10: boolean): RequestFraming | FramingRefusal {
  const coding = fields.transferEncoding;
  const length = fields.contentLength;
  if (coding !== null) {
    if (length !== null) return BOTH_FRAMINGS;
    if (http10) return TE_IN_HTTP10;
    if (isChunked(coding)) return CHUNKED;
    const codings = coding.split(',');
    if (!isChunked(codings[codings.length - 1] as string)) return CHUNKED_NOT_LAST;
    // Chunked applied twice (RFC 9112 §6.1 forbids it): llhttp refuses it too.
    for (let i = 0; i < codings.length - 1; i++) if (isChunked(codings[i] as string)) return CHUNKED_TWICE;
    return UNKNOWN_CODING;
  }
  if (length === null) return NONE;
  if (!DIGITS.test(length)) return BAD_LENGTH;
  if (ZEROS.test(length)) return NONE;
  // Past 2^53 the number would no longer be the one sent.
  const bytes = Number(length);
  return Number.isSafeInteger(bytes) ? { kind: BODY_LENGTH, length: bytes } : BAD_LENGTH;
}

export interface ResponseFraming {
  /** BODY_NONE, BODY_LENGTH, BODY_CHUNKED or BODY_UNTIL_CLOSE. */
  readonly kind: number;
  /** BODY_LENGTH: the byte count. */
  readonly length: number;
  /** The one Content-Length value to pass on (a list of equal values folded), or null for none. */
  readonly contentLength: string | null;
  /** The connection may carry another exchange after this one. */
  readonly keepAlive: boolean;
}

export const INVALID_CONTENT_LENGTH = 'invalid Content-Length';

/**
 * A response body's framing (RFC 9112 §6.3) for a request made with `method`, or the reason
 * the response cannot be framed. 1xx answers are the caller's (they precede this one).
 */
export function responseFraming(method: string, status: number, http10: boolean, fields: FramingFields): ResponseFraming | string {
  let length: string | null = null;
  if (fields.contentLength !== null) {
    // Repeated or listed lengths must agree (RFC 9112 §6.3 item 5); one value is passed on.
    const listed = fields.contentLength;
    if (DIGITS.test(listed)) length = listed;
    else
      for (const part of listed.split(',')) {
        const n = part.trim();
        if (!DIGITS.test(n) || (length !== null && n !== length)) return INVALID_CONTENT_LENGTH;
        length = n;
      }
  }
  const connection = fields.connection;
  let keepAlive = http10 ? hasToken(connection, 'keep-alive') : !hasToken(connection, 'close');
  // Items 1-2: these end at the empty line whatever their fields say, which describe the body
  // a GET would get and travel on as they are.
  if (endsAtHead(method, status)) return { kind: BODY_NONE, length: 0, contentLength: length, keepAlive };
  const coding = fields.transferEncoding;
  if (coding !== null) {
    // We decode chunked and nothing else, and Transfer-Encoding does not travel on: any other
    // coding would reach the client unmarked.
    if (!isChunked(coding)) return `unsupported transfer coding "${coding}"`;
    // Both TE and CL, or TE in HTTP/1.0, are a framing doubt (§6.1, §6.3 item 3): the
    // connection is not reused, and the Content-Length, overridden, does not travel on.
    if (length !== null || http10) keepAlive = false;
    return { kind: BODY_CHUNKED, length: 0, contentLength: null, keepAlive };
  }
  if (length !== null) return { kind: BODY_LENGTH, length: Number(length), contentLength: length, keepAlive };
  // Item 8: read until the connection closes, which therefore cannot be reused.
  return { kind: BODY_UNTIL_CLOSE, length: 0, contentLength: null, keepAlive: false };
}
