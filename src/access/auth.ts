// A route's `auth` (issue 11), compiled once at load: Basic (bcrypt hashes, bcryptjs: pure JS,
// so it lives inside the single binary on every runtime) and Bearer (static tokens, compared as
// SHA-256 digests in constant time), alone or combined (`anyOf`, `allOf`). A failure is a 401
// with the challenges of the kinds tried; the credentials a route consumed are removed before
// forwarding (forward.ts reads `consumed`) unless the route passes them.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { LRUCache } from 'lru-cache';
import type { Auth, AuthOption } from '../config/types.ts';
import type { Transport } from '../transport/types.ts';
import { compileForwardAuth } from './forward-auth.ts';
import { compileJwt } from './jwt.ts';

/** What one check concluded: who (for the log), or why not. */
export type AuthOutcome =
  | {
      readonly ok: true;
      readonly user: string;
      readonly fields?: readonly (readonly [string, string])[];
      /** A verified JWT's claims (a `{ claim }` rate-limit key reads them). */
      readonly claims?: Readonly<Record<string, unknown>>;
    }
  | {
      readonly ok: false;
      readonly reason: string;
      readonly user?: string;
      /** The auth service's own answer, passed to the client as it is (forward auth). */
      readonly response?: Response;
      /** The auth service could not answer: 502 or 504, never an open door (forward auth). */
      readonly unavailable?: 502 | 504;
    };

/** What a check may need besides the fields: forward auth asks a service about the request. */
export interface AuthContext {
  readonly method: string;
  /** The target as forwarded (path and query). */
  readonly target: string;
  readonly host: string;
  readonly proto: 'http' | 'https';
  readonly client: string;
  /** The client's abort. */
  readonly signal: AbortSignal;
  readonly transport: Transport;
}

export interface CompiledAuth {
  /** The `WWW-Authenticate` values a 401 carries (one per kind, RFC 9110 §11.6.1). */
  readonly challenges: readonly string[];
  /** Request fields the route consumes (removed before forwarding unless `passCredentials`). */
  readonly consumes: readonly string[];
  /** Cookies the route consumes (a JWT's `cookie`): removed from `Cookie` before forwarding unless `passCredentials`. */
  readonly consumesCookies?: readonly string[];
  /**
   * Request fields a success sets (a JWT's claims, `claimsToHeaders`): a client's own copies are
   * always removed, so only a verified token can put them there.
   */
  readonly setsFields?: readonly string[];
  /** Checks a request's headers (and, for forward auth, the request). Never throws. */
  check(headers: Headers, context?: AuthContext): Promise<AuthOutcome>;
}

/** How long a successful Basic check is remembered, and how many are: bcrypt is slow on purpose. */
const BASIC_CACHE_TTL_MS = 60_000;
const BASIC_CACHE_MAX = 10_000;

/** `token` as stored: `sha256:<64 hex>` as given, a plain token as its digest. */
export function tokenDigest(token: string): Buffer {
  if (/^sha256:[0-9a-f]{64}$/i.test(token)) return Buffer.from(token.slice(7), 'hex');
  return createHash('sha256').update(token, 'utf8').digest();
}

const quote = (value: string) => `"${value.replace(/["\\]/g, '\\$&')}"`;

/** The `Authorization` value's credentials for `scheme` (case-insensitive, RFC 9110 §11.1), or null. */
function credentialsFor(headers: Headers, scheme: string): string | null {
  const value = headers.get('authorization');
  if (value === null || value.length <= scheme.length || value.charCodeAt(scheme.length) !== 32) return null;
  if (value.slice(0, scheme.length).toLowerCase() !== scheme) return null;
  return value.slice(scheme.length + 1).trim();
}

