// The routing table: compiled once from the config, then a request is routed with one hash
// lookup for exact hosts, one per label for wildcards, and a short scan of path prefixes.
// It knows nothing about HTTP; the app turns a miss into a 421.

/** A route's place in the table: the part of a route the matcher needs. */
export interface Matchable {
  /** Host patterns as written (`"a.com"`, `"*.a.com"`, `"*"`). */
  readonly hosts: readonly string[];
  /** Path prefix in canonical form (router/path.ts), no trailing slash; `/` for all paths. */
  readonly prefix: string;
}

/** The routes that can serve one host, most specific first. */
export interface HostRoutes<R extends Matchable> {
  /**
   * True when a path decides which of them serves a request (a reachable route has a `path`):
   * targets must then be canonical (`canonicalTarget` in path.ts), for every route of the host,
   * the catch-all included, so that `/api%2Fx` cannot fall past `/api` to an upstream that
   * decodes it.
   */
  readonly pathsDecide: boolean;
  /** The route for a target in the form routing compares, or undefined. */
  match(target: string): R | undefined;
}

export interface RouteTable<R extends Matchable> {
  /** The routes for a normalised host, or undefined when none (and no `*`) can serve it. */
  forHost(host: string): HostRoutes<R> | undefined;
  /** The route for a normalised host and a request target, or undefined. */
  match(host: string, target: string): R | undefined;
}

interface Candidate<R> {
  readonly route: R;
  readonly prefix: string;
}

/**
 * Builds the table. For every pattern the candidate list holds its own routes and those of
 * every less specific pattern that also covers it (`*.b.com` then `*.com` then `*`), longest
 * prefix first within each level: the most specific host with a matching path wins, so a path
 * route under `*` still serves an exact host that has no route for that path.
 */
export function compileRouteTable<R extends Matchable>(routes: readonly R[]): RouteTable<R> {
  const byPattern = new Map<string, R[]>();
  for (const route of routes) {
    for (const raw of route.hosts) {
      const pattern = raw === '*' ? '*' : raw.toLowerCase().replace(/\.$/, '');
      const list = byPattern.get(pattern) ?? [];
      list.push(route);
      byPattern.set(pattern, list);
    }
  }
  const sortLevel = (list: R[] | undefined): Candidate<R>[] =>
    (list ?? []).map((route) => ({ route, prefix: route.prefix.toLowerCase() })).sort((a, b) => b.prefix.length - a.prefix.length);

  // Suffix chain of a name: "a.b.com" -> [".b.com", ".com"]; most specific first.
  const suffixesOf = (name: string): string[] => {
    const out: string[] = [];
    for (let i = name.indexOf('.'); i !== -1; i = name.indexOf('.', i + 1)) out.push(name.slice(i));
    return out;
  };
  const wildcardsFor = (name: string): Candidate<R>[] => suffixesOf(name).flatMap((suffix) => sortLevel(byPattern.get(`*${suffix}`)));

  const catchAll = hostRoutes(sortLevel(byPattern.get('*')));
  const exact = new Map<string, HostRoutes<R>>();
  const suffix = new Map<string, HostRoutes<R>>();
  for (const [pattern, list] of byPattern) {
    if (pattern === '*') continue;
    if (pattern.startsWith('*.')) {
      const name = pattern.slice(1); // ".b.com"
      suffix.set(name, hostRoutes([...sortLevel(list), ...wildcardsFor(name.slice(1)), ...catchAll.candidates]));
    } else {
      exact.set(pattern, hostRoutes([...sortLevel(list), ...wildcardsFor(pattern), ...catchAll.candidates]));
    }
  }
  const hasSuffix = suffix.size > 0;
  const none = catchAll.candidates.length === 0 ? undefined : catchAll;

  const forHost = (host: string): HostRoutes<R> | undefined => {
    const own = exact.get(host);
    if (own) return own;
    if (hasSuffix) {
      for (let i = host.indexOf('.'); i !== -1; i = host.indexOf('.', i + 1)) {
        const wild = suffix.get(host.slice(i));
        if (wild) return wild;
      }
    }
    return none;
  };
  return {
    forHost,
    match: (host, target) => forHost(host)?.match(target),
  };
}

function hostRoutes<R extends Matchable>(candidates: Candidate<R>[]): HostRoutes<R> & { readonly candidates: Candidate<R>[] } {
  // Candidates after the first `/` are never reached; only the ones before it make paths decide.
  const reachable = candidates.findIndex((c) => c.prefix === '/');
  const pathsDecide = (reachable < 0 ? candidates : candidates.slice(0, reachable)).length > 0;
  return {
    candidates,
    pathsDecide,
    match(target) {
      for (const c of candidates) if (prefixMatches(c.prefix, target)) return c.route;
      return undefined;
    },
  };
}

/**
 * `/api` matches `/api`, `/api/x`, `/api?q`, not `/apix`; ASCII letters in either case
 * (`/API/x`), since Express, ASP.NET Core and IIS route without case by default and a rule must
 * not be skipped by `/Admin`. `prefix` is lowercase (the table lowercases it once).
 */
export function prefixMatches(prefix: string, target: string): boolean {
  if (prefix === '/') return true;
  const n = prefix.length;
  if (target.length < n) return false;
  if (!target.startsWith(prefix)) {
    for (let i = 1; i < n; i++) {
      const t = target.charCodeAt(i);
      // Fold A-Z to a-z; every other character must be equal.
      if ((t >= 65 && t <= 90 ? t + 32 : t) !== prefix.charCodeAt(i)) return false;
    }
  }
  if (target.length === n) return true;
  const next = target.charCodeAt(n);
  return next === 47 /* / */ || next === 63 /* ? */;
}
