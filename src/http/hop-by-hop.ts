// Connection-specific header fields (RFC 9110 §7.6.1): the one list, read by the request and
// response header rules, both transports and our HTTP/1.1 server and client. Nothing here
// allocates unless a message actually carries such a field.

/**
 * Fields that describe one connection and never travel past it. Proxy-Connection is the old
 * non-standard spelling of Connection; Keep-Alive is RFC 2068's.
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-7.6.1
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/**
 * The fields of HOP_BY_HOP a server never writes on a final response itself: it frames the
 * message and manages the connection (HTTP/1.1), and RFC 9113 §8.2.2 forbids them on h2, where
 * node:http2 throws on them. (A 101 names its protocol in Upgrade: that head is built apart.)
 */
export const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** Lowercased field names listed in a Connection header value (RFC 9110 §7.6.1). */
export function connectionTokens(value: string): Set<string> {
  const out = new Set<string>();
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name) out.add(name);
  }
  return out;
}

/**
 * Headers from a field record (name -> value, repeated fields as arrays, as undici and
 * node:http give them), in one pass; `keep` says which names to copy (all by default).
 */
export function headersFromFields(fields: Record<string, string | string[] | undefined>, keep?: (name: string) => boolean): Headers {
  const out = new Headers();
  for (const name in fields) {
    if (keep !== undefined && !keep(name)) continue;
    const value = fields[name];
    if (Array.isArray(value)) for (const v of value) out.append(name, v);
    else if (value !== undefined) out.append(name, value);
  }
  return out;
}

/** `headersFromFields` without hop-by-hop fields and without the fields any Connection line names. */
export function headersWithoutHopByHop(fields: Record<string, string | string[] | undefined>): Headers {
  const connection = fields.connection;
  // Several Connection lines arrive as an array; every one of them names hop-by-hop fields.
  const named = connection === undefined ? null : connectionTokens(Array.isArray(connection) ? connection.join(',') : connection);
  return headersFromFields(fields, (name) => !HOP_BY_HOP.has(name) && !named?.has(name));
}
