// The form of a request target that routing compares with path prefixes. Forwarding keeps the
// raw bytes; only matching (and prefix stripping) sees this form, so `/api/../admin` cannot
// reach the `/api` route's upstream and `/%61pi` cannot dodge it.

// Only targets with a percent sign or a dot segment need work: the common case is one test.
const NEEDS_WORK = /%|\/\.\.?(?:[/?]|$)/;
const ENCODED = /%([0-9A-Fa-f]{2})/g;
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/** Target with unreserved percent-escapes decoded and dot segments removed (RFC 3986 §2.3, §5.2.4). */
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
