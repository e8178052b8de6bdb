// Generators of request byte streams for the differential fuzzer: a grammar of valid HTTP/1.x
// requests, the framing mutations of issue 10 applied to one of them, random pipelining and
// random splits into socket reads. Produces bytes and a description; judges nothing.
import fc from 'fast-check';

/** One line (or data run) of a message, kept apart so a mutation can target it by role. */
export interface Piece {
  readonly role: 'request-line' | 'field' | 'head-end' | 'body' | 'chunk-size' | 'chunk-data' | 'last-chunk' | 'trailer' | 'trailer-end';
  text: string;
  /** The line end after `text` ('' for data). */
  eol: string;
}

export interface FuzzRequest {
  pieces: Piece[];
  /** Which mutation was applied ('valid' for none), for the counts and the record. */
  mutation: string;
}

/** One fuzz input: what to send and how it is cut into reads. */
export interface RequestInput {
  /** The whole stream, latin1 (one char per byte). */
  readonly bytes: string;
  /** Read boundaries: offsets into `bytes`, ascending. */
  readonly cuts: number[];
  /** The mutations of each request, in order. */
  readonly mutations: string[];
}

export const serialise = (pieces: readonly Piece[]): string => pieces.map((p) => p.text + p.eol).join('');

/** The reads of an input: `bytes` cut at `cuts`. */
export function segmentsOf(input: { bytes: string; cuts: readonly number[] }): Buffer[] {
  const all = Buffer.from(input.bytes, 'latin1');
  const out: Buffer[] = [];
  let from = 0;
  for (const cut of input.cuts) {
    if (cut <= from || cut >= all.byteLength) continue;
    out.push(all.subarray(from, cut));
    from = cut;
  }
  out.push(all.subarray(from));
  return out.filter((b) => b.byteLength > 0);
}

// ---- the grammar of valid requests -------------------------------------------------------

const TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const token = (max = 12) => fc.string({ unit: fc.constantFrom(...TCHAR), minLength: 1, maxLength: max });

// Known methods (llhttp's list includes them all), plus tokens llhttp does not know.
const method = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS') },
  { weight: 2, arbitrary: fc.constantFrom('PROPFIND', 'M-SEARCH', 'QUERY', 'PURGE', 'SOURCE', 'LINK', 'REPORT', 'MKCOL', 'TRACE') },
  { weight: 1, arbitrary: fc.constantFrom('get', 'Post', 'FOO', 'X-METHOD', 'G', 'PRI', 'GETS') },
  { weight: 1, arbitrary: token(10) },
);

const PCHAR = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@";
const pctEscape = fc.constantFrom('%20', '%2f', '%2F', '%00', '%25', '%2e', '%5c', '%zz', '%', '%e2%82%ac');
const segment = fc.array(
  fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...PCHAR) },
    { weight: 1, arbitrary: pctEscape },
    { weight: 1, arbitrary: fc.constantFrom('..', '.', '//') },
  ),
  {
    maxLength: 8,
  },
);
// Visible ASCII that RFC 3986 does not allow raw but some parsers take.
const oddTargetChar = fc.constantFrom('"', '<', '>', '{', '}', '|', '\\', '^', '`', '[', ']', '#');
const target = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .tuple(
        fc.array(
          segment.map((s) => s.join('')),
          { minLength: 1, maxLength: 4 },
        ),
        fc.option(fc.string({ unit: fc.constantFrom(...PCHAR, '/', '?'), maxLength: 12 })),
      )
      .map(([segs, q]) => `/${segs.join('/')}${q === null ? '' : `?${q}`}`),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        segment.map((s) => s.join('')),
        oddTargetChar,
      )
      .map(([s, c]) => `/${s}${c}`),
  },
  { weight: 1, arbitrary: fc.constantFrom('*', 'http://h.test/x', '//x', '/?', '/#f') },
);

const FIELD_NAMES = [
  'Host',
  'Accept',
  'User-Agent',
  'X-Trace',
  'Cookie',
  'Content-Type',
  'Accept-Encoding',
  'X-Forwarded-For',
  'Via',
  'If-None-Match',
  'x_under',
  'TE',
  'Trailer',
];
const fieldName = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...FIELD_NAMES) }, { weight: 1, arbitrary: token(16) });
const VCHAR = Array.from({ length: 94 }, (_, i) => String.fromCharCode(33 + i)).join('');
const fieldValue = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: fc.constantFrom(...VCHAR, ' '), maxLength: 24 }).map((v) => v.trim()) },
  // obs-text: bytes 0x80-0xff are allowed in values (RFC 9110 §5.5)
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...VCHAR, '\t', '\xe9', '\xff', '\x80'), maxLength: 12 }).map((v) => v.trim()) },
  // whitespace around a value is not part of it
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(' ', '\t', '  ', ''), token(8), fc.constantFrom(' ', '\t', '')).map(([a, v, b]) => `${a}${v}${b}`) },
);
const field = fc.tuple(fieldName, fieldValue);

