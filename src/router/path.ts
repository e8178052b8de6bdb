// The form of a request target that path rules compare with their prefixes, and the targets
// refused where a path decides the route (docs/paths.md). It does not route: table.ts does, and
// routeByHost says which of the two forms a host gets.

/**
 * A target refused on a host whose routes have paths: `reason` ends a 400's body
 * (`bad request: ${reason}`).
 */
export interface PathRefusal {
  readonly reason: string;
}

// A target without `%`, `\`, `;`, `#`, `//` or a dot segment is already canonical: one test.
const PLAIN_STRICT = /[%\\;#]|\/\/|\/\.\.?(?:[/?]|$)/;
// The lenient form (hosts without path routes) only has escapes and dot segments to handle.
const NEEDS_WORK = /%|\/\.\.?(?:[/?]|$)/;
const ENCODED = /%([0-9A-Fa-f]{2})/g;
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
// Two hex digits after an encoded `%`: a second decoding would produce a new escape.
const DOUBLE_ENCODED = /%25[0-9A-Fa-f]{2}/;
const HEX2 = /^[0-9A-Fa-f]{2}$/;

/**
 * The canonical target of a host with path routes, or why it is refused. Canonical: unreserved
 * escapes decoded (any hex case), other escapes in uppercase hex, dot segments removed, the
 * query untouched (RFC 3986 §6.2.2). Refused: what upstream decoders read differently, so a
 * rule matched on this form could disagree with the upstream (`%2F`, `%5C`, raw `\`, encoded
 * control characters, double encoding, malformed escapes or UTF-8, encoded dot segments, `;`,
 * `#`, empty segments). The canonical form is also what is forwarded.
 * @see https://www.rfc-editor.org/rfc/rfc3986#section-6.2.2
 */
export function canonicalTarget(target: string): string | PathRefusal {
  if (!PLAIN_STRICT.test(target)) return target;
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const refusal = rawRefusal(path);
  if (refusal !== null) return { reason: refusal };
  const segments = path.split('/');
  const last = segments.length - 1;
  for (let i = 1; i <= last; i++) {
    const segment = segments[i] as string;
    // An empty segment anywhere but last: `//x` reads as an authority to URL parsers, and
    // Spring, Go's path.Clean and nginx merge slashes that Express and node:http keep.
    if (segment === '' && i < last) return { reason: 'empty segment in path' };
    if (segment.indexOf('%') < 0) continue;
    const decoded = canonicalSegment(segment);
    if (typeof decoded !== 'string') return decoded;
    segments[i] = decoded;
  }
  return removeDotSegments(segments.join('/')) + (q < 0 ? '' : target.slice(q));
}

/** Why a raw path (before decoding) is refused, or null. */
function rawRefusal(path: string): string | null {
  if (path.indexOf('\\') >= 0) return 'backslash in path'; // a separator to Windows servers and WHATWG URL
  if (path.indexOf(';') >= 0) return 'path parameter (;) in path'; // Tomcat and Spring strip `;...` from a segment
  if (path.indexOf('#') >= 0) return 'fragment in request target'; // RFC 9112 §3.2: no fragment; parseurl cuts it
  return null;
}

/** One segment with escapes: unreserved ones decoded, the rest in uppercase hex, or a refusal. */
function canonicalSegment(segment: string): string | PathRefusal {
  let out = '';
  let high = false; // an escaped byte >= 0x80: the segment must then decode as UTF-8
  for (let i = 0; i < segment.length; i++) {
    if (segment.charCodeAt(i) !== 37 /* % */) {
      out += segment[i];
      continue;
    }
    const hex = segment.slice(i + 1, i + 3);
    if (!HEX2.test(hex)) return { reason: 'malformed percent-escape in path' };
    i += 2;
    const byte = Number.parseInt(hex, 16);
    const reason = escapeRefusal(byte);
    if (reason !== null) return { reason };
    if (byte >= 0x80) high = true;
    const char = String.fromCharCode(byte);
    out += UNRESERVED.test(char) ? char : `%${hex.toUpperCase()}`;
  }
  if (out === '.' || out === '..') return { reason: 'encoded dot segment in path' };
  // Checked on the output, so `%25%32%66` (which decodes to `%252F` here) is caught too.
  if (DOUBLE_ENCODED.test(out)) return { reason: 'double-encoded character in path' };
  if (high && !decodesAsUtf8(out)) return { reason: 'invalid UTF-8 in path escape' };
  return out;
}

/** Why an escaped byte is refused in a path, or null. */
function escapeRefusal(byte: number): string | null {
  if (byte === 0x2f) return 'encoded slash in path';
  if (byte === 0x5c) return 'encoded backslash in path';
  if (byte === 0) return 'encoded NUL in path';
  if (byte < 0x20 || byte === 0x7f) return 'encoded control character in path';
  return null;
}

// Overlong forms (`%C0%AF` for `/`), lone continuation bytes, truncated sequences and encoded
// surrogates: decodeURIComponent (what Express uses) refuses them all.
function decodesAsUtf8(segment: string): boolean {
  try {
    decodeURIComponent(segment);
    return true;
  } catch {
    // URIError is its only answer for invalid UTF-8; the escapes are well-formed by now.
    return false;
  }
}

/**
 * Target with unreserved percent-escapes decoded and dot segments removed (RFC 3986 §2.3,
 * §5.2.4), nothing refused: the form for hosts where no path decides the route.
 */
export function routingTarget(target: string): string {
  if (!NEEDS_WORK.test(target)) return target;
  const q = target.indexOf('?');
  let path = q < 0 ? target : target.slice(0, q);
  path = path.replace(ENCODED, (encoded, hex: string) => {
    const char = String.fromCharCode(Number.parseInt(hex, 16));
    return UNRESERVED.test(char) ? char : encoded;
  });
  return removeDotSegments(path) + (q < 0 ? '' : target.slice(q));
}

/** RFC 3986 §5.2.4 for an absolute path; empty segments (`//`) are kept. */
export function removeDotSegments(path: string): string {
  const segments = path.split('/');
  const out: string[] = [];
  const last = segments.length - 1;
  for (let i = 1; i <= last; i++) {
    const segment = segments[i] as string;
    if (segment === '.' || segment === '..') {
      if (segment === '..') out.pop();
      if (i === last) out.push('');
      continue;
    }
    out.push(segment);
  }
  return `/${out.join('/')}`;
}

/**
 * Why `prefix` cannot be a route's `path`, or null: a prefix must be in canonical form, or no
 * canonical target could ever match it.
 */
export function prefixProblem(prefix: string): string | null {
  if (/[^\x21-\x7e]/.test(prefix)) return 'must be visible ASCII: percent-encode other characters as UTF-8 (/caf%C3%A9)';
  const canonical = canonicalTarget(prefix);
  if (typeof canonical !== 'string') return `must not contain what requests are refused for: ${canonical.reason}`;
  if (canonical !== prefix) return `must be in canonical form: ${canonical}`;
  return null;
}
