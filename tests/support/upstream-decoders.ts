// Models of how upstream frameworks turn the target they receive into the path they route or
// serve, for the property of issue 10: a request never reaches an upstream path that a path
// rule would have refused. Each model takes the most lenient reading its framework allows.
// Not reimplementations: the test is that no model disagrees with the proxy's route.

/** The path an upstream acts on, or null where it answers 400 itself. */
export type Decoder = (target: string) => string | null;

/** Returned when the model would send the request to another origin. */
export const OTHER_ORIGIN = '<other origin>';

/** Byte-wise percent-decoding; malformed escapes are left as they are. */
function percentDecode(s: string): string {
  return s.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** Merges slashes and resolves `.` and `..` (POSIX path.normalize, Go's path.Clean), keeping a trailing slash. */
function clean(path: string): string {
  const out: string[] = [];
  const parts = path.split('/');
  for (const part of parts) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  const last = parts.at(-1);
  const trailing = out.length > 0 && (last === '' || last === '.' || last === '..');
  return `/${out.join('/')}${trailing ? '/' : ''}`;
}

const cut = (target: string, stops: RegExp): string => {
  const i = target.search(stops);
  return i < 0 ? target : target.slice(0, i);
};

/**
 * Express 4 and 5: parseurl cuts at `?` and `#`; params and serve-static decode with
 * decodeURIComponent (a malformed escape is a 400), and `send` normalises the decoded path.
 * Routing is case-insensitive by default (the matcher in the tests folds case for everyone).
 */
export const express: Decoder = (target) => {
  try {
    return clean(decodeURIComponent(cut(target, /[?#]/)));
  } catch {
    return null; // URIError: express answers 400
  }
};

/**
 * Express's router itself: it matches mounts and routes on the raw pathname, neither decoded
 * nor dot-resolved (`app.use('/admin', ...)` takes `/admin/%2e%2e/public`).
 */
export const expressRouter: Decoder = (target) => cut(target, /[?#]/);

/**
 * Go net/http: url.Parse splits at `?` and `#`, unescapes the path (malformed: 400), and
 * ServeMux routes on path.Clean of it (redirecting to it; handlers behind other muxes use it).
 */
export const goServeMux: Decoder = (target) => {
  const raw = cut(target, /[?#]/);
  if (/%(?![0-9A-Fa-f]{2})/.test(raw)) return null;
  return clean(percentDecode(raw));
};

/**
 * Tomcat and Spring MVC at their most lenient (ALLOW_BACKSLASH, ALLOW_ENCODED_SLASH): strip
 * `;params` from each segment, decode, read `\` as `/`, merge slashes, resolve dot segments.
 */
export const spring: Decoder = (target) => {
  const raw = cut(target, /\?/);
  const stripped = raw
    .split('/')
    .map((segment) => segment.replace(/;.*$/, ''))
    .join('/');
  return clean(percentDecode(stripped).replaceAll('\\', '/'));
};

/**
 * A server that decodes twice (IIS's old double decoding, an app calling decode on a decoded
 * path), reads overlong UTF-8 (`%C0%AF`) as `/`, `\` as a separator, and stops at NUL.
 */
export const doubleDecoder: Decoder = (target) => {
  let path = percentDecode(percentDecode(cut(target, /[?#]/)));
  path = path.replaceAll('\xc0\xaf', '/').replaceAll('\xc1\x9c', '\\').replaceAll('\\', '/');
  const nul = path.indexOf('\0');
  return clean(nul < 0 ? path : path.slice(0, nul));
};

/**
 * A Node upstream that resolves the target with WHATWG URL against its own origin
 * (`new URL(req.url, base)`): `\` is `/`, `%2e` segments are dots, `//host` is another origin.
 */
export const whatwgUrl: Decoder = (target) => {
  const base = 'http://upstream.invalid';
  let url: URL;
  try {
    url = new URL(target, base);
  } catch {
    return null;
  }
  if (url.origin !== base) return OTHER_ORIGIN;
  return clean(percentDecode(url.pathname));
};

export const DECODERS: Readonly<Record<string, Decoder>> = { express, expressRouter, goServeMux, spring, doubleDecoder, whatwgUrl };

/**
 * The longest of `prefixes` (canonical, as in routes) that a decoded path is under, at a
 * segment boundary and ignoring ASCII case, or undefined. A decoded path has no query, so only
 * `/` ends a segment.
 */
export function prefixOfDecoded(prefixes: readonly string[], path: string): string | undefined {
  if (path === OTHER_ORIGIN) return undefined;
  const lower = path.replace(/[A-Z]+/g, (letters) => letters.toLowerCase()); // ASCII only, as the proxy
  let best: string | undefined;
  for (const prefix of prefixes) {
    const p = prefix.toLowerCase();
    const under = p === '/' || lower === p || lower.startsWith(`${p}/`);
    if (under && (best === undefined || p.length > best.length)) best = prefix;
  }
  return best;
}
