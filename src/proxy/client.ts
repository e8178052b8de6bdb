// Who the client is, decided once per request (issue 11, docs/access-control.md): the socket
// peer, or, when the peer is a trusted proxy (`trustedProxies`), the rightmost address in
// X-Forwarded-For (or, without one, in Forwarded's `for=`) that is not itself trusted: what
// nginx's real_ip_recursive takes. Nothing else a client sends (X-Real-IP, True-Client-IP,
// CF-Connecting-IP, a client's own left-hand entries) can change it. allow/deny, rate limits,
// `hash: 'ip'` and the access line all read this one value.

import { parseIp } from './cidr.ts';
import { normalizePeer } from './headers.ts';

/**
 * The client behind `peer`. `xff` is X-Forwarded-For (repeated fields joined by commas, in
 * order, as Headers joins them), `forwarded` the Forwarded field; both are read only when
 * `isTrusted(peer)`. An entry that is not an address ends the walk: the client is then the
 * trusted hop that named it (it cannot be believed further).
 */
export function clientBehind(peer: string, xff: string | null, forwarded: string | null, isTrusted: (address: string) => boolean): string {
  const hops = xff !== null ? xff.split(',') : forwarded !== null ? forwardedFor(forwarded) : null;
  if (hops === null) return peer;
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const address = hopAddress(hops[i] as string);
    if (address === null) return client;
    client = address;
    if (!isTrusted(address)) return address;
  }
  // Every hop is trusted: the leftmost is as far as anyone can tell.
  return client;
}

/** One X-Forwarded-For or `for=` entry as a bare address (port, brackets, quotes removed), or null. */
function hopAddress(entry: string): string | null {
  let text = entry.trim();
  if (text.startsWith('"') && text.endsWith('"') && text.length >= 2) text = text.slice(1, -1);
  if (text.startsWith('[')) {
    // "[2001:db8::1]:4711" (RFC 7239 §6, and some X-Forwarded-For writers)
    const close = text.indexOf(']');
    if (close < 0) return null;
    text = text.slice(1, close);
  } else if (text.indexOf(':') === text.lastIndexOf(':') && text.includes('.')) {
    // "192.0.2.1:8080": IPv4 with a port
    const colon = text.indexOf(':');
    if (colon >= 0) text = text.slice(0, colon);
  }
  if (parseIp(text) === null) return null;
  return normalizePeer(text);
}

/** The `for=` values of a Forwarded field, in order (RFC 7239 §4); an element without one counts as unknown. */
function forwardedFor(forwarded: string): string[] {
  const out: string[] = [];
  for (const element of forwarded.split(',')) {
    let value = 'unknown';
    for (const pair of element.split(';')) {
      const eq = pair.indexOf('=');
      if (eq > 0 && pair.slice(0, eq).trim().toLowerCase() === 'for') value = pair.slice(eq + 1).trim();
    }
    out.push(value);
  }
  return out;
}
