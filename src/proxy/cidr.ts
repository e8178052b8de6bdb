// Trusted-peer matching: CIDR lists compiled once into numeric ranges. IPv4-mapped IPv6
// addresses (`::ffff:10.0.0.1`) match IPv4 ranges. No DNS, no host names.

/** Why `value` is not a CIDR or single address, or null. */
export function cidrProblem(value: string): string | null {
  return parseCidr(value) ? null : `invalid CIDR or address "${value}"`;
}

interface Range {
  readonly v6: boolean;
  readonly base: bigint;
  readonly mask: bigint;
}

/** Parses an IPv4 or IPv6 address into its family and value, or null. */
export function parseIp(text: string): { v6: boolean; value: bigint } | null {
  if (text.includes(':')) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
    if (mapped) return parseIp(mapped[1] as string);
    return parseIpv6(text);
  }
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return null;
    value = (value << 8n) | BigInt(part);
  }
  return { v6: false, value };
}

function parseIpv6(text: string): { v6: boolean; value: bigint } | null {
  const zone = text.indexOf('%');
  const bare = zone >= 0 ? text.slice(0, zone) : text;
  const halves = bare.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? (halves[0] as string).split(':') : [];
  const tail = halves.length === 2 && halves[1] ? (halves[1] as string).split(':') : [];
  // An embedded IPv4 tail (::1.2.3.4) counts as two groups.
  const groups: string[] = [];
  for (const g of [...head, '|', ...tail]) {
    if (g.includes('.')) {
      const v4 = parseIp(g);
      if (!v4 || v4.v6) return null;
      groups.push(((v4.value >> 16n) & 0xffffn).toString(16), (v4.value & 0xffffn).toString(16));
    } else groups.push(g);
  }
  const split = groups.indexOf('|');
  const left = groups.slice(0, split);
  const right = groups.slice(split + 1);
  const missing = 8 - left.length - right.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const all = [...left, ...Array<string>(missing).fill('0'), ...right];
  let value = 0n;
  for (const g of all) {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return null;
    value = (value << 16n) | BigInt(Number.parseInt(g, 16));
  }
  return { v6: true, value };
}

function parseCidr(text: string): Range | null {
  const slash = text.indexOf('/');
  const ip = parseIp(slash >= 0 ? text.slice(0, slash) : text);
  if (!ip) return null;
  const width = ip.v6 ? 128 : 32;
  const bitsText = slash >= 0 ? text.slice(slash + 1) : String(width);
  if (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > width) return null;
  const bits = BigInt(bitsText);
  const all = (1n << BigInt(width)) - 1n;
  const mask = all ^ ((1n << (BigInt(width) - bits)) - 1n);
  return { v6: ip.v6, base: ip.value & mask, mask };
}

/** A predicate telling whether a peer address is in any of `cidrs`; throws on a bad entry. */
export function compileCidrMatcher(cidrs: readonly string[]): (address: string) => boolean {
  if (cidrs.length === 0) return () => false;
  const ranges = cidrs.map((c) => {
    const r = parseCidr(c);
    if (!r) throw new Error(`invalid CIDR or address "${c}"`);
    return r;
  });
  const cache = new Map<string, boolean>();
  return (address) => {
    const hit = cache.get(address);
    if (hit !== undefined) return hit;
    const ip = parseIp(address);
    const ok = !!ip && ranges.some((r) => r.v6 === ip.v6 && (ip.value & r.mask) === r.base);
    // Bounded memo: peers repeat (keep-alive, a few front proxies); never grow without limit.
    if (cache.size > 4096) cache.clear();
    cache.set(address, ok);
    return ok;
  };
}
