// Start lines (RFC 9112 §3, §4): the request line our server reads and the status line our
// client reads, as pure functions that return the parts or the reason they are refused.
import type { RequestLine } from '../app-env.ts';
import { plainReason } from '../http/reason.ts';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// RFC 9112 §3.2: visible ASCII only; anything else in a target is an error, not ours to fix.
const TARGET = /^[\x21-\x7e]+$/;
const STATUS_DIGITS = /^\d{3}$/;
// A bare CR or LF in a reason phrase ends the line for other parsers and hides the field line
// after it from ours (the line is cut at the first CRLF): refused, where other odd bytes in a
// reason only drop the reason (plainReason).
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const REASON_CONTROL = /[\x00\r\n]/;

export const MALFORMED_REQUEST_LINE = 'bad request: malformed request line';
export const UNSUPPORTED_VERSION = 'bad request: unsupported HTTP version';

/**
 * Parses `method SP request-target SP HTTP-version` from `head` up to `eol` (the first CRLF, or
 * the head's length). Returns the line, or the reason it is refused. Only HTTP/1.0 and 1.1.
 */
export function parseRequestLine(head: string, eol: number): RequestLine | string {
  const sp1 = head.indexOf(' ');
  const sp2 = head.indexOf(' ', sp1 + 1);
  // A stray space lands in the target or the version, and fails there.
  if (sp1 <= 0 || sp2 < 0 || sp2 >= eol) return MALFORMED_REQUEST_LINE;
  const method = head.slice(0, sp1);
  const target = head.slice(sp1 + 1, sp2);
  if (!TOKEN.test(method) || !TARGET.test(target)) return MALFORMED_REQUEST_LINE;
  const version = head.slice(sp2 + 1, eol);
  if (version === 'HTTP/1.1') return { method, target, version: '1.1' };
  if (version === 'HTTP/1.0') return { method, target, version: '1.0' };
  return UNSUPPORTED_VERSION;
}

export interface StatusLine {
  /** `"1.0"` or `"1.1"`. */
  readonly version: string;
  /** Three digits, 000-999: which of them to accept is the caller's rule. */
  readonly status: number;
  /** The reason phrase when it is plain (PLAIN_REASON), else empty. */
  readonly reason: string;
}

export const MALFORMED_STATUS_LINE = 'invalid status line';

/** Parses `HTTP/1.x SP 3DIGIT [SP reason-phrase]` from `head` up to `eol`; returns it, or the reason it is refused. */
export function parseStatusLine(head: string, eol: number): StatusLine | string {
  const minor = head.charCodeAt(7);
  if (eol < 12 || !head.startsWith('HTTP/1.') || (minor !== 48 && minor !== 49) || head.charCodeAt(8) !== 32) return MALFORMED_STATUS_LINE;
  // RFC 9112 §4: the SP after the code is required, the reason may be empty; tolerate its absence.
  if (eol > 12 && head.charCodeAt(12) !== 32) return MALFORMED_STATUS_LINE;
  const digits = head.slice(9, 12);
  if (!STATUS_DIGITS.test(digits)) return MALFORMED_STATUS_LINE;
  const reason = eol > 13 ? head.slice(13, eol) : '';
  if (REASON_CONTROL.test(reason)) return MALFORMED_STATUS_LINE;
  return { version: minor === 48 ? '1.0' : '1.1', status: Number(digits), reason: plainReason(reason) };
}
