// `auth: { jwt }` (issue 11): a JWT from `Authorization: Bearer` (or a cookie) verified with
// jose (WebCrypto, the same code on Bun, Deno and Node) against a static key (a PEM public key
// or JWK read at load, or an HS secret) or a JWKS URL (cached; an unknown `kid` refetches it,
// at most once a second). Algorithms are pinned: by default the one the key's type implies
// (a JWKS takes asymmetric ones only), so an HS token signed with a public key as its secret
// (the RS -> HS confusion) and `alg: none` never verify. Issuer, audience, exp and nbf are
// checked with a clock-skew allowance; chosen claims travel upstream as request fields.
import { createPublicKey } from 'node:crypto';
import { createRemoteJWKSet, importJWK, importSPKI, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose';
import { LRUCache } from 'lru-cache';
import type { JwtAuth } from '../config/types.ts';
import { cookieValue } from '../http/cookies.ts';
import type { AuthOutcome, CompiledAuth } from './auth.ts';

/** Asymmetric JWS algorithms a JWKS may use (never HS*: its keys are public). */
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
const DEFAULT_SKEW_SECONDS = 30;
/**
 * After a JWKS fetch, how long before a token with an unknown `kid` may fetch it again: short,
 * so a rotated key is taken within a second, and still at most one fetch a second however many
 * made-up kids arrive.
 */
const JWKS_COOLDOWN_MS = 1_000;
/**
 * How long a verified token is trusted without checking its signature again. A key removed
 * from a JWKS, or a changed `issuer`, takes effect for already-seen tokens within this time.
 */
const VERIFIED_TTL_MS = 60_000;
/** Verified tokens remembered per route. */
const VERIFIED_MAX = 10_000;

/** The algorithm a PEM public key or JWK implies: RSA RS256, EC by curve, OKP EdDSA. */
export function impliedAlgorithm(material: string): string {
  const trimmed = material.trim();
  const key = trimmed.startsWith('{') ? createPublicKey({ key: JSON.parse(trimmed), format: 'jwk' }) : createPublicKey(trimmed);
  const type = key.asymmetricKeyType;
  if (type === 'rsa') return 'RS256';
  if (type === 'rsa-pss') return 'PS256';
  if (type === 'ed25519') return 'EdDSA';
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return 'ES256';
    if (curve === 'secp384r1') return 'ES384';
    if (curve === 'secp521r1') return 'ES512';
  }
  throw new Error(`unsupported key type ${type ?? 'unknown'}`);
}

/** The token: `Authorization: Bearer <jwt>`, or the named cookie. */
function tokenOf(headers: Headers, cookie: string | null): string | null {
  if (cookie !== null) return cookieValue(headers.get('cookie'), cookie);
  const value = headers.get('authorization');
  if (value === null || value.length < 8 || value.slice(0, 7).toLowerCase() !== 'bearer ') return null;
  return value.slice(7).trim();
}

/** A claim as a request field value: strings as they are, other JSON as JSON; absent: null. */
const claimValue = (payload: JWTPayload, claim: string): string | null => {
  const value = payload[claim];
  if (value === undefined || value === null) return null;
  return typeof value === 'string' ? value : JSON.stringify(value);
};

/** `key` is the key file's (or inline) text, read at load; null with `secret` or `jwksUrl`. */
export function compileJwt(options: JwtAuth, key: string | null): CompiledAuth {
  let getKey: JWTVerifyGetKey | Uint8Array;
  let algorithms: string[];
  if (options.jwksUrl !== undefined) {
    getKey = createRemoteJWKSet(new URL(options.jwksUrl), { cooldownDuration: JWKS_COOLDOWN_MS, cacheMaxAge: 600_000, timeoutDuration: 5_000 });
    algorithms = options.algorithms ?? ASYMMETRIC;
  } else if (options.secret !== undefined) {
    getKey = new TextEncoder().encode(options.secret);
    algorithms = options.algorithms ?? ['HS256'];
  } else {
    const material = key as string;
    algorithms = options.algorithms ?? [impliedAlgorithm(material)];
    // One import per algorithm the header may name (within `algorithms`), made once.
    const imported = new Map<string, Promise<CryptoKey | Uint8Array>>();
    const isJwk = material.trim().startsWith('{');
    getKey = (header) => {
      const alg = header.alg as string;
      let pending = imported.get(alg);
      if (pending === undefined) {
        pending = isJwk ? importJWK(JSON.parse(material), alg) : importSPKI(material, alg);
        imported.set(alg, pending);
      }
      return pending;
    };
  }
  // Tokens that verified, by their exact text: a client sending the same token again costs a
  // map lookup, not a signature check (the bench's JWT route is within 15% of a plain one
  // because of it). Keyed by the token itself: it is a bearer credential already in memory on
  // every request, and it expires.
  const verified = new LRUCache<string, { outcome: AuthOutcome; until: number }>({ max: VERIFIED_MAX });
  const verifyOptions = {
    algorithms,
    issuer: options.issuer,
    audience: options.audience,
    clockTolerance: options.clockSkewSeconds ?? DEFAULT_SKEW_SECONDS,
  };
  const cookie = options.cookie ?? null;
  const claims = Object.entries(options.claimsToHeaders ?? {});
  return {
    challenges: [`Bearer realm="${options.realm ?? 'switchyard'}"`],
    consumes: cookie === null ? ['authorization'] : [],
    consumesCookies: cookie === null ? [] : [cookie],
    setsFields: claims.map(([, field]) => field.toLowerCase()),
    async check(headers): Promise<AuthOutcome> {
      const token = tokenOf(headers, cookie);
      if (token === null) return { ok: false, reason: 'no bearer token' };
      const now = Date.now();
      const cached = verified.get(token);
      if (cached !== undefined && cached.until > now) return cached.outcome;
      try {
        const { payload } = await jwtVerify(token, getKey as JWTVerifyGetKey, verifyOptions);
        const fields: [string, string][] = [];
        for (const [claim, field] of claims) {
          const value = claimValue(payload, claim);
          if (value !== null && !/[\r\n\0]/.test(value)) fields.push([field, value]);
        }
        const outcome: AuthOutcome = { ok: true, user: typeof payload.sub === 'string' ? payload.sub : 'jwt', fields, claims: payload };
        // Trusted again until it expires (without the skew allowance) or for VERIFIED_TTL_MS.
        const until = Math.min(now + VERIFIED_TTL_MS, payload.exp === undefined ? Number.POSITIVE_INFINITY : payload.exp * 1000);
        if (until > now) verified.set(token, { outcome, until });
        return outcome;
      } catch (error) {
        // jose's codes name the failure (ERR_JWT_EXPIRED, ERR_JWS_SIGNATURE_VERIFICATION_FAILED,
        // ERR_JWT_CLAIM_VALIDATION_FAILED with the claim, ERR_JOSE_ALG_NOT_ALLOWED, ERR_JWKS_NO_MATCHING_KEY).
        const e = error as { code?: string; claim?: string; message?: string };
        const reason = e.claim ? `${e.code}: ${e.claim}` : (e.code ?? 'invalid token');
        return { ok: false, reason, user: 'jwt' };
      }
    },
  };
}
