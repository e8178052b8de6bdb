// Request header rules of a forwarding proxy: hop-by-hop removal (RFC 9110 §7.6.1, the list in
// http/hop-by-hop.ts) and the X-Forwarded-* / Forwarded headers. Runs on every request, so it
// touches each header once. Response headers come from the transport already clean.
import { connectionTokens, HOP_BY_HOP } from '../http/hop-by-hop.ts';

// HOP_BY_HOP plus two of the request side's own. Expect is answered by our own listener
// (100-continue), so it must not reach the upstream a second time; Host is set from the route.
const HOP_BY_HOP_REQUEST: ReadonlySet<string> = new Set([...HOP_BY_HOP, 'expect', 'host']);
// Rebuilt by the proxy from what it saw; a client's copies are dropped or extended below.
const FORWARDING = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'x-request-id']);

/** The facts about one request that the forwarding headers are made from. */
export interface ForwardingFacts {
  /** The peer's address as the listener saw it, IPv4-mapped prefix removed. */
  readonly peer: string;
  /** Whether `peer` is a trusted proxy whose forwarding headers are kept and extended. */
  readonly trusted: boolean;
  /** Scheme the client used to reach us. */
  readonly proto: 'http' | 'https';
  /** The client's Host header, as sent. */
  readonly clientHost: string;
  /** The Host header the upstream should see. */
  readonly upstreamHost: string;
  /** Also send RFC 7239 Forwarded. */
  readonly forwarded: boolean;
  /** Request id to send as X-Request-Id. */
  readonly requestId: string;
  /**
   * The header (lowercase) that carries the verified client certificate's subject
   * (`tls.clientAuth.header`): a client's own copy is always dropped. Null when not configured.
   */
  readonly clientCertHeader?: string | null;
  /** The verified client certificate's subject, or null. */
  readonly clientSubject?: string | null;
  /** Fields named with `_` (config `underscoreHeaders`). @default 'drop' */
  readonly underscores?: 'drop' | 'reject' | 'pass';
}

/** upstreamRequestHeaders' refusals. */
export const HEADERS_TOO_LARGE = 1;
export const UNDERSCORE_NAME = 2;

/**
 * The headers to send upstream, or HEADERS_TOO_LARGE when the request headers exceed
 * `maxHeaderBytes`, or UNDERSCORE_NAME for a field named with `_` when those are refused.
 * Hop-by-hop fields and fields named in Connection go first, so a client cannot use
 * `Connection: x-forwarded-for` to strip what the proxy adds afterwards. Fields named with `_`
 * are dropped by default: a CGI-style upstream reads `X_Forwarded_For` as `X-Forwarded-For`.
 */
export function upstreamRequestHeaders(
  src: Headers,
  facts: ForwardingFacts,
  maxHeaderBytes: number,
): Headers | typeof HEADERS_TOO_LARGE | typeof UNDERSCORE_NAME {
  const out = new Headers();
  const connection = src.get('connection');
  const named = connection ? connectionTokens(connection) : null;
  let size = 0;
  let xff: string | null = null;
  let xfProto: string | null = null;
  let xfHost: string | null = null;
  let fwd: string | null = null;
  const certHeader = facts.clientCertHeader ?? null;
  const underscores = facts.underscores ?? 'drop';
  for (const [name, value] of src) {
    size += name.length + value.length + 4; // "name: value\r\n"
    if (underscores !== 'pass' && name.includes('_')) {
      if (underscores === 'reject') return UNDERSCORE_NAME;
      continue;
    }
    // TE goes too, "trailers" included: no runtime's Response carries trailers, so none
    // would reach the client (README "Streaming"; RFC 9110 §10.1.4 makes TE hop-by-hop).
    if (HOP_BY_HOP_REQUEST.has(name)) continue;
    if (named?.has(name) || name === certHeader) continue;
    if (FORWARDING.has(name)) {
      if (name === 'x-forwarded-for') xff = value;
      else if (name === 'x-forwarded-proto') xfProto = value;
      else if (name === 'x-forwarded-host') xfHost = value;
      else if (name === 'forwarded') fwd = value;
      continue;
    }
    out.append(name, value);
  }
  if (size > maxHeaderBytes) return HEADERS_TOO_LARGE;

  out.set('host', facts.upstreamHost);
  const trusted = facts.trusted;
  out.set('x-forwarded-for', trusted && xff ? `${xff}, ${facts.peer}` : facts.peer);
  out.set('x-forwarded-proto', trusted && xfProto ? xfProto : facts.proto);
  out.set('x-forwarded-host', trusted && xfHost ? xfHost : facts.clientHost);
  if (facts.forwarded) {
    const own = forwardedElement(facts);
    out.set('forwarded', trusted && fwd ? `${fwd}, ${own}` : own);
  } else if (trusted && fwd) {
    out.set('forwarded', fwd);
  }
  out.set('x-request-id', facts.requestId);
  if (certHeader !== null && facts.clientSubject) out.set(certHeader, facts.clientSubject);
  return out;
}

/** RFC 7239 §4 element for this hop; IPv6 nodes are quoted and bracketed (§6). */
function forwardedElement(facts: ForwardingFacts): string {
  const node = facts.peer.includes(':') ? `"[${facts.peer}]"` : facts.peer;
  const host = /^[A-Za-z0-9.-]+$/.test(facts.clientHost) ? facts.clientHost : `"${facts.clientHost.replace(/["\\]/g, '\\$&')}"`;
  return `for=${node};host=${host};proto=${facts.proto}`;
}

/** Strips the `::ffff:` prefix dual-stack listeners put on IPv4 peers. */
export function normalizePeer(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
