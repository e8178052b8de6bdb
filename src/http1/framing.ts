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
  /**
   * The connection must close after this exchange: framing we cannot trust (the request then
   * goes on without a body, so the app answers from its headers) or Transfer-Encoding in 1.0.
   */
  readonly close: boolean;
}

const DIGITS = /^\d+$/;
const ZEROS = /^0+$/;
// The common answers are shared objects: most requests allocate nothing here.
const NONE: RequestFraming = { kind: BODY_NONE, length: 0, close: false };
const NONE_CLOSE: RequestFraming = { kind: BODY_NONE, length: 0, close: true };
const CHUNKED: RequestFraming = { kind: BODY_CHUNKED, length: 0, close: false };
const CHUNKED_CLOSE: RequestFraming = { kind: BODY_CHUNKED, length: 0, close: true };

const isChunked = (coding: string) => coding.trim().toLowerCase() === 'chunked';

/**
 * A request body's framing (RFC 9112 §6.3 items 3-6). Chunked alone is decoded; any other
 * coding, Transfer-Encoding beside Content-Length (a smuggling vector, §6.1), or a
 * Content-Length that is not one decimal number leaves the request bodiless and the
 * connection closing.
 */
export function requestFraming(fields: FramingFields, http10: boolean): RequestFraming {
  const coding = fields.transferEncoding;
  const length = fields.contentLength;
  if (coding !== null) {
    if (length !== null || !isChunked(coding)) return NONE_CLOSE;
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message is suspect; close after it.
    return http10 ? CHUNKED_CLOSE : CHUNKED;
  }
  if (length === null) return NONE;
  if (!DIGITS.test(length)) return NONE_CLOSE;
  if (ZEROS.test(length)) return NONE;
  return { kind: BODY_LENGTH, length: Number(length), close: false };
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
