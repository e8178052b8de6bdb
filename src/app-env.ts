// The Hono environment shared by every middleware: what a listener provides (Bindings: facts
// about the connection, plus the request line where the listener has it) and what the chain
// passes along (Variables, each set once by the middleware that owns it).
import type { CompiledConfig, CompiledRoute } from './config/compile.ts';
import type { AccessRecord } from './log/access-log.ts';
import type { ClientUpgrade } from './tunnel/types.ts';

/** Facts about the connection a request came on. The same object for every request on it. */
export interface ConnInfo {
  /** Peer address, IPv4-mapped prefix removed. */
  readonly remoteAddr: string;
  /** The scheme of the listener. */
  readonly proto: 'http' | 'https';
  /** Which listener accepted it (`ListenerSpec.name`). */
  readonly listener: string;
  /** Set on TLS connections only. */
  readonly tls?: TlsFacts;
}

/** What the TLS handshake of a connection settled. */
export interface TlsFacts {
  /** The SNI name the client asked for, or null. */
  readonly serverName: string | null;
  /** The ALPN protocol: `"h2"` or `"http/1.1"`. */
  readonly alpn: string;
  /** `"TLSv1.3"`, `"TLSv1.2"`, or null where the runtime does not say. */
  readonly protocol: string | null;
  /** The client's certificate, only when one was sent and verified against `tls.clientAuth.ca`. */
  readonly clientCertificate: ClientCertificate | null;
}

/** A verified client certificate. */
export interface ClientCertificate {
  /** The subject as RFC 4514 writes it, most specific first: `CN=client.test,O=Example`. */
  readonly subject: string;
  readonly fingerprint256: string;
}

/**
 * The request line exactly as received, from listeners that parse it themselves (Bun) or
 * expose it (Node). The runtimes' `Request` may change all three: Bun's turns unknown methods
 * into GET, Node's uppercases `post`, neither says the version, and URL parsing resolves dot
 * segments. Deno.serve exposes none of it.
 */
export interface RequestLine {
  readonly method: string;
  /** origin-form, absolute-form or `*`, as sent. */
  readonly target: string;
  /** `"1.1"`, `"1.0"` (`"2.0"` once h2 listeners exist). */
  readonly version: string;
}

/** What a listener passes with each request (Hono's Bindings, `c.env`). */
export interface Bindings {
  readonly conn: ConnInfo;
  readonly line?: RequestLine;
  /** Set only on requests asking to switch protocols, where the listener can hand over (tunnel/types.ts). */
  readonly upgrade?: ClientUpgrade;
}

/** The request's own facts, decided once by `requestFacts` (src/proxy/facts.ts) and read by every later middleware. */
export interface RequestFacts {
  /** The method exactly as the client sent it. */
  readonly method: string;
  /** The request target exactly as sent when the listener knows it, else rebuilt from the URL. */
  readonly rawTarget: string;
  /** `"1.1"`, `"1.0"`, `"2.0"`, or null where the listener cannot tell (Deno). */
  readonly httpVersion: string | null;
  readonly conn: ConnInfo;
  /** Whether the socket peer is in `trustedProxies` (its forwarding headers are believed). */
  readonly peerTrusted: boolean;
  /**
   * The client: the peer, or behind a trusted peer the rightmost untrusted X-Forwarded-For (or
   * Forwarded) address (proxy/client.ts). What allow/deny, rate limits, `hash: 'ip'` and the
   * access line use.
   */
  readonly client: string;
}

export interface AppEnv {
  Bindings: Bindings;
  Variables: {
    /** The configuration snapshot this request is served with, start to end (a reload swaps the next one). */
    config: CompiledConfig;
    facts: RequestFacts;
    access: AccessRecord;
    logDone: (bytes: number) => void;
    /** Normalised host: lowercase, no port, no trailing dot. */
    host: string;
    /**
     * Origin-form request target (path and query) as it will be forwarded: as sent, or its
     * canonical form where a path decides the route (routeByHost sets it; router/path.ts).
     */
    target: string;
    /** The target routing compared with path prefixes (see router/path.ts); path rules use it too. */
    routeTarget: string;
    route: CompiledRoute;
    /** Request fields a successful `auth` sets (a JWT's claims), set only then (access/authenticate.ts). */
    authFields?: readonly (readonly [string, string])[];
    /** A verified JWT's claims, set by `authenticate` when the route's auth has one (a `{ claim }` rate-limit key reads them). */
    claims?: Readonly<Record<string, unknown>>;
  };
}