function compileBasic(options: NonNullable<Extract<Auth, { basic: unknown }>['basic']>, fromFile: Readonly<Record<string, string>>): CompiledAuth {
  // routes.ts wins over the file for a name in both.
  const users = new Map([...Object.entries(fromFile), ...Object.entries(options.users ?? {})]);
  const realm = options.realm ?? 'switchyard';
  // Unknown users are checked against this too, so the answer takes as long as for a known one.
  const decoy = bcrypt.hashSync(randomBytes(16).toString('hex'), 10);
  // Successful checks, keyed by an HMAC of user and password under a per-process secret: the
  // cache holds no password and no hash an attacker could test guesses against offline.
  const secret = randomBytes(32);
  const good = new LRUCache<string, string>({ max: BASIC_CACHE_MAX, ttl: BASIC_CACHE_TTL_MS });
  const checking = new Map<string, Promise<boolean>>();
  return {
    challenges: [`Basic realm=${quote(realm)}, charset="UTF-8"`],
    consumes: ['authorization'],
    async check(headers) {
      const encoded = credentialsFor(headers, 'basic');
      if (encoded === null) return { ok: false, reason: 'no basic credentials' };
      const decoded = Buffer.from(encoded, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return { ok: false, reason: 'malformed basic credentials' };
      const user = decoded.slice(0, colon);
      const password = decoded.slice(colon + 1);
      const key = createHmac('sha256', secret).update(user).update('\0').update(password).digest('base64');
      if (good.get(key) === user) return { ok: true, user };
      const hash = users.get(user);
      // Requests with the same credentials while one check runs wait for it rather than each
      // paying bcrypt: a client opening 32 connections at once (or when its entry expires) costs
      // one check, not 32 (measured in the bench: 32 at once took a whole second of CPU).
      let pending = checking.get(key);
      if (pending === undefined) {
        pending = bcrypt.compare(password, hash ?? decoy).finally(() => checking.delete(key));
        checking.set(key, pending);
      }
      const match = await pending;
      if (!match || hash === undefined) return { ok: false, reason: hash === undefined ? 'unknown user' : 'wrong password', user };
      good.set(key, user);
      return { ok: true, user };
    },
  };
}

function compileBearer(options: NonNullable<Extract<Auth, { bearer: unknown }>['bearer']>): CompiledAuth {
  const digests = options.tokens.map(tokenDigest);
  const realm = options.realm ?? 'switchyard';
  return {
    challenges: [`Bearer realm=${quote(realm)}`],
    consumes: ['authorization'],
    async check(headers) {
      const token = credentialsFor(headers, 'bearer');
      if (token === null) return { ok: false, reason: 'no bearer token' };
      const digest = createHash('sha256').update(token, 'utf8').digest();
      // Every token is compared, equal lengths (digests), so the time says nothing of which matched.
      let found = -1;
      for (let i = 0; i < digests.length; i++) if (timingSafeEqual(digest, digests[i] as Buffer)) found = i;
      return found < 0 ? { ok: false, reason: 'unknown bearer token' } : { ok: true, user: `token#${found}` };
    },
  };
}

/**
 * The route's `auth` as one check, or null without one. `jwtKeys` holds the key text of each
 * `jwt` entry with a `key`, in the order they appear (read at load: config/tls-files.ts).
 */
export function compileAuth(
  option: AuthOption | undefined,
  jwtKeys: readonly string[] = [],
  htpasswd: readonly Readonly<Record<string, string>>[] = [],
): CompiledAuth | null {
  if (option === undefined) return null;
  let nextKey = 0;
  let nextFile = 0;
  const one = (auth: Auth): CompiledAuth => {
    if ('basic' in auth) return compileBasic(auth.basic, auth.basic.file === undefined ? {} : (htpasswd[nextFile++] ?? {}));
    if ('bearer' in auth) return compileBearer(auth.bearer);
    if ('forward' in auth) return compileForwardAuth(auth.forward);
    return compileJwt(auth.jwt, auth.jwt.key === undefined ? null : (jwtKeys[nextKey++] ?? null));
  };
  if ('anyOf' in option) return combine(option.anyOf.map(one), 'any');
  if ('allOf' in option) return combine(option.allOf.map(one), 'all');
  return one(option);
}

function combine(parts: CompiledAuth[], mode: 'any' | 'all'): CompiledAuth {
  return {
    challenges: [...new Set(parts.flatMap((p) => p.challenges))],
    consumes: [...new Set(parts.flatMap((p) => p.consumes))],
    consumesCookies: [...new Set(parts.flatMap((p) => p.consumesCookies ?? []))],
    setsFields: [...new Set(parts.flatMap((p) => p.setsFields ?? []))],
    async check(headers, context) {
      let last: AuthOutcome = { ok: false, reason: 'no credentials' };
      const users: string[] = [];
      const fields: (readonly [string, string])[] = [];
      let claims: Readonly<Record<string, unknown>> | undefined;
      for (const part of parts) {
        const outcome = await part.check(headers, context);
        if (mode === 'any' && outcome.ok) return outcome;
        if (mode === 'all' && !outcome.ok) return outcome;
        if (outcome.ok) {
          users.push(outcome.user);
          if (outcome.fields) fields.push(...outcome.fields);
          claims ??= outcome.claims;
        }
        // The reason to log is the kind that got credentials at all (a wrong password, not
        // "no bearer token" from the next kind).
        else if (last.ok || last.user === undefined || outcome.user !== undefined) last = outcome;
      }
      return mode === 'all' ? { ok: true, user: users.join('+'), fields, claims } : last;
    },
  };
}
