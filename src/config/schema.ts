// Validation of the routes.ts default export at load time: the same shape as ./types.ts, checked
// with valibot so a plain-JS file or a typo fails with a message naming the path to the mistake.
// It does not compile anything; see ./compile.ts.
import * as v from 'valibot';
import { HOP_BY_HOP } from '../http/hop-by-hop.ts';
import { cidrProblem } from '../proxy/cidr.ts';
import { hostPatternProblem } from '../router/host.ts';
import { prefixProblem } from '../router/path.ts';
import type { Config, Route } from './types.ts';

/** Header limit ceiling: Bun's and Node's parsers refuse more than 16 KiB of headers. */
export const MAX_HEADER_BYTES_CEILING = 16384;

const withProblem = (problem: (value: string) => string | null) =>
  v.rawCheck<string>(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const message = problem(dataset.value);
    if (message) addIssue({ message });
  });

/** Why `value` is not a usable upstream origin, or null. */
export function upstreamProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'invalid URL';
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) return `unsupported scheme ${url.protocol} (use http:, https:, ws: or wss:)`;
  if (url.username || url.password) return 'must not contain credentials';
  if (url.pathname !== '/' || url.search || url.hash || /[?#]/.test(value)) return 'must be an origin like http://host:port, without path, query or fragment';
  return null;
}

/** Why `value` is not a usable route path prefix, or null. */
export function pathProblem(value: string): string | null {
  if (!value.startsWith('/')) return 'must start with /';
  if (/[?#\s]/.test(value)) return 'must not contain ?, # or whitespace';
  return prefixProblem(value);
}

/** Why `value` is not a usable listen address, or null. */
export function listenProblem(value: string): string | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  if (!m) return 'must be HOST:PORT, :PORT or [IPv6]:PORT';
  if (Number(m[3]) > 65535) return 'port must be 0-65535';
  return null;
}

const sizeLimit = (min: number, max: number) =>
  v.pipe(v.number('must be a number'), v.integer('must be an integer'), v.minValue(min, `must be at least ${min}`), v.maxValue(max, `must be at most ${max}`));
// setTimeout's ceiling: larger values silently become 1 ms on every runtime.
const MAX_TIMER_MS = 2_147_483_647;
const timeoutMs = v.pipe(
  v.number('must be a number'),
  v.integer('must be an integer'),
  v.minValue(1, 'must be at least 1'),
  v.maxValue(MAX_TIMER_MS, `must be at most ${MAX_TIMER_MS}`),
);
const byteLimit = v.nullable(v.pipe(v.number('must be a number or null'), v.integer('must be an integer'), v.minValue(0, 'must be at least 0')));
const hostPattern = v.pipe(v.string('must be a string'), withProblem(hostPatternProblem));

const filePath = v.pipe(v.string('must be a file path string'), v.minLength(1, 'must not be empty'));
const flag = v.boolean('must be true or false');
// Fields the proxy sets or frames itself: a client certificate's subject must not replace them.
const OWN_FIELDS = new Set([
  'host',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  'x-request-id',
  'content-length',
  'cookie',
  ...HOP_BY_HOP,
]);
// RFC 9110 §5.1 field name.
const headerName = v.pipe(
  v.string('must be a string'),
  v.regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be a header field name'),
  v.check((name) => !OWN_FIELDS.has(name.toLowerCase()), 'names a header the proxy sets or frames itself; pick another, e.g. x-client-subject'),
);
// A DNS name for SNI (RFC 6066 §3): no wildcard, no port, no IP literal.
const SNI_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const serverName = v.pipe(
  v.string('must be a string'),
  v.regex(SNI_NAME, 'must be a DNS name such as internal.xyz.com (no wildcard, port or IP address)'),
  v.check((name) => !/^[\d.]+$/.test(name), 'must be a DNS name, not an IP address'),
);

const HstsSchema = v.union(
  [
    flag,
    v.strictObject({
      maxAge: v.optional(v.pipe(v.number('must be a number'), v.integer('must be an integer'), v.minValue(0, 'must be at least 0'))),
      includeSubDomains: v.optional(flag),
      preload: v.optional(flag),
    }),
  ],
  'must be true, false or { maxAge, includeSubDomains, preload }',
);

const UpstreamTlsSchema = v.strictObject({
  ca: v.optional(filePath),
  serverName: v.optional(serverName),
  cert: v.optional(filePath),
  key: v.optional(filePath),
  insecure: v.optional(flag),
});

export const TlsSchema = v.strictObject({
  listen: v.optional(v.pipe(v.string('must be a string'), withProblem(listenProblem))),
  certificates: v.pipe(
    v.array(v.strictObject({ cert: filePath, key: filePath }), 'must be an array of { cert, key }'),
    v.minLength(1, 'must name at least one { cert, key } pair'),
  ),
  redirectHttp: v.optional(flag),
  clientAuth: v.optional(v.strictObject({ ca: filePath, required: v.optional(flag), header: v.optional(headerName) })),
});

const originString = v.pipe(v.string('must be a URL string like http://localhost:8080'), withProblem(upstreamProblem));
const statusCode = v.pipe(
  v.number('must be a number'),
  v.integer('must be an integer'),
  v.minValue(100, 'must be at least 100'),
  v.maxValue(599, 'must be at most 599'),
);
const cookieName = v.pipe(v.string('must be a string'), v.regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be a cookie name (a token)'));
const SIMPLE_POLICIES = ['round_robin', 'least_conn', 'random', 'p2c', 'first'] as const;

// Unions whose branch is known from the value's shape pick it with `lazy`, so a mistake inside
// an object is reported at its own path ("upstream.helth: unknown key"), not as "must be one of".
const isObject = (input: unknown) => typeof input === 'object' && input !== null && !Array.isArray(input);

const TargetObject = v.strictObject({ url: originString, weight: v.optional(sizeLimit(1, 1000)), maxInFlight: v.optional(sizeLimit(1, 10_000_000)) });
const TargetSchema = v.lazy((input) => (isObject(input) ? TargetObject : originString));

const SIMPLE_WORDS = SIMPLE_POLICIES.map((p) => `"${p}"`).join(', ');
const POLICY_WORDS = `one of ${SIMPLE_WORDS}, { hash: "ip" | "path" }, { hash: "header" | "cookie", name } or { sticky: {...} }`;
const HashByAddress = v.strictObject({ hash: v.picklist(['ip', 'path']) });
const HashByName = v.strictObject({
  hash: v.picklist(['header', 'cookie']),
  name: v.pipe(v.string('must be a header or cookie name'), v.regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be a header or cookie name (a token, e.g. x-user)')),
});
const StickyPolicy = v.strictObject({
  sticky: v.strictObject({
    cookie: v.optional(cookieName),
    secret: v.optional(v.pipe(v.string('must be a string'), v.minLength(16, 'must be at least 16 characters'))),
    maxAgeSeconds: v.optional(sizeLimit(1, 400 * 86400)),
    fallback: v.optional(v.picklist(SIMPLE_POLICIES, `must be one of ${SIMPLE_WORDS}`)),
  }),
});
const UnknownHash = v.strictObject({ hash: v.picklist(['ip', 'path'], 'must be "ip", "path", "header" or "cookie"') });
const PolicySchema = v.lazy((input) => {
  if (!isObject(input)) return v.picklist(SIMPLE_POLICIES, `must be ${POLICY_WORDS}`);
  const o = input as Record<string, unknown>;
  if ('sticky' in o) return StickyPolicy;
  if (o.hash === 'header' || o.hash === 'cookie') return HashByName;
  if (o.hash === 'ip' || o.hash === 'path') return HashByAddress;
  if ('hash' in o) return UnknownHash;
  return v.union([HashByAddress, HashByName, StickyPolicy], `must be ${POLICY_WORDS}`);
});

const HealthSchema = v.strictObject({
  path: v.pipe(v.string('must be a string'), v.regex(/^\/[^\s#]*$/, 'must be a path starting with / (a query is allowed)')),
  method: v.optional(v.picklist(['GET', 'HEAD'], 'must be "GET" or "HEAD"')),
  intervalMs: v.optional(sizeLimit(100, MAX_TIMER_MS)),
  timeoutMs: v.optional(sizeLimit(10, MAX_TIMER_MS)),
  status: v.optional(
    v.pipe(
      v.tuple([statusCode, statusCode], 'must be [from, to]'),
      v.check(([from, to]) => from <= to, 'must be [from, to] with from <= to'),
    ),
  ),
  body: v.optional(v.pipe(v.string('must be a string'), v.minLength(1, 'must not be empty'))),
  rise: v.optional(sizeLimit(1, 100)),
  fall: v.optional(sizeLimit(1, 100)),
  host: v.optional(v.pipe(v.string('must be a string'), v.regex(/^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/, 'must be a host[:port]'))),
  jitterMs: v.optional(sizeLimit(0, MAX_TIMER_MS)),
});

const PassiveSchema = v.union(
  [
    v.literal(false),
    v.strictObject({
      failures: v.optional(sizeLimit(1, 1000)),
      windowMs: v.optional(sizeLimit(100, MAX_TIMER_MS)),
      cooldownMs: v.optional(sizeLimit(100, MAX_TIMER_MS)),
      statuses: v.optional(v.array(statusCode, 'must be an array of statuses')),
    }),
  ],
  'must be false or { failures, windowMs, cooldownMs, statuses }',
);

const RetrySchema = v.strictObject({
  tries: v.optional(sizeLimit(1, 100)),
  tryDurationMs: v.optional(sizeLimit(1, MAX_TIMER_MS)),
  statuses: v.optional(v.array(statusCode, 'must be an array of statuses')),
  onTimeout: v.optional(flag),
  replayBodyBytes: v.optional(sizeLimit(0, 16 * 1024 * 1024)),
});

const GroupSchema = v.strictObject({
  targets: v.pipe(v.array(TargetSchema, 'must be an array of origins'), v.minLength(1, 'must name at least one upstream')),
  policy: v.optional(PolicySchema),
  health: v.optional(HealthSchema),
  passive: v.optional(PassiveSchema),
  retry: v.optional(RetrySchema),
});

const UpstreamList = v.pipe(v.array(originString, 'must be an array of origins'), v.minLength(1, 'must name at least one upstream'));
const UpstreamSchema = v.lazy((input) =>
  Array.isArray(input)
    ? UpstreamList
    : isObject(input)
      ? GroupSchema
      : v.pipe(
          v.string('must be an origin like http://localhost:8080, an array of them, or { targets, policy, health, passive, retry }'),
          withProblem(upstreamProblem),
        ),
);

// --- Security headers and CORS (README "Security headers and CORS") ---------------------------

// RFC 9110 §5.5: a value sent as written must stay one field line: visible ASCII and spaces, no
// leading or trailing space (CR, LF or NUL would end or split the header).
const fieldValue = v.pipe(
  v.string('must be a string'),
  v.regex(/^[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?$/, 'must be one line of visible ASCII characters and spaces, without leading or trailing space'),
);
const REFERRER_POLICIES = [
  'no-referrer',
  'no-referrer-when-downgrade',
  'same-origin',
  'origin',
  'strict-origin',
  'origin-when-cross-origin',
  'strict-origin-when-cross-origin',
  'unsafe-url',
] as const;
const SecurityHeadersObject = v.strictObject({
  contentTypeOptions: v.optional(flag),
  frameOptions: v.optional(v.union([v.literal('DENY'), v.literal('SAMEORIGIN'), v.literal(false)], 'must be "DENY", "SAMEORIGIN" or false')),
  referrerPolicy: v.optional(
    v.union([v.picklist(REFERRER_POLICIES), v.literal(false)], `must be one of ${REFERRER_POLICIES.map((p) => `"${p}"`).join(', ')}, or false`),
  ),
  contentSecurityPolicy: v.optional(fieldValue),
  contentSecurityPolicyReportOnly: v.optional(fieldValue),
  permissionsPolicy: v.optional(fieldValue),
  overwrite: v.optional(flag),
});
const SecurityHeadersSchema = v.lazy((input) =>
  isObject(input)
    ? SecurityHeadersObject
    : v.boolean('must be true, false or { contentTypeOptions, frameOptions, referrerPolicy, contentSecurityPolicy, ... }'),
);

/** Why `value` is not an origin a browser sends in `Origin` (so could never match), or null. */
export function corsOriginProblem(value: string): string | null {
  if (value === '*') return '"*" stands alone (origin: "*"), not in a list';
  if (value === 'null') return '"null" is the origin of sandboxed frames and file: pages; allowing it lets any of them in';
  if (value.includes('*')) return 'wildcards are not supported: list each origin, or use origin: "*"';
  const m = /^([a-z][a-z0-9+.-]*):\/\/[^/?#@\s]+$/.exec(value);
  if (!m) return 'must be an origin as browsers send it, scheme://host[:port] without path or trailing slash, e.g. https://app.xyz.com';
  if (m[1] === 'http' || m[1] === 'https') {
    let origin: string;
    try {
      origin = new URL(value).origin;
    } catch {
      return 'invalid origin';
    }
    // Browsers send the serialised origin: lowercase host, no default port.
    if (origin !== value) return `must be written as browsers send it: ${origin}`;
  }
  return null;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Fetch normalises these to uppercase before comparing them with Access-Control-Allow-Methods.
const NORMALISED_METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT']);
// Fetch's forbidden methods: no page can send them.
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);
const corsMethod = v.pipe(
  v.string('must be a string'),
  v.regex(TOKEN, 'must be a method name (a token, e.g. PATCH)'),
  v.check(
    (m) => !NORMALISED_METHODS.has(m.toUpperCase()) || NORMALISED_METHODS.has(m),
    'must be uppercase (browsers send DELETE, GET, HEAD, OPTIONS, POST and PUT so)',
  ),
  v.check((m) => !FORBIDDEN_METHODS.has(m.toUpperCase()), 'is a method browsers never let a page send'),
);
const corsHeaderName = v.pipe(v.string('must be a string'), v.regex(TOKEN, 'must be a header name (a token, e.g. X-Request-Id)'));
const corsOrigin = v.pipe(v.string('must be a string'), withProblem(corsOriginProblem));
const CORS_ORIGIN_WORDS = 'must be "*", an origin such as https://app.xyz.com, or an array of origins';
const CorsOriginSchema = v.lazy((input) =>
  input === '*'
    ? v.string()
    : Array.isArray(input)
      ? v.pipe(v.array(corsOrigin, CORS_ORIGIN_WORDS), v.minLength(1, 'must name at least one origin'))
      : v.pipe(v.string(CORS_ORIGIN_WORDS), withProblem(corsOriginProblem)),
);
const CorsObject = v.strictObject({
  origin: CorsOriginSchema,
  allowMethods: v.optional(v.array(corsMethod, 'must be an array of method names')),
  allowHeaders: v.optional(
    v.pipe(
      v.array(corsHeaderName, 'must be an array of header names'),
      v.minLength(1, 'must name at least one header (leave it out to allow what a preflight asks for)'),
    ),
  ),
  exposeHeaders: v.optional(v.array(corsHeaderName, 'must be an array of header names')),
  maxAgeSeconds: v.optional(sizeLimit(0, 86400)),
  credentials: v.optional(flag),
});
type CorsInput = v.InferOutput<typeof CorsObject>;
/** With credentials, Fetch reads `*` in these lists as a name, not a wildcard. */
const noStarWithCredentials = <K extends 'allowMethods' | 'allowHeaders' | 'exposeHeaders'>(key: K, what: string) =>
  v.forward<CorsInput, v.CheckIssue<CorsInput>, [K]>(
    v.check(
      (cors) => !(cors.credentials === true && cors[key]?.includes('*')),
      `"*" is no wildcard with credentials: true (browsers read it as a name); list the ${what}`,
    ),
    [key],
  );
// Checks across fields, each reported at the field to change (they run once the fields are valid).
const CorsSchema = v.pipe(
  CorsObject,
  v.forward<CorsInput, v.CheckIssue<CorsInput>, ['origin']>(
    v.check(
      (cors) => !(cors.credentials === true && cors.origin === '*'),
      'cannot be "*" with credentials: true (browsers refuse credentialed answers open to any origin); list the origins',
    ),
    ['origin'],
  ),
  noStarWithCredentials('allowMethods', 'methods'),
  noStarWithCredentials('allowHeaders', 'headers'),
  noStarWithCredentials('exposeHeaders', 'headers'),
);

// --- Access control (README "Access control") --------------------------------------------------

/** A valid bcrypt hash (`$2a$`, `$2b$`, `$2y$`, cost 04-31, 53 chars of salt and hash). */
export const BCRYPT_HASH = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;
/** A request field the proxy sets or counts by: a token without "_" (underscoreHeaders would drop it). */
const proxyFieldName = v.pipe(
  v.string('must be a header name'),
  v.regex(/^[!#$%&'*+.^`|~0-9A-Za-z-]+$/, 'must be a header name (a token without "_", e.g. x-user)'),
);
const AUTH_KINDS = 'one of { basic }, { bearer }, { jwt }, { forward }, { anyOf: [...] }, { allOf: [...] }';
const realm = v.pipe(v.string('must be a string'), v.regex(/^[\x20-\x7e]{1,100}$/, 'must be 1-100 printable ASCII characters'));
const BasicSchema = v.pipe(
  v.strictObject({
    users: v.optional(
      v.pipe(
        v.record(
          // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
          v.pipe(v.string(), v.regex(/^[^:\x00-\x1f\x7f]{1,100}$/, 'a user name must be 1-100 characters, without ":" or control characters')),
          v.pipe(
            v.string('must be a bcrypt hash'),
            v.regex(BCRYPT_HASH, 'must be a bcrypt hash ("$2b$10$..." from htpasswd -B or bcrypt.hash), never a plaintext password'),
          ),
          'must be an object of user names and bcrypt hashes',
        ),
        v.check((users) => Object.keys(users).length > 0, 'must name at least one user'),
      ),
    ),
    file: v.optional(v.pipe(v.string('must be a file path'), v.minLength(1, 'must not be empty'))),
    realm: v.optional(realm),
  }),
  v.check((o) => o.users !== undefined || o.file !== undefined, 'needs users or file (an htpasswd file)'),
);

const BearerSchema = v.strictObject({
  tokens: v.pipe(
    v.array(
      // RFC 6750 §2.1 b64token; at least 16 characters, since a short token is guessable.
      v.pipe(
        v.string('must be a string'),
        v.regex(/^(sha256:[0-9a-fA-F]{64}|[A-Za-z0-9\-._~+/]{16,}=*)$/, 'must be a token of 16+ characters ([A-Za-z0-9-._~+/]) or sha256:<64 hex digits>'),
      ),
      'must be an array of tokens',
    ),
    v.minLength(1, 'must list at least one token'),
  ),
  realm: v.optional(realm),
});
const JWS_ALGORITHMS = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;
const stringOrList = v.union(
  [v.pipe(v.string(), v.minLength(1)), v.pipe(v.array(v.pipe(v.string(), v.minLength(1))), v.minLength(1))],
  'must be a string or an array of strings',
);
const JwtSchema = v.pipe(
  v.strictObject({
    key: v.optional(v.pipe(v.string('must be a file path, or PEM or JWK text'), v.minLength(1, 'must not be empty'))),
    secret: v.optional(v.pipe(v.string('must be a string'), v.minLength(32, 'must be at least 32 characters'))),
    jwksUrl: v.optional(
      v.pipe(
        v.string('must be a URL'),
        v.check((u) => /^https?:\/\/[^/]/.test(u) && URL.canParse(u), 'must be an http(s) URL'),
      ),
    ),
    issuer: v.optional(stringOrList),
    audience: v.optional(stringOrList),
    algorithms: v.optional(
      v.pipe(
        v.array(v.picklist(JWS_ALGORITHMS, `must be one of ${JWS_ALGORITHMS.join(', ')} (never "none")`), 'must be an array of algorithms'),
        v.minLength(1, 'must list at least one algorithm'),
      ),
    ),
    clockSkewSeconds: v.optional(
      v.pipe(v.number('must be a number'), v.integer('must be an integer'), v.minValue(0, 'must be at least 0'), v.maxValue(3600, 'must be at most 3600')),
    ),
    claimsToHeaders: v.optional(v.record(v.pipe(v.string(), v.minLength(1)), proxyFieldName, 'must be an object of claim names and header names')),
    cookie: v.optional(cookieName),
    realm: v.optional(realm),
  }),
  v.check((o) => [o.key, o.secret, o.jwksUrl].filter((x) => x !== undefined).length === 1, 'needs exactly one of key, secret and jwksUrl'),
  v.check(
    (o) => o.secret !== undefined || !(o.algorithms ?? []).some((a) => a.startsWith('HS')),
    'HS* algorithms need a secret (with a public key they would let the key be used as an HMAC secret)',
  ),
  v.check((o) => o.secret === undefined || (o.algorithms ?? ['HS256']).every((a) => a.startsWith('HS')), 'a secret takes HS* algorithms only'),
);
const ForwardAuthSchema = v.strictObject({
  url: v.pipe(
    v.string('must be a URL'),
    v.check((u) => /^https?:\/\/[^/]/.test(u) && URL.canParse(u), 'must be an http(s) URL, e.g. http://localhost:9100/verify'),
  ),
  copyHeaders: v.optional(v.array(proxyFieldName, 'must be an array of header names')),
  timeoutMs: v.optional(timeoutMs),
});
const OneAuth = v.lazy((input) => {
  if (!isObject(input)) return v.strictObject({ basic: BasicSchema }, `must be ${AUTH_KINDS}`);
  const o = input as Record<string, unknown>;
  if ('basic' in o) return v.strictObject({ basic: BasicSchema });
  if ('bearer' in o) return v.strictObject({ bearer: BearerSchema });
  if ('jwt' in o) return v.strictObject({ jwt: JwtSchema });
  if ('forward' in o) return v.strictObject({ forward: ForwardAuthSchema });
  return v.custom<never>(
    () => false,
    `unknown auth kind ${
      Object.keys(o)
        .map((k) => `"${k}"`)
        .join(', ') || '{}'
    }: must be ${AUTH_KINDS}`,
  );
});
const authList = v.pipe(v.array(OneAuth, 'must be an array of auth kinds'), v.minLength(1, 'must list at least one auth kind'));
const AuthSchema = v.lazy((input) => {
  if (isObject(input) && 'anyOf' in (input as object)) return v.strictObject({ anyOf: authList });
  if (isObject(input) && 'allOf' in (input as object))
    return v.strictObject({
      allOf: v.pipe(
        authList,
        // Each of them reads Authorization: one request cannot carry both.
        v.check(
          (list) => list.filter((a) => 'basic' in a || 'bearer' in a || ('jwt' in a && a.jwt.cookie === undefined)).length <= 1,
          'can hold at most one kind that reads Authorization (basic, bearer, jwt without cookie)',
        ),
      ),
    });
  return OneAuth;
});

const RateLimitSchema = v.strictObject({
  requests: v.pipe(
    v.number('must be a number'),
    v.integer('must be an integer'),
    v.minValue(1, 'must be at least 1'),
    v.maxValue(1_000_000, 'must be at most 1000000'),
  ),
  windowSeconds: v.pipe(
    v.number('must be a number'),
    v.integer('must be an integer'),
    v.minValue(1, 'must be at least 1'),
    v.maxValue(86_400, 'must be at most 86400'),
  ),
  key: v.optional(
    v.union(
      [
        v.picklist(['client', 'route']),
        v.strictObject({
          header: proxyFieldName,
        }),
        v.strictObject({
          claim: v.pipe(v.string('must be a string'), v.minLength(1, 'must not be empty'), v.maxLength(256, 'must be at most 256 characters')),
        }),
      ],
      'must be "client", "route", { header } or { claim }',
    ),
  ),
  burst: v.optional(
    v.pipe(
      v.number('must be a number'),
      v.integer('must be an integer'),
      v.minValue(1, 'must be at least 1'),
      v.maxValue(1_000_000, 'must be at most 1000000'),
    ),
  ),
  store: v.optional(v.picklist(['memory', 'redis'], 'must be "memory" or "redis"')),
  onStoreDown: v.optional(v.picklist(['allow', 'deny'], 'must be "allow" or "deny"')),
});

const RedisSchema = v.strictObject({
  url: v.pipe(
    v.string('must be a string'),
    v.check(
      (url) => URL.canParse(url) && /^rediss?:$/.test(new URL(url).protocol) && new URL(url).hostname !== '',
      'must be a redis:// or rediss:// URL with a host',
    ),
  ),
  commandTimeoutMs: v.optional(sizeLimit(1, 60_000)),
  keyPrefix: v.optional(v.pipe(v.string('must be a string'), v.maxLength(256, 'must be at most 256 characters'))),
});

/** A list of CIDRs or single addresses (`allow`, `deny`). */
const cidrList = v.array(v.pipe(v.string('must be a string'), withProblem(cidrProblem)), 'must be an array of CIDR strings');

const RouteSchema = v.strictObject({
  host: v.union(
    [hostPattern, v.pipe(v.array(hostPattern, 'must be a string or an array of strings'), v.minLength(1, 'must not be empty'))],
    'must be a host name, "*.suffix", "*", or an array of them',
  ),
  path: v.optional(v.pipe(v.string('must be a string'), withProblem(pathProblem))),
  stripPrefix: v.optional(v.boolean('must be true or false')),
  upstream: UpstreamSchema,
  hostHeader: v.optional(v.picklist(['client', 'upstream'], 'must be "client" or "upstream"')),
  timeoutMs: v.optional(timeoutMs),
  connectTimeoutMs: v.optional(timeoutMs),
  bodyIdleTimeoutMs: v.optional(v.nullable(timeoutMs)),
  maxBodyBytes: v.optional(byteLimit),
  hsts: v.optional(HstsSchema),
  redirectHttp: v.optional(flag),
  securityHeaders: v.optional(SecurityHeadersSchema),
  auth: v.optional(AuthSchema),
  rateLimit: v.optional(RateLimitSchema),
  passCredentials: v.optional(flag),
  allow: v.optional(v.pipe(cidrList, v.minLength(1, 'is empty, so nobody could use the route (leave it out to allow everyone)'))),
  deny: v.optional(cidrList),
  cors: v.optional(CorsSchema),
  upstreamTls: v.optional(UpstreamTlsSchema),
  websocket: v.optional(
    v.union(
      [v.literal(false), v.strictObject({ idleTimeoutMs: v.optional(timeoutMs), maxTunnels: v.optional(sizeLimit(1, 1_000_000)) })],
      'must be false or { idleTimeoutMs, maxTunnels }',
    ),
  ),
});

export const ConfigSchema = v.strictObject({
  listen: v.optional(v.pipe(v.string('must be a string'), withProblem(listenProblem))),
  tls: v.optional(TlsSchema),
  routes: v.array(RouteSchema, 'must be an array of routes'),
  redis: v.optional(RedisSchema),
  trustedProxies: v.optional(v.array(v.pipe(v.string('must be a string'), withProblem(cidrProblem)), 'must be an array of CIDR strings')),
  forwarded: v.optional(v.boolean('must be true or false')),
  underscoreHeaders: v.optional(v.picklist(['drop', 'reject', 'pass'], 'must be "drop", "reject" or "pass"')),
  limits: v.optional(
    v.strictObject({
      maxBodyBytes: v.optional(byteLimit),
      maxHeaderBytes: v.optional(sizeLimit(1024, MAX_HEADER_BYTES_CEILING)),
      maxUrlBytes: v.optional(sizeLimit(256, MAX_HEADER_BYTES_CEILING)),
      headerTimeoutMs: v.optional(sizeLimit(100, MAX_TIMER_MS)),
      bodyTimeoutMs: v.optional(sizeLimit(100, MAX_TIMER_MS)),
      bodyMinBytesPerSecond: v.optional(sizeLimit(0, 1_000_000_000)),
      idleTimeoutMs: v.optional(sizeLimit(100, MAX_TIMER_MS)),
      sendTimeoutMs: v.optional(sizeLimit(100, MAX_TIMER_MS)),
      maxConnections: v.optional(sizeLimit(1, 10_000_000)),
      maxConnectionsPerIp: v.optional(sizeLimit(1, 10_000_000)),
    }),
  ),
  timeouts: v.optional(
    v.strictObject({
      upstreamMs: v.optional(timeoutMs),
      connectMs: v.optional(timeoutMs),
      bodyIdleMs: v.optional(v.nullable(timeoutMs)),
      shutdownGraceMs: v.optional(
        v.pipe(
          v.number('must be a number'),
          v.integer('must be an integer'),
          v.minValue(0, 'must be at least 0'),
          v.maxValue(MAX_TIMER_MS, `must be at most ${MAX_TIMER_MS}`),
        ),
      ),
    }),
  ),
});

// The hand-written types (the manual, copied by `switchyard init`) and the schema must agree.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const schemaMatchesTypes: Same<v.InferInput<typeof ConfigSchema>, Config> = true;
void schemaMatchesTypes;

/** Formats a valibot issue path as `routes[2].upstream`. */
function issuePath(issue: v.BaseIssue<unknown>): string {
  let out = '';
  for (const item of issue.path ?? []) {
    const key = item.key;
    if (typeof key === 'number') out += `[${key}]`;
    // A key that is not a plain name is quoted, so the path stays readable (`routes[0]["a b"]`).
    else if (!PLAIN_KEY.test(String(key))) out += `[${JSON.stringify(String(key))}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out || '(config)';
}

const PLAIN_KEY = /^[A-Za-z_$][\w$]*$/;

/** Turns an unknown-key issue's message into one naming the key. */
function issueMessage(issue: v.BaseIssue<unknown>): string {
  if (issue.type === 'object' || issue.type === 'strict_object') {
    if (issue.expected === 'never') return 'unknown key';
    // A missing required key is reported on the object with the key in its path.
    if (issue.received === 'undefined' && issue.path?.length) return 'is required';
    return 'must be an object';
  }
  return issue.message;
}

/** Every problem in `input`, one line each (`routes[2].upstream: invalid URL`), plus cross-route checks. */
export function validateConfig(input: unknown): { ok: true; config: Config } | { ok: false; problems: string[] } {
  // valibot reads an array's indexes as keys of an object ("0: unknown key"): say what it is.
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return {
      ok: false,
      problems: [`(config): must be an object ({ routes: [...] }), not ${Array.isArray(input) ? 'an array' : input === null ? 'null' : `a ${typeof input}`}`],
    };
  }
  const result = v.safeParse(ConfigSchema, input, { abortEarly: false });
  if (!result.success) {
    return { ok: false, problems: result.issues.map((i) => `${issuePath(i)}: ${issueMessage(i)}`) };
  }
  const problems = crossRouteProblems(result.output);
  return problems.length ? { ok: false, problems } : { ok: true, config: result.output };
}

/**
 * Two routes claiming the same host and path would make the winner depend on order; TLS
 * settings that cannot apply are mistakes, not silently ignored.
 */
/** Whether a route's `auth` verifies a JWT anywhere in it (a claim key needs one). */
function hasJwt(auth: Config['routes'][number]['auth']): boolean {
  if (auth === undefined) return false;
  if ('anyOf' in auth) return auth.anyOf.some(hasJwt);
  if ('allOf' in auth) return auth.allOf.some(hasJwt);
  return 'jwt' in auth;
}

function crossRouteProblems(config: Config): string[] {
  const seen = new Map<string, number>();
  const problems: string[] = [];
  config.routes.forEach((route, i) => {
    const origins = upstreamOrigins(route.upstream);
    const compiled = new Map<string, number>();
    origins.forEach((origin, t) => {
      const key = compileOrigin(origin);
      const first = compiled.get(key);
      if (first !== undefined) problems.push(`routes[${i}].upstream: ${origin} is listed twice (targets ${first} and ${t}); give it a weight instead`);
      else compiled.set(key, t);
    });
    const upstreamTls = route.upstreamTls;
    if (upstreamTls !== undefined) {
      const plain = origins.filter((origin) => !/^(https|wss):/i.test(origin));
      if (plain.length > 0)
        problems.push(
          origins.length === 1
            ? `routes[${i}].upstreamTls: needs an https:// or wss:// upstream (upstream is ${plain[0]})`
            : `routes[${i}].upstreamTls: needs https:// or wss:// upstreams (${plain.join(', ')} ${plain.length === 1 ? 'is' : 'are'} not)`,
        );
      if ((upstreamTls.cert === undefined) !== (upstreamTls.key === undefined)) problems.push(`routes[${i}].upstreamTls: cert and key go together`);
    }
    if (config.tls === undefined) {
      if (route.hsts !== undefined && route.hsts !== false) problems.push(`routes[${i}].hsts: needs a tls listener (HSTS is sent on HTTPS responses only)`);
      if (route.redirectHttp === true) problems.push(`routes[${i}].redirectHttp: needs a tls listener to redirect to`);
    }
    const limit = route.rateLimit;
    if (limit !== undefined) {
      if (limit.burst !== undefined && limit.burst > limit.requests)
        problems.push(`routes[${i}].rateLimit.burst: ${limit.burst} is more than requests (${limit.requests}); the window would never let it through`);
      if (limit.store === 'redis' && config.redis === undefined) problems.push(`routes[${i}].rateLimit.store: 'redis' needs a top-level redis: { url }`);
      if (limit.onStoreDown !== undefined && limit.store !== 'redis') problems.push(`routes[${i}].rateLimit.onStoreDown: only applies with store: 'redis'`);
      if (typeof limit.key === 'object' && 'claim' in limit.key && !hasJwt(route.auth))
        problems.push(`routes[${i}].rateLimit.key: a claim key needs jwt in the route's auth`);
    }
    const hosts = Array.isArray(route.host) ? route.host : [route.host];
    for (const host of hosts) {
      // Prefixes match without ASCII case (router/table.ts), so `/API` and `/api` are one.
      const key = `${host.toLowerCase().replace(/\.$/, '')} ${normalizePath(route.path).toLowerCase()}`;
      const first = seen.get(key);
      if (first !== undefined) problems.push(`routes[${i}].host: ${host} with path ${normalizePath(route.path)} is already routed by routes[${first}]`);
      else seen.set(key, i);
    }
  });
  return problems;
}

/** Every origin a route's `upstream` names, as written, in order. */
export function upstreamOrigins(upstream: Route['upstream']): string[] {
  if (typeof upstream === 'string') return [upstream];
  if (Array.isArray(upstream)) return upstream;
  return upstream.targets.map((target) => (typeof target === 'string' ? target : target.url));
}

/** The origin requests go to (`ws:` is `http:`), the identity of an upstream within a route. */
export function compileOrigin(value: string): string {
  const url = new URL(value);
  if (url.protocol === 'ws:') return `http://${url.host}`;
  if (url.protocol === 'wss:') return `https://${url.host}`;
  return url.origin;
}

/** `/api/` -> `/api`; undefined -> `/`. */
export function normalizePath(path: string | undefined): string {
  if (!path || path === '/') return '/';
  return path.replace(/\/+$/, '') || '/';
}
