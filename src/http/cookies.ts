// Cookie header helpers (RFC 6265 §5.4 pairs): one reader for sticky sessions, hash-by-cookie
// and JWTs in a cookie, and the remover for a cookie the route's auth consumed.

/** The value of cookie `name` in a Cookie header (RFC 6265 §5.4 pairs), or null. */
export function cookieValue(header: string | null, name: string): string | null {
  if (header === null) return null;
  let at = 0;
  while (at < header.length) {
    let end = header.indexOf(';', at);
    if (end < 0) end = header.length;
    const eq = header.indexOf('=', at);
    if (eq > at && eq < end && header.slice(at, eq).trim() === name) return header.slice(eq + 1, end).trim();
    at = end + 1;
  }
  return null;
}

/** Removes the named cookies from `Cookie` (the field goes when none is left). */
export function withoutCookies(headers: Headers, names: readonly string[]): void {
  const all = headers.get('cookie');
  if (all === null) return;
  const kept = all.split(';').filter((part) => {
    const eq = part.indexOf('=');
    return !names.includes((eq < 0 ? part : part.slice(0, eq)).trim());
  });
  if (kept.length === 0) headers.delete('cookie');
  else headers.set('cookie', kept.map((p) => p.trim()).join('; '));
}