const bodyBytes = fc.string({ unit: fc.constantFrom('a', 'b', 'Z', '0', '\r', '\n', ' ', '\x00', '\xff', 'G', 'E', 'T', '/'), maxLength: 40 });
const chunkExt = fc.oneof(
  { weight: 4, arbitrary: fc.constant('') },
  {
    weight: 1,
    arbitrary: fc.tuple(token(6), fc.option(fc.oneof(token(6), fc.constantFrom('"q v"', '"a\\"b"')))).map(([n, v]) => `;${n}${v === null ? '' : `=${v}`}`),
  },
  { weight: 1, arbitrary: fc.constantFrom(' ;a=b', '\t;a', ';a=b;c', '; a = b') },
);

type Body =
  | { kind: 'none' }
  | { kind: 'length'; data: string }
  | { kind: 'chunked'; chunks: { data: string; ext: string; upper: boolean }[]; lastExt: string; trailers: [string, string][] };

const body: fc.Arbitrary<Body> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 3, arbitrary: bodyBytes.map((data) => ({ kind: 'length' as const, data })) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('chunked' as const),
      chunks: fc.array(fc.record({ data: bodyBytes.filter((d) => d.length > 0), ext: chunkExt, upper: fc.boolean() }), { maxLength: 4 }),
      lastExt: chunkExt,
      trailers: fc.array(field, { maxLength: 2 }),
    }),
  },
);

const request = fc.record({
  method,
  target,
  version: fc.oneof({ weight: 5, arbitrary: fc.constant('HTTP/1.1') }, { weight: 1, arbitrary: fc.constant('HTTP/1.0') }),
  host: fc.option(fc.constantFrom('h.test', 'h.test:8080', 'H.TEST', '127.0.0.1'), { nil: null, freq: 6 }),
  fields: fc.array(field, { maxLength: 5 }),
  connection: fc.constantFrom(null, null, null, 'close', 'keep-alive', 'Keep-Alive, x-hop'),
  expect: fc.constantFrom(null, null, null, null, null, null, '100-continue'),
  body,
});

type Grammar = typeof request extends fc.Arbitrary<infer T> ? T : never;

/** The pieces of a valid request. */
function build(r: Grammar): Piece[] {
  const pieces: Piece[] = [{ role: 'request-line', text: `${r.method} ${r.target} ${r.version}`, eol: '\r\n' }];
  const add = (name: string, value: string) => pieces.push({ role: 'field', text: `${name}: ${value}`, eol: '\r\n' });
  if (r.host !== null) add('Host', r.host);
  for (const [name, value] of r.fields) {
    // Framing fields come from the body and the mutations only.
    if (/^(content-length|transfer-encoding|connection|expect|host|upgrade)$/i.test(name)) continue;
    add(name, value);
  }
  if (r.connection !== null) add('Connection', r.connection);
  if (r.expect !== null && r.body.kind !== 'none') add('Expect', r.expect);
  const b = r.body;
  if (b.kind === 'length') add('Content-Length', String(b.data.length));
  // Chunked is HTTP/1.1 only: on 1.0 a chunked body is a mutation (te-http10).
  const chunked = b.kind === 'chunked' && r.version === 'HTTP/1.1';
  if (chunked) add('Transfer-Encoding', 'chunked');
  pieces.push({ role: 'head-end', text: '', eol: '\r\n' });
  if (b.kind === 'length' && b.data.length > 0) pieces.push({ role: 'body', text: b.data, eol: '' });
  if (chunked) {
    for (const c of b.chunks) {
      const hex = c.data.length.toString(16);
      pieces.push({ role: 'chunk-size', text: `${c.upper ? hex.toUpperCase() : hex}${c.ext}`, eol: '\r\n' });
      pieces.push({ role: 'chunk-data', text: c.data, eol: '\r\n' });
    }
    pieces.push({ role: 'last-chunk', text: `0${b.lastExt}`, eol: '\r\n' });
    for (const [name, value] of b.trailers) {
      if (/^(content-length|transfer-encoding|host)$/i.test(name)) continue;
      pieces.push({ role: 'trailer', text: `${name}: ${value}`, eol: '\r\n' });
    }
    pieces.push({ role: 'trailer-end', text: '', eol: '\r\n' });
  }
  return pieces;
}

