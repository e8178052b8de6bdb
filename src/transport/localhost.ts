// `localhost` upstreams must work whether the service listens on 127.0.0.1 or ::1. Resolvers
// often return one of the two only (this project's machines: 127.0.0.1), so a lookup that
// offers both, combined with autoSelectFamily, lets the connect try each (RFC 8305).
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

const LOOPBACK: LookupAddress[] = [
  { address: '127.0.0.1', family: 4 },
  { address: '::1', family: 6 },
];

/** A `lookup` for net.connect / http.Agent / undici that maps `localhost` to both loopbacks. */
export function lookupWithLocalhost(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) {
    if (options.all) callback(null, LOOPBACK);
    else callback(null, '127.0.0.1', 4);
    return;
  }
  dnsLookup(hostname, options, callback as never);
}
