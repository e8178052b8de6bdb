// What one side of the request fuzzer did with a byte stream: the requests its app saw (exact
// line, fields, body) and where it refused. Shared by both sides and the comparison; holds no
// parsing of its own beyond the field normalisation both sides go through.

/** One request as an app saw it. */
export interface SeenRequest {
  readonly method: string;
  /** The request target as sent (`Bindings.line.target` / node's `req.url`). */
  readonly target: string;
  /** `"1.1"`, `"1.0"` (`"0.9"` from node). */
  readonly version: string;
  /** Normalised fields (see `normaliseFields`). */
  readonly fields: [string, string][];
  /** Body bytes read so far, latin1. */
  body: string;
  /** The body was read to its end (false: still waiting, or it broke). */
  complete: boolean;
}

/** A side's refusal: our engine's error status, or node's clientError code. */
export interface Refusal {
  /** `400`, `501`, `431`... from the engine; `HPE_INVALID_METHOD`... from llhttp. */
  readonly code: string;
  readonly reason: string;
  /** Requests the app had seen when it was refused. */
  readonly after: number;
}

export interface Outcome {
  readonly requests: SeenRequest[];
  refusal: Refusal | null;
  /** The server ended or cut the connection before we tore it down. */
  closed: boolean;
  /** The raw bytes the server wrote (latin1, Date lines removed, cut at 2 KiB), for the record. */
  output: string;
  /** Events in order, for the "nothing after a refusal" check: `r` request seen, `x` refusal. */
  readonly order: string[];
}

export const emptyOutcome = (): Outcome => ({ requests: [], refusal: null, closed: false, output: '', order: [] });

/**
 * Fields as a fetch `Headers` iterates them: names lowercased, repeated names joined with
 * ", " in order, then sorted by name (set-cookie kept apart). The engine hands the app a
 * Headers object, so its own order is already gone; node's rawHeaders are brought to the same
 * form.
 */
export function normaliseFields(pairs: Iterable<[string, string]>): [string, string][] {
  const joined = new Map<string, string>();
  const cookies: string[] = [];
  for (const [rawName, value] of pairs) {
    const name = rawName.toLowerCase();
    if (name === 'set-cookie') cookies.push(value);
    // undici's Headers joins Cookie with "; " (RFC 9110 §5.3 allows a field-specific join).
    else joined.set(name, joined.has(name) ? `${joined.get(name)}${name === 'cookie' ? '; ' : ', '}${value}` : value);
  }
  // A joined empty value leaves a trailing ", " that Request's copy of the Headers trims: trim
  // on both sides, so only parsing differences remain.
  const out: [string, string][] = [...joined].map(([name, value]) => [name, value.replace(/^[ \t]+|[ \t]+$/g, '')]);
  for (const cookie of cookies) out.push(['set-cookie', cookie]);
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** The server's output as kept in a record: Date lines dropped (they differ every run), cut short. */
export const recordOutput = (bytes: Buffer): string =>
  bytes
    .toString('latin1')
    .replace(/\r\ndate: [^\r]*/gi, '')
    .slice(0, 2048);

/** Lets the event loop run `turns` times (timers and I/O callbacks included). */
export const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

/**
 * Waits until `progress()` stops changing for `still` consecutive turns (at most `max` turns):
 * both sides are in-process, so "nothing moved for a few turns" means they wait for bytes.
 */
export async function quiesce(progress: () => number, still = 4, max = 200): Promise<void> {
  let last = progress();
  let unchanged = 0;
  for (let i = 0; i < max && unchanged < still; i++) {
    await turns(1);
    const now = progress();
    if (now === last) unchanged++;
    else {
      unchanged = 0;
      last = now;
    }
  }
}
