// Host names: normalising a request's Host header and validating route host patterns.
// Matching lives in ./table.ts; this file has no state.

/**
 * Lowercase host name of a Host header value with the port and a trailing dot removed, or
 * null when the value is not a plausible host (empty, a comma from a repeated Host header,
 * spaces, or other characters no host name has).
 */
export function normalizeHost(value: string): string | null {
  let host = value;
  if (host.charCodeAt(0) === 91 /* [ */) {
    const end = host.indexOf(']');
    if (end < 0) return null;
    const rest = host.slice(end + 1);
    if (rest !== '' && !/^:\d*$/.test(rest)) return null;
    host = host.slice(0, end + 1);
  } else {
    const colon = host.indexOf(':');
    if (colon >= 0) {
      if (!/^\d*$/.test(host.slice(colon + 1))) return null;
      host = host.slice(0, colon);
    }
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  // An empty label (".a.com", "a..com") is no host name either.
  if (host === '' || !HOST_CHARS.test(host) || host.charCodeAt(0) === 46 || host.includes('..')) return null;
  return host.toLowerCase();
}

// RFC 3986 §3.2.2 reg-name characters we accept (no percent-encoding), or an IPv6 literal.
const HOST_CHARS = /^(?:[A-Za-z0-9_~!$&'()*+;=.-]+|\[[0-9A-Fa-f:.]+\])$/;
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/i;

/** Why `pattern` is not a usable route host, or null. */
export function hostPatternProblem(pattern: string): string | null {
  if (pattern === '*') return null;
  let name = pattern.endsWith('.') ? pattern.slice(0, -1) : pattern;
  if (name.startsWith('*.')) name = name.slice(2);
  if (name.includes('*')) return 'a wildcard is only allowed as the whole first label ("*.example.com") or alone ("*")';
  if (name.includes(':')) {
    if (/^\[[0-9a-f:.]+\]$/i.test(name)) return null;
    return 'must not contain a port (ports are ignored when matching)';
  }
  if (name === '' || !name.split('.').every((label) => LABEL.test(label))) return `invalid host name "${pattern}"`;
  return null;
}
