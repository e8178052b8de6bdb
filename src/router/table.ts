// The routing table: compiled once from the config, then a request is routed with one hash
// lookup for exact hosts, one per label for wildcards, and a short scan of path prefixes.
// It knows nothing about HTTP; the app turns a miss into a 421.

/** A route's place in the table: the part of a route the matcher needs. */
export interface Matchable {
  /** Host patterns as written (`"a.com"`, `"*.a.com"`, `"*"`). */
  readonly hosts: readonly string[];
  /** Normalised path prefix, `/` for all paths. */
  readonly prefix: string;
}

export interface RouteTable<R extends Matchable> {
  /** The route for a normalised host and a raw request target (path and query), or undefined. */
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
    (list ?? []).map((route) => ({ route, prefix: route.prefix })).sort((a, b) => b.prefix.length - a.prefix.length);

  // Suffix chain of a name: "a.b.com" -> [".b.com", ".com"]; most specific first.
  const suffixesOf = (name: string): string[] => {
    const out: string[] = [];
    for (let i = name.indexOf('.'); i !== -1; i = name.indexOf('.', i + 1)) out.push(name.slice(i));
    return out;
  };
  const wildcardsFor = (name: string): Candidate<R>[] => suffixesOf(name).flatMap((suffix) => sortLevel(byPattern.get(`*${suffix}`)));

  const catchAll = sortLevel(byPattern.get('*'));
  const exact = new Map<string, Candidate<R>[]>();
  const suffix = new Map<string, Candidate<R>[]>();
  for (const [pattern, list] of byPattern) {
    if (pattern === '*') continue;
    if (pattern.startsWith('*.')) {
      const name = pattern.slice(1); // ".b.com"
      suffix.set(name, [...sortLevel(list), ...wildcardsFor(name.slice(1)), ...catchAll]);
    } else {
      exact.set(pattern, [...sortLevel(list), ...wildcardsFor(pattern), ...catchAll]);
    }
  }
  const hasSuffix = suffix.size > 0;

  const pick = (candidates: Candidate<R>[], target: string): R | undefined => {
    for (const c of candidates) if (prefixMatches(c.prefix, target)) return c.route;
    return undefined;
  };

  return {
    match(host, target) {
      const own = exact.get(host);
      if (own) return pick(own, target);
      if (hasSuffix) {
        for (let i = host.indexOf('.'); i !== -1; i = host.indexOf('.', i + 1)) {
          const wild = suffix.get(host.slice(i));
          if (wild) return pick(wild, target);
        }
      }
      return pick(catchAll, target);
    },
  };
}

/** `/api` matches `/api`, `/api/x`, `/api?q`, not `/apix`. */
export function prefixMatches(prefix: string, target: string): boolean {
  if (prefix === '/') return true;
  if (!target.startsWith(prefix)) return false;
  if (target.length === prefix.length) return true;
  const next = target.charCodeAt(prefix.length);
  return next === 47 /* / */ || next === 63 /* ? */;
}