// ---- mutations ----------------------------------------------------------------------------

/** The choices a mutation makes, from a seed that fast-check generates (and shrinks). */
export interface Rnd {
  /** An integer in [min, max]. */
  nextInt(min: number, max: number): number;
  nextBoolean(): boolean;
}

/** mulberry32: small, seedable, and the same bytes on every runtime. */
export function seeded(seed: number): Rnd {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { nextInt: (min, max) => min + Math.floor(next() * (max - min + 1)), nextBoolean: () => next() < 0.5 };
}

type Mutation = (pieces: Piece[], rnd: Rnd) => string;

const pick = <T>(rnd: Rnd, items: readonly T[]): T => items[rnd.nextInt(0, items.length - 1)] as T;
const headEnd = (pieces: Piece[]) => pieces.findIndex((p) => p.role === 'head-end');
const insertField = (pieces: Piece[], text: string, rnd: Rnd) => {
  const end = headEnd(pieces);
  pieces.splice(rnd.nextInt(1, end), 0, { role: 'field', text, eol: '\r\n' });
};
const fieldIndex = (pieces: Piece[], name: string) => pieces.findIndex((p) => p.role === 'field' && p.text.toLowerCase().startsWith(`${name}:`));
const hasChunked = (pieces: Piece[]) => pieces.some((p) => p.role === 'last-chunk');
const bodyLength = (pieces: Piece[]) => pieces.filter((p) => p.role === 'body').reduce((n, p) => n + p.text.length, 0);

/** Puts a chunked body after the head when the request has none, so TE mutations have one to frame. */
function ensureChunked(pieces: Piece[]): void {
  if (hasChunked(pieces)) {
    // Chunk mutations need a data chunk to work on.
    if (!pieces.some((p) => p.role === 'chunk-data'))
      pieces.splice(
        pieces.findIndex((p) => p.role === 'last-chunk'),
        0,
        { role: 'chunk-size', text: '3', eol: '\r\n' },
        { role: 'chunk-data', text: 'abc', eol: '\r\n' },
      );
    return;
  }
  const end = headEnd(pieces);
  pieces.splice(end + 1);
  const cl = fieldIndex(pieces, 'content-length');
  if (cl >= 0) pieces.splice(cl, 1);
  pieces.push(
    { role: 'chunk-size', text: '3', eol: '\r\n' },
    { role: 'chunk-data', text: 'abc', eol: '\r\n' },
    { role: 'last-chunk', text: '0', eol: '\r\n' },
    { role: 'trailer-end', text: '', eol: '\r\n' },
  );
}

const setTe = (pieces: Piece[], value: string, rnd: Rnd) => {
  ensureChunked(pieces);
  const te = fieldIndex(pieces, 'transfer-encoding');
  if (te >= 0) (pieces[te] as Piece).text = `Transfer-Encoding: ${value}`;
  else insertField(pieces, `Transfer-Encoding: ${value}`, rnd);
};

