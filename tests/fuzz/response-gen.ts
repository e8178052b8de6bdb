// Generators of upstream response byte streams for the response half of the fuzzer: status
// lines, 1xx before the final answer, bodiless statuses and HEAD, Content-Length (lists too),
// chunked, close-delimited, TE beside CL, and line-level mutations. Bytes only; judges nothing.
import fc from 'fast-check';
import { type Rnd, seeded } from './request-gen.ts';

export interface ResponseInput {
  /** The whole stream the upstream sends before it closes, latin1. */
  readonly bytes: string;
  readonly cuts: number[];
  /** The request method both clients use. */
  readonly method: 'GET' | 'HEAD';
  readonly mutation: string;
}

const VCHAR = Array.from({ length: 94 }, (_, i) => String.fromCharCode(33 + i)).join('');
const body = fc.string({ unit: fc.constantFrom('a', 'b', '\r', '\n', '0', 'H', 'T', 'P', ' ', '\x00'), maxLength: 30 });
const status = fc.constantFrom(200, 200, 200, 201, 204, 205, 206, 301, 304, 404, 500, 599);
const interim = fc.array(
  fc.constantFrom('HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n', 'HTTP/1.1 102 Processing\r\n\r\n'),
  { maxLength: 2 },
);
const field = fc.tuple(
  fc.constantFrom('X-A', 'Content-Type', 'Cache-Control', 'Set-Cookie', 'ETag', 'Keep-Alive'),
  fc.string({ unit: fc.constantFrom(...VCHAR, ' '), maxLength: 16 }).map((s) => s.trim()),
);

const framing = fc.constantFrom('length', 'length', 'chunked', 'chunked', 'close', 'none');

const response = fc.record({
  version: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0'),
  status,
  reason: fc.constantFrom('OK', '', 'Fine Thing', 'caf\xe9'),
  interim,
  fields: fc.array(field, { maxLength: 3 }),
  framing,
  body,
  chunks: fc.array(
    body.filter((b) => b.length > 0),
    { maxLength: 3 },
  ),
  connection: fc.constantFrom(null, null, 'close', 'keep-alive'),
  method: fc.constantFrom('GET' as const, 'GET' as const, 'HEAD' as const),
});

type Shape = typeof response extends fc.Arbitrary<infer T> ? T : never;

interface Lines {
  head: string[];
  body: string;
}

function build(r: Shape): Lines {
  const head = [`${r.version} ${r.status}${r.reason === '' ? '' : ` ${r.reason}`}`];
  for (const [name, value] of r.fields) head.push(`${name}: ${value}`);
  if (r.connection !== null) head.push(`Connection: ${r.connection}`);
  let out = '';
  if (r.framing === 'length') {
    head.push(`Content-Length: ${r.body.length}`);
    out = r.body;
  } else if (r.framing === 'chunked') {
    head.push('Transfer-Encoding: chunked');
    out = `${r.chunks.map((c) => `${c.length.toString(16)}\r\n${c}\r\n`).join('')}0\r\n\r\n`;
  } else if (r.framing === 'close') out = r.body;
  return { head, body: out };
}

const pick = <T>(rnd: Rnd, items: readonly T[]): T => items[rnd.nextInt(0, items.length - 1)] as T;

