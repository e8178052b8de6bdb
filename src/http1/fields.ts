// Field lines of an HTTP/1.1 head (RFC 9112 §5), parsed straight into a Headers object. Shared
// by our server (request heads) and client (response heads) on Bun. The head is a latin1 string:
// one char per byte, so values keep their bytes.
import { HOP_BY_HOP } from '../http/hop-by-hop.ts';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// No control characters but HTAB (RFC 9110 §5.5): no NUL, no bare CR or LF either.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;

/** The fields that decide framing and connection handling, joined like repeated fields are. */
export interface FramingFields {
  host: string | null;
  contentLength: string | null;
  transferEncoding: string | null;
  connection: string | null;
  expect: string | null;
}

export function framingFields(): FramingFields {
  return { host: null, contentLength: null, transferEncoding: null, connection: null, expect: null };
}

// The lengths of the hop-by-hop names (http/hop-by-hop.ts owns the list): only names of these
// lengths are lowercased and looked up.
const HOP_LENGTHS = new Uint8Array(32);
for (const name of HOP_BY_HOP) HOP_LENGTHS[name.length] = 1;

const join = (prev: string | null, value: string) => (prev === null ? value : `${prev}, ${value}`);

/** parseFields results. */
export const FIELDS_OK = 0;
export const FIELDS_MALFORMED = 1;
export const FIELDS_TOO_MANY = 2;
/** Most field lines accepted in one head (Apache's LimitRequestFields is 100). */
export const MAX_FIELDS = 256;

/**
 * Appends the field lines of `head` from `pos` (the first char after the start line's CRLF) to
 * `headers`, and notes the framing fields in `out`. With `dropHopByHop`, the hop-by-hop fields
 * (http/hop-by-hop.ts) are not appended (the framing ones still noted), and the fields
 * Connection names are removed (RFC 9110 §7.6.1). Returns FIELDS_MALFORMED on a bad
 * line (whitespace before the colon, obsolete folding, no colon, a control character in a value)
 * and FIELDS_TOO_MANY past MAX_FIELDS lines (each append costs more as a Headers object grows).
 */
export function parseFields(head: string, pos: number, headers: Headers, dropHopByHop: boolean, out: FramingFields): number {
  const end = head.length;
  let count = 0;
  while (pos < end) {
    if (++count > MAX_FIELDS) return FIELDS_TOO_MANY;
    let eol = head.indexOf('\r\n', pos);
    if (eol < 0) eol = end;
    const colon = head.indexOf(':', pos);
    if (colon <= pos || colon > eol) return FIELDS_MALFORMED;
    const name = head.slice(pos, colon);
    if (!TOKEN.test(name)) return FIELDS_MALFORMED;
    let from = colon + 1;
    let to = eol;
    while (from < to && (head.charCodeAt(from) === 32 || head.charCodeAt(from) === 9)) from++;
    while (to > from && (head.charCodeAt(to - 1) === 32 || head.charCodeAt(to - 1) === 9)) to--;
    const value = head.slice(from, to);
    if (BAD_VALUE.test(value)) return FIELDS_MALFORMED;
    pos = eol + 2;
    // Only names of these lengths matter below: compare lowercased copies of those alone.
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'host') out.host = join(out.host, value);
        break;
      case 6:
        if (name.toLowerCase() === 'expect') out.expect = join(out.expect, value);
        break;
      case 10:
        if (name.toLowerCase() === 'connection') out.connection = join(out.connection, value);
        break;
      case 14:
        if (name.toLowerCase() === 'content-length') out.contentLength = join(out.contentLength, value);
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') out.transferEncoding = join(out.transferEncoding, value);
        break;
    }
    if (dropHopByHop && HOP_LENGTHS[name.length] === 1 && HOP_BY_HOP.has(name.toLowerCase())) continue;
    headers.append(name, value);
  }
  if (dropHopByHop && out.connection !== null) {
    for (const token of out.connection.split(',')) {
      const named = token.trim();
      if (TOKEN.test(named)) headers.delete(named);
    }
  }
  return FIELDS_OK;
}

/** True when a Connection value lists `token` (lowercase), e.g. `close` or `keep-alive`. */
export function hasToken(connection: string | null, token: string): boolean {
  if (connection === null) return false;
  const value = connection.toLowerCase();
  if (value === token) return true;
  for (const part of value.split(',')) if (part.trim() === token) return true;
  return false;
}