const MUTATIONS: Record<string, Mutation> = {
  'cl+te': (pieces, rnd) => {
    ensureChunked(pieces);
    if (fieldIndex(pieces, 'transfer-encoding') < 0) insertField(pieces, 'Transfer-Encoding: chunked', rnd);
    insertField(pieces, `Content-Length: ${pick(rnd, ['0', '3', '5', '12', '40'])}`, rnd);
    return 'cl+te';
  },
  'cl-variants': (pieces, rnd) => {
    const n = bodyLength(pieces);
    const value = pick(rnd, [
      `${n}, ${n + 1}`,
      `${n},${n}`,
      `+${n}`,
      `-${n}`,
      `0x${n.toString(16)}`,
      ` ${n} `,
      `0${n}`,
      `${n}a`,
      `${n} ${n}`,
      '',
      `${n}.0`,
      '1'.repeat(20),
      `${n}\t`,
    ]);
    const cl = fieldIndex(pieces, 'content-length');
    if (cl >= 0 && rnd.nextBoolean()) (pieces[cl] as Piece).text = `Content-Length: ${value}`;
    else if (cl >= 0) insertField(pieces, `Content-Length: ${pick(rnd, [String(n + 1), String(n), '0'])}`, rnd);
    else insertField(pieces, `Content-Length: ${value}`, rnd);
    return 'cl-variants';
  },
  'te-list': (pieces, rnd) => {
    const value = pick(rnd, [
      'gzip, chunked',
      'chunked, gzip',
      'identity',
      'chunked, chunked',
      'Chunked',
      'CHUNKED',
      ' chunked ',
      'chunked;q=1',
      'x-chunked',
      'chunked,',
      ',chunked',
      'gzip',
      'deflate, chunked',
      'chunk',
    ]);
    if (rnd.nextBoolean()) setTe(pieces, value, rnd);
    else {
      // Two fields, joined by every parser into a list.
      setTe(pieces, 'chunked', rnd);
      insertField(pieces, `Transfer-Encoding: ${pick(rnd, ['gzip', 'chunked', 'identity'])}`, rnd);
    }
    return 'te-list';
  },
  'te-http10': (pieces, rnd) => {
    const line = pieces[0] as Piece;
    line.text = line.text.replace(/HTTP\/1\.1$/, 'HTTP/1.0');
    setTe(pieces, 'chunked', rnd);
    if (rnd.nextBoolean()) insertField(pieces, 'Connection: keep-alive', rnd);
    return 'te-http10';
  },
  'obs-fold': (pieces, rnd) => {
    const fields = pieces.map((p, i) => (p.role === 'field' ? i : -1)).filter((i) => i >= 0);
    if (fields.length === 0 || rnd.nextBoolean()) {
      setTe(pieces, 'chunked', rnd);
      const te = fieldIndex(pieces, 'transfer-encoding');
      pieces.splice(te + 1, 0, { role: 'field', text: `${pick(rnd, [' ', '\t'])}${pick(rnd, ['chunked', 'gzip', 'x'])}`, eol: '\r\n' });
    } else pieces.splice(pick(rnd, fields) + 1, 0, { role: 'field', text: `${pick(rnd, [' ', '\t'])}folded`, eol: '\r\n' });
    return 'obs-fold';
  },
  'space-before-colon': (pieces, rnd) => {
    const name = pick(rnd, ['Transfer-Encoding', 'Content-Length', 'Host', 'X-A']);
    const ws = pick(rnd, [' ', '\t', '  ']);
    if (name === 'Transfer-Encoding') {
      setTe(pieces, 'chunked', rnd);
      const te = fieldIndex(pieces, 'transfer-encoding');
      (pieces[te] as Piece).text = `Transfer-Encoding${ws}: chunked`;
    } else insertField(pieces, `${name}${ws}: ${name === 'Content-Length' ? '3' : 'v'}`, rnd);
    return 'space-before-colon';
  },
  'bare-cr-lf': (pieces, rnd) => {
    const roles = pieces.map((p, i) => (p.eol !== '' ? i : -1)).filter((i) => i >= 0);
    const at = pick(rnd, roles);
    const piece = pieces[at] as Piece;
    const what = pick(rnd, ['\n', '\r', '\r\r\n', '\n\r']);
    if (rnd.nextBoolean()) piece.eol = what;
    else {
      // Inside the line: a request line, a field value, a chunk extension.
      const pos = rnd.nextInt(0, piece.text.length);
      piece.text = piece.text.slice(0, pos) + what + piece.text.slice(pos);
    }
    return `bare-cr-lf:${piece.role}`;
  },
  'chunk-size': (pieces, rnd) => {
    ensureChunked(pieces);
    const sizes = pieces.map((p, i) => (p.role === 'chunk-size' || p.role === 'last-chunk' ? i : -1)).filter((i) => i >= 0);
    const piece = pieces[pick(rnd, sizes)] as Piece;
    const semi = piece.text.indexOf(';');
    const hex = semi < 0 ? piece.text : piece.text.slice(0, semi);
    const ext = semi < 0 ? '' : piece.text.slice(semi);
    const value = pick(rnd, [
      `+${hex}`,
      `0x${hex}`,
      ` ${hex}`,
      `${hex} `,
      `${'0'.repeat(17)}${hex}`,
      `${'0'.repeat(14)}${hex}`,
      `-${hex}`,
      `${hex}\t`,
      `${hex}g`,
      '',
      'fffffffffffffffff',
      `${hex}=`,
    ]);
    piece.text = value + ext;
    return `chunk-size:${piece.role}`;
  },
  'chunk-ext': (pieces, rnd) => {
    ensureChunked(pieces);
    const sizes = pieces.map((p, i) => (p.role === 'chunk-size' || p.role === 'last-chunk' ? i : -1)).filter((i) => i >= 0);
    const piece = pieces[pick(rnd, sizes)] as Piece;
    piece.text += pick(rnd, [';a\rb', ';a\nb', ';a=\x00', ';\x7f', ';a="\r\n"', ';', ';=', '; ', ';a b', ';a=b c', `;${'x'.repeat(300)}`]);
    return 'chunk-ext';
  },
  'chunk-data-end': (pieces, rnd) => {
    ensureChunked(pieces);
    const data = pieces.filter((p) => p.role === 'chunk-data');
    const piece = pick(rnd, data);
    piece.eol = pick(rnd, ['\n', '\r', '', 'xx', ' \r\n', '\r\n\r\n']);
    if (rnd.nextBoolean()) piece.text = piece.text.slice(0, -1); // one byte short of its size
    return 'chunk-data-end';
  },
  trailer: (pieces, rnd) => {
    ensureChunked(pieces);
    const end = pieces.findIndex((p) => p.role === 'trailer-end');
    pieces.splice(end, 0, {
      role: 'trailer',
      text: pick(rnd, ['Content-Length: 5', 'X: a\x00b', 'no colon', ' folded', 'GET / HTTP/1.1', 'X : y', 'Transfer-Encoding: chunked']),
      eol: '\r\n',
    });
    return 'trailer';
  },
  nul: (pieces, rnd) => {
    const end = headEnd(pieces);
    const piece = pieces[rnd.nextInt(0, end)] as Piece;
    const pos = rnd.nextInt(0, piece.text.length);
    piece.text = `${piece.text.slice(0, pos)}\x00${piece.text.slice(pos)}`;
    return `nul:${piece.role}`;
  },
  'line-shape': (pieces, rnd) => {
    const line = pieces[0] as Piece;
    const [m, t, v] = line.text.split(' ');
    line.text = pick(rnd, [
      `${m}  ${t} ${v}`,
      `${m} ${t}  ${v}`,
      `${m}\t${t} ${v}`,
      `${m} ${t} ${v} `,
      ` ${m} ${t} ${v}`,
      `${m} ${t}`,
      `${m} ${t} HTTP/1.2`,
      `${m} ${t} HTTP/2.0`,
      `${m} ${t} http/1.1`,
      `${m} ${t} HTTP/1.10`,
      `${m} ${t} HTTP/01.1`,
      `${m} ${t}x y ${v}`,
    ]);
    return 'line-shape';
  },
  'leading-crlf': (pieces, rnd) => {
    (pieces[0] as Piece).text = pick(rnd, ['\r\n', '\r\n\r\n', '\n', ' ']) + (pieces[0] as Piece).text;
    return 'leading-crlf';
  },
  'byte-flip': (pieces, rnd) => {
    const piece = pick(rnd, pieces);
    const s = piece.text + piece.eol;
    if (s.length === 0) return 'byte-flip';
    const pos = rnd.nextInt(0, s.length - 1);
    const ch = String.fromCharCode(pick(rnd, [rnd.nextInt(0, 255), 0, 9, 10, 13, 32, 0x7f, 0x80, 0xff, 58, 59, 44]));
    const out = rnd.nextBoolean() ? s.slice(0, pos) + ch + s.slice(pos + 1) : s.slice(0, pos) + ch + s.slice(pos);
    piece.text = out;
    piece.eol = '';
    return `byte-flip:${piece.role}`;
  },
};

