// DNS names on both sides of a handshake: the server name a client sends (SNI) and the names a
// certificate claims (SAN dNSName entries, else the subject CN), in one normal form so the store
// compares them with a map lookup. Web-standard: no runtime or node:crypto APIs here.

/**
 * The form every name is compared in: ASCII lowercase, one trailing dot dropped (`A.Test.` is
 * `a.test`). SNI carries A-labels (punycode), so no Unicode folding is needed.
 * @see RFC 6066 §3 (server_name), RFC 4343 (DNS names are case-insensitive)
 */
export function normaliseName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/**
 * The domain a wildcard certificate must name to cover `name`: everything after its first label
 * (`x.a.test` -> `a.test`), or undefined when `name` has a single label or an empty first one.
 * A wildcard covers exactly one label.
 * @see RFC 6125 §6.4.3
 */
export function wildcardParent(name: string): string | undefined {
  const dot = name.indexOf('.');
  return dot > 0 && dot < name.length - 1 ? name.slice(dot + 1) : undefined;
}

/** The names a certificate serves, normalised: exact names, and wildcards kept as `*.domain`. */
export interface CertificateNames {
  /** Normalised names in the certificate's order, duplicates dropped; wildcards as `*.a.test`. */
  readonly names: readonly string[];
  /** Names the certificate claims that switchyard cannot serve, each with why (for warnings). */
  readonly ignored: readonly string[];
}

// A host name or a wildcard one: labels of letters, digits, hyphens and underscores (seen in
// the wild on internal names), the wildcard only as a whole leftmost label.
const HOST_LABEL = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/;

function hostForm(name: string): 'host' | 'wildcard' | 'invalid' {
  const labels = name.split('.');
  const wildcard = labels[0] === '*';
  const rest = wildcard ? labels.slice(1) : labels;
  if (rest.length === 0 || !rest.every((label) => HOST_LABEL.test(label))) return 'invalid';
  // RFC 6125 §6.4.3 lets a client refuse `*.test`-style wildcards under a public suffix; we keep
  // them (a private network may use one), but never `*` alone.
  return wildcard ? 'wildcard' : 'host';
}

/**
 * Reads the names from node:crypto's `X509Certificate.subjectAltName` (`DNS:a.test, DNS:*.a.test,
 * IP Address:127.0.0.1`) and `subject` (`CN=a.test`, one attribute per line). The CN counts only
 * when the certificate has no DNS or URI SAN.
 * @see RFC 6125 §6.4.4
 */
export function certificateNames(subjectAltName: string | undefined, subject: string): CertificateNames {
  const seen = new Set<string>();
  const ignored: string[] = [];
  const entries = sanEntries(subjectAltName ?? '');
  const claimed = entries.filter((entry) => entry.type === 'DNS').map((entry) => entry.value);
  // RFC 6125 §6.4.4: a DNS-ID or URI-ID rules the CN out; an IP address SAN does not. Of several
  // CNs the last (most specific) counts.
  const fromCn = !entries.some((entry) => entry.type === 'DNS' || entry.type === 'URI');
  const candidates = fromCn ? commonNames(subject).slice(-1) : claimed;
  for (const raw of candidates) {
    const name = normaliseName(raw);
    const form = hostForm(name);
    if (form === 'invalid') {
      ignored.push(`${fromCn ? 'subject CN' : 'SAN DNS name'} ${JSON.stringify(raw)} is not a host name or a one-label wildcard`);
      continue;
    }
    seen.add(name);
  }
  return { names: [...seen], ignored };
}

interface SanEntry {
  readonly type: string;
  readonly value: string;
}

/**
 * Splits the SAN string into entries. Node quotes a value that holds a comma or a quote as a
 * JSON string (CVE-2021-44532), so a plain split on `, ` could read `URI:"x, DNS:evil.test"` as
 * a DNS name; this walks the string instead.
 */
export function sanEntries(text: string): SanEntry[] {
  const entries: SanEntry[] = [];
  let at = 0;
  while (at < text.length) {
    const colon = text.indexOf(':', at);
    if (colon < 0) break;
    const type = text.slice(at, colon);
    let value: string;
    let next: number;
    if (text[colon + 1] === '"') {
      const end = closingQuote(text, colon + 2);
      if (end < 0) break;
      // An entry whose quoted value does not decode is kept with an empty value: never a name.
      value = jsonString(text.slice(colon + 1, end + 1)) ?? '';
      next = end + 1;
    } else {
      const comma = text.indexOf(', ', colon + 1);
      next = comma < 0 ? text.length : comma;
      value = text.slice(colon + 1, next);
    }
    entries.push({ type, value });
    at = text.startsWith(', ', next) ? next + 2 : next;
  }
  return entries;
}

function closingQuote(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  return -1;
}

function commonNames(subject: string): string[] {
  return subject
    .split('\n')
    .filter((line) => line.startsWith('CN='))
    .map((line) => {
      const value = line.slice(3);
      return value.startsWith('"') ? (jsonString(value) ?? '') : value;
    });
}

function jsonString(quoted: string): string | undefined {
  try {
    const value: unknown = JSON.parse(quoted);
    return typeof value === 'string' ? value : undefined;
  } catch {
    // A malformed quoted value names nothing; the caller treats it as no name.
    return undefined;
  }
}