const MUTATIONS: Record<string, (l: Lines, rnd: Rnd) => void> = {
  'cl-list': (l, rnd) => {
    const n = l.body.length;
    l.head = l.head.filter((h) => !/^(content-length|transfer-encoding):/i.test(h));
    l.head.push(
      ...pick(rnd, [
        [`Content-Length: ${n}, ${n}`],
        [`Content-Length: ${n}`, `Content-Length: ${n}`],
        [`Content-Length: ${n}, ${n + 1}`],
        [`Content-Length: +${n}`],
        [`Content-Length: ${n} `],
        [`Content-Length: 0x${n}`],
        [`Content-Length: -1`],
      ]),
    );
  },
  'te+cl': (l, rnd) => {
    if (!l.head.some((h) => /^transfer-encoding/i.test(h))) {
      l.head = l.head.filter((h) => !/^content-length:/i.test(h));
      l.head.push('Transfer-Encoding: chunked');
      l.body = `${l.body.length > 0 ? `${l.body.length.toString(16)}\r\n${l.body}\r\n` : ''}0\r\n\r\n`;
    }
    l.head.push(`Content-Length: ${pick(rnd, [0, 3, l.body.length, 100])}`);
  },
  'te-other': (l, rnd) => {
    l.head = l.head.filter((h) => !/^(content-length|transfer-encoding):/i.test(h));
    l.head.push(`Transfer-Encoding: ${pick(rnd, ['gzip, chunked', 'chunked, gzip', 'identity', 'Chunked', 'gzip'])}`);
    if (!/^[0-9a-f]+\r\n/.test(l.body)) l.body = `${l.body.length.toString(16)}\r\n${l.body}\r\n0\r\n\r\n`;
  },
  'status-line': (l, rnd) => {
    const line = l.head[0] as string;
    l.head[0] = pick(rnd, [
      line.replace(' ', '  '),
      line.replace('HTTP/1.', 'HTTP/2.'),
      line.replace(/ \d{3}/, ' 20'),
      line.replace(/ (\d{3})/, ' $10'),
      `${line} `,
      line.replace('HTTP', 'http'),
      line.replace(/ (\d{3})/, ' 099'),
      'HTTP/1.1 200OK',
      'HTTP/1.1',
      line.replace('HTTP/1.', 'HTTP/1.2'.slice(0, 7)),
    ]);
  },
  'bare-lf': (l, rnd) => {
    const at = rnd.nextInt(0, l.head.length - 1);
    l.head[at] = `${l.head[at]}${pick(rnd, ['\n', '\r', '\nX-B: 1'])}`;
  },
  'chunk-size': (l, rnd) => {
    if (!/^[0-9a-f]+\r\n/.test(l.body)) return;
    l.body = l.body.replace(/^([0-9a-f]+)/, (hex) =>
      pick(rnd, [`+${hex}`, `0x${hex}`, `${hex} `, `${'0'.repeat(17)}${hex}`, `${hex};a=b`, `${hex}\n`, `-${hex}`]),
    );
  },
  'space-colon': (l) => {
    const at = l.head.findIndex((h) => /^(content-length|transfer-encoding):/i.test(h));
    if (at >= 0) l.head[at] = (l.head[at] as string).replace(':', ' :');
    else l.head.push('X-A : b');
  },
  'obs-fold': (l, rnd) => {
    l.head.splice(rnd.nextInt(1, l.head.length), 0, pick(rnd, [' folded', '\tx']));
  },
  nul: (l, rnd) => {
    const at = rnd.nextInt(0, l.head.length - 1);
    const line = l.head[at] as string;
    const pos = rnd.nextInt(0, line.length);
    l.head[at] = `${line.slice(0, pos)}\x00${line.slice(pos)}`;
  },
  'extra-bytes': (l) => {
    l.body += 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n';
  },
  truncate: (l, rnd) => {
    l.body = l.body.slice(0, rnd.nextInt(0, Math.max(0, l.body.length - 1)));
  },
};
const NAMES = Object.keys(MUTATIONS);

export const responseInput: fc.Arbitrary<ResponseInput> = fc
  .tuple(response, fc.option(fc.constantFrom(...NAMES), { freq: 3 }), fc.integer())
  .chain(([r, name, seed]) => {
    const lines = build(r);
    if (name !== null) (MUTATIONS[name] as (l: Lines, rnd: Rnd) => void)(lines, seeded(seed));
    const bytes = `${r.interim.join('')}${lines.head.join('\r\n')}\r\n\r\n${lines.body}`;
    return fc
      .uniqueArray(fc.integer({ min: 1, max: Math.max(1, bytes.length - 1) }), { maxLength: 4 })
      .map((cuts) => ({ bytes, cuts: cuts.sort((a, b) => a - b), method: r.method, mutation: name ?? 'valid' }));
  });