export const MUTATION_NAMES = Object.keys(MUTATIONS);

const mutated = (r: Grammar, name: string | null, seed: number): FuzzRequest => {
  const pieces = build(r);
  if (name === null) return { pieces, mutation: 'valid' };
  // The mutation's own choices come from a seeded generator: fast-check shrinks the seed and
  // the grammar, and the same seed always makes the same bytes.
  const rnd = seeded(seed);
  const mutation = (MUTATIONS[name] as Mutation)(pieces, rnd);
  return { pieces, mutation };
};

/** One request: valid from the grammar, or with one mutation. */
export const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc
  .tuple(request, fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 4, arbitrary: fc.constantFrom(...MUTATION_NAMES) }), fc.integer())
  .map(([r, name, seed]) => mutated(r, name, seed));

/** A connection's input: 1-4 pipelined requests, cut into reads at random places. */
export const requestInput: fc.Arbitrary<RequestInput> = fc.array(fuzzRequest, { minLength: 1, maxLength: 4 }).chain((requests) => {
  const bytes = requests.map((r) => serialise(r.pieces)).join('');
  const mutations = requests.map((r) => r.mutation);
  const cuts = fc.oneof(
    { weight: 3, arbitrary: fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, bytes.length - 1) }), { maxLength: 6 }) },
    { weight: 1, arbitrary: fc.constant(Array.from({ length: Math.min(bytes.length, 400) }, (_, i) => i + 1)) },
    { weight: 2, arbitrary: fc.constant([] as number[]) },
  );
  return cuts.map((c) => ({ bytes, cuts: [...c].sort((a, b) => a - b), mutations }));
});
