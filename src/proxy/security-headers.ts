// A route's security headers (`route.securityHeaders`, compiled at load into name/value pairs),
// set on every answer of the route, the upstream's and the proxy's own, by routeHeaders
// (./route-headers.ts). HSTS is not here: it depends on the listener (./https.ts).
import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import type { Route, SecurityHeaders } from '../config/types.ts';

/** What a route adds to its answers, decided once at load (config/compile.ts). */
export interface CompiledSecurityHeaders {
  /** Lowercase names and their values, in a fixed order. */
  readonly pairs: readonly (readonly [string, string])[];
  /** Replace an upstream's own value; false only fills in what it did not send. */
  readonly overwrite: boolean;
}

/**
 * Runs `edit` on the answer's headers. A Response whose headers are immutable (one from a
 * fetch) throws on the first change: it is copied once, the copy becomes the answer, and `edit`
 * runs on that.
 */
export function editHeaders<T>(c: Context<AppEnv>, edit: (headers: Headers, arg: T) => void, arg: T): void {
  try {
    edit(c.res.headers, arg);
  } catch {
    // Immutable headers throw before changing anything: edit a copy.
    const res = new Response(c.res.body, c.res);
    edit(res.headers, arg);
    // Hono's setter would copy the old answer's headers over the edited ones: clear it first.
    c.res = undefined;
    c.res = res;
  }
}

function setPairs(headers: Headers, compiled: CompiledSecurityHeaders): void {
  const { pairs, overwrite } = compiled;
  for (const [name, value] of pairs) if (overwrite || !headers.has(name)) headers.set(name, value);
}

/** What a middleware resolves to: its own answer, or nothing when the answer is in `c.res`. */
type Answered = ReturnType<MiddlewareHandler<AppEnv>>;

/**
 * Sets the route's pairs on the answer once `answered` settles (./route-headers.ts): on the
 * Response it resolves to when the middleware inside answered itself (a preflight; Hono makes it
 * `c.res` only after this returns), else on `c.res`.
 */
export function addSecurityHeaders(c: Context<AppEnv>, answered: Answered, compiled: CompiledSecurityHeaders): Answered {
  return answered.then((res) => {
    // next() resolves to Hono's context, an answer made here to a Response.
    if (!(res instanceof Response)) return editHeaders(c, setPairs, compiled);
    // Built by Hono's cors just now: its headers are mutable.
    setPairs(res.headers, compiled);
    return res;
  });
}

/** What `securityHeaders: true` sends, and what the object form starts from. */
export const SECURITY_HEADER_DEFAULTS = {
  contentTypeOptions: true,
  frameOptions: 'SAMEORIGIN',
  referrerPolicy: 'strict-origin-when-cross-origin',
} as const satisfies SecurityHeaders;

/** `route.securityHeaders` as the pairs to set, or null when it adds none. */
export function compileSecurityHeaders(value: Route['securityHeaders']): CompiledSecurityHeaders | null {
  if (value === undefined || value === false) return null;
  const o = value === true ? {} : value;
  const pairs: [string, string][] = [];
  if (o.contentTypeOptions ?? SECURITY_HEADER_DEFAULTS.contentTypeOptions) pairs.push(['x-content-type-options', 'nosniff']);
  const frame = o.frameOptions ?? SECURITY_HEADER_DEFAULTS.frameOptions;
  if (frame !== false) pairs.push(['x-frame-options', frame]);
  const referrer = o.referrerPolicy ?? SECURITY_HEADER_DEFAULTS.referrerPolicy;
  if (referrer !== false) pairs.push(['referrer-policy', referrer]);
  if (o.contentSecurityPolicy !== undefined) pairs.push(['content-security-policy', o.contentSecurityPolicy]);
  if (o.contentSecurityPolicyReportOnly !== undefined) pairs.push(['content-security-policy-report-only', o.contentSecurityPolicyReportOnly]);
  if (o.permissionsPolicy !== undefined) pairs.push(['permissions-policy', o.permissionsPolicy]);
  return pairs.length === 0 ? null : { pairs, overwrite: o.overwrite ?? true };
}
