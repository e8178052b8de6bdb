// The request smuggling payloads of issue 10 and the tools to run them: a recording upstream
// that frames what arrives itself, and a raw client that writes segments and reads statuses.
// Used by smuggling.test.ts (the three runtimes, asserted) and smuggling-reference.ts (the same
// payloads through nginx, for comparison: `node --import tsx tests/e2e/smuggling-reference.ts`).
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseResponses } from '../support/raw-http.ts';
import type { Runtime } from './harness.ts';

/** One request as the recording upstream read it off the wire. */
export interface Received {
  line: string;
  head: string;
  body: string;
}

/** A raw upstream that frames requests itself (Content-Length or chunked), records each, and answers 200 "ok". */
export async function recordingUpstream(): Promise<{ port: number; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        const lower = head.toLowerCase();
        let bodyEnd = end + 4;
        let body = '';
        const cl = /\r\ncontent-length: *(\d+)/.exec(lower);
        if (cl) {
          bodyEnd += Number(cl[1]);
          if (buf.length < bodyEnd) return;
          body = buf.slice(end + 4, bodyEnd);
        } else if (/\r\ntransfer-encoding: *chunked/.test(lower)) {
          // The proxy's own chunked encoding: size lines in hex, no extensions, no trailers.
          let at = end + 4;
          for (;;) {
            const eol = buf.indexOf('\r\n', at);
            if (eol < 0) return;
            const size = Number.parseInt(buf.slice(at, eol), 16);
            if (size === 0) {
              if (buf.length < eol + 4) return;
              bodyEnd = eol + 4;
              break;
            }
            if (buf.length < eol + 2 + size + 2) return;
            body += buf.slice(eol + 2, eol + 2 + size);
            at = eol + 2 + size + 2;
          }
        }
        received.push({ line: head.slice(0, head.indexOf('\r\n')), head, body });
        buf = buf.slice(bodyEnd);
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    received,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

export interface Outcome {
  statuses: number[];
  closed: boolean;
}

/**
 * Writes `segments` (a pause between them), then waits until the proxy closes the connection
 * or 1.5 s pass without a byte. `closed` is whether the proxy closed it within that time.
 */
export async function exchange(port: number, segments: string[], gapMs = 150, methods: string[] = []): Promise<Outcome> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  const chunks: Buffer[] = [];
  let closed = false;
  let last = Date.now();
  socket.on('data', (c) => {
    chunks.push(c);
    last = Date.now();
  });
  socket.on('error', () => {});
  const ended = new Promise<void>((r) => {
    socket.on('end', () => {
      closed = true;
      r();
    });
    socket.on('close', () => {
      closed = true;
      r();
    });
  });
  await new Promise<void>((r, j) => {
    socket.once('connect', r);
    socket.once('error', j);
  });
  for (const [i, segment] of segments.entries()) {
    if (i > 0) await sleep(gapMs);
    socket.write(Buffer.from(segment, 'latin1'));
  }
  last = Date.now();
  const deadline = Date.now() + 6000;
  while (!closed && Date.now() - last < 1500 && Date.now() < deadline) await Promise.race([ended, sleep(50)]);
  socket.destroy();
  const statuses = parseResponses(Buffer.concat(chunks), methods, true).responses.map((r) => r.status);
  return { statuses, closed };
}

export const HOST = 'Host: s.test\r\n';
export const SMUGGLED = `GET /smuggled HTTP/1.1\r\n${HOST}\r\n`;
export const post = (fields: string, body = '') => `POST /p HTTP/1.1\r\n${HOST}${fields}\r\n${body}`;
export const chunked = (body: string) => post('Transfer-Encoding: chunked\r\n', body);

export interface Case {
  family: string;
  name: string;
  /** What is written; a pipelined `GET /smuggled` follows the last segment. */
  segments: string[];
  status: number;
  /** What the upstream receives when it is not nothing (request line and body), per runtime. */
  upstream?: Partial<Record<Runtime, { line: string; body: string }[]>>;
  /** Statuses per runtime where they differ from [status]. */
  statuses?: Partial<Record<Runtime, number[]>>;
  /** Whether the connection closes, per runtime, where it does not. */
  open?: Runtime[];
}

export const cases: Case[] = [
  // ---- Content-Length and Transfer-Encoding together, and Content-Length forms
  {
    family: 'CL and TE',
    name: 'Content-Length then Transfer-Encoding',
    segments: [post('Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n')],
    status: 400,
  },
  {
    family: 'CL and TE',
    name: 'Transfer-Encoding then Content-Length',
    segments: [post('Transfer-Encoding: chunked\r\nContent-Length: 5\r\n', '0\r\n\r\n')],
    status: 400,
  },
  { family: 'CL and TE', name: 'Content-Length 0 with TE: gzip', segments: [post('Content-Length: 0\r\nTransfer-Encoding: gzip\r\n')], status: 400 },
  { family: 'Content-Length', name: 'a list that differs (0, 5)', segments: [post('Content-Length: 0, 5\r\n', 'hello')], status: 400 },
  { family: 'Content-Length', name: 'a list of equal values (5, 5)', segments: [post('Content-Length: 5, 5\r\n', 'hello')], status: 400 },
  { family: 'Content-Length', name: 'two fields that differ', segments: [post('Content-Length: 0\r\nContent-Length: 5\r\n', 'hello')], status: 400 },
  { family: 'Content-Length', name: 'signed (+5)', segments: [post('Content-Length: +5\r\n', 'hello')], status: 400 },
  { family: 'Content-Length', name: 'negative (-5)', segments: [post('Content-Length: -5\r\n', 'hello')], status: 400 },
  { family: 'Content-Length', name: 'hex (0x5)', segments: [post('Content-Length: 0x5\r\n', 'hello')], status: 400 },
  { family: 'Content-Length', name: 'padded inside (1 0)', segments: [post('Content-Length: 1 0\r\n', 'helloworld')], status: 400 },
  // ---- Transfer-Encoding lists
  {
    family: 'TE list',
    name: 'gzip, chunked (unknown coding)',
    segments: [post('Transfer-Encoding: gzip, chunked\r\n', '5\r\nhello\r\n0\r\n\r\n')],
    status: 501,
  },
  {
    family: 'TE list',
    name: 'two fields gzip + chunked',
    segments: [post('Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n')],
    status: 501,
  },
  { family: 'TE list', name: 'chunked, chunked', segments: [post('Transfer-Encoding: chunked, chunked\r\n', '0\r\n\r\n')], status: 400 },
  { family: 'TE list', name: 'chunked, gzip (chunked not last)', segments: [post('Transfer-Encoding: chunked, gzip\r\n', '0\r\n\r\n')], status: 400 },
  { family: 'TE list', name: 'identity', segments: [post('Transfer-Encoding: identity\r\n', '0\r\n\r\n')], status: 400 },
  { family: 'TE list', name: 'xchunked', segments: [post('Transfer-Encoding: xchunked\r\n', '0\r\n\r\n')], status: 400 },
  {
    family: 'TE in HTTP/1.0',
    name: 'chunked in an HTTP/1.0 request',
    segments: [`POST /p HTTP/1.0\r\n${HOST}Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`],
    status: 400,
  },
  // ---- obs-fold and whitespace before the colon
  { family: 'field syntax', name: 'obs-fold in Transfer-Encoding', segments: [post('Transfer-Encoding:\r\n chunked\r\n', '0\r\n\r\n')], status: 400 },
  { family: 'field syntax', name: 'obs-fold after another field', segments: [post('X-A: 1\r\n Transfer-Encoding: chunked\r\n', '0\r\n\r\n')], status: 400 },
  { family: 'field syntax', name: 'space before the colon (TE)', segments: [post('Transfer-Encoding : chunked\r\n', '0\r\n\r\n')], status: 400 },
  { family: 'field syntax', name: 'space before the colon (CL)', segments: [post('Content-Length : 5\r\n', 'hello')], status: 400 },
  { family: 'field syntax', name: 'a name that is not a token', segments: [post('X(y): 1\r\n')], status: 400 },
  // ---- bare CR and bare LF
  { family: 'bare CR/LF', name: 'bare LF ending the request line', segments: [`POST /p HTTP/1.1\n${HOST}Content-Length: 0\r\n\r\n`], status: 400 },
  { family: 'bare CR/LF', name: 'bare CR inside the request line', segments: [`POST /p\rX HTTP/1.1\r\n${HOST}\r\n`], status: 400 },
  { family: 'bare CR/LF', name: 'bare LF ending a field line', segments: [`POST /p HTTP/1.1\r\nHost: s.test\nContent-Length: 0\r\n\r\n`], status: 400 },
  { family: 'bare CR/LF', name: 'bare CR inside a field value', segments: [post('X-A: 1\rTransfer-Encoding: chunked\r\n', '0\r\n\r\n')], status: 400 },
  { family: 'bare CR/LF', name: 'bare LF ending a chunk-size line', segments: [chunked('5\nhello\r\n0\r\n\r\n')], status: 400 },
  { family: 'bare CR/LF', name: 'bare CR ending a chunk-size line', segments: [chunked('5\rhello\r\n0\r\n\r\n')], status: 400 },
  { family: 'bare CR/LF', name: 'bare LF inside a chunk extension', segments: [chunked('5;a\nb\r\nhello\r\n0\r\n\r\n')], status: 400 },
  { family: 'bare CR/LF', name: 'bare CR inside a chunk extension', segments: [chunked('5;a\rb\r\nhello\r\n0\r\n\r\n')], status: 400 },
  { family: 'bare CR/LF', name: "bare LF as a chunk's trailing CRLF", segments: [chunked('5\r\nhello\n0\r\n\r\n')], status: 400 },
  { family: 'bare CR/LF', name: "bare CR as a chunk's trailing CRLF", segments: [chunked('5\r\nhello\r0\r\n\r\n')], status: 400 },
  { family: 'bare CR/LF', name: 'bare LF in a trailer line', segments: [chunked('5\r\nhello\r\n0\r\nX-T: 1\n\r\n')], status: 400 },
  // ---- chunk-size forms
  { family: 'chunk size', name: 'leading +', segments: [chunked('+5\r\nhello\r\n0\r\n\r\n')], status: 400 },
  { family: 'chunk size', name: 'leading 0x', segments: [chunked('0x5\r\nhello\r\n0\r\n\r\n')], status: 400 },
  { family: 'chunk size', name: 'leading space', segments: [chunked(' 5\r\nhello\r\n0\r\n\r\n')], status: 400 },
  { family: 'chunk size', name: 'trailing space', segments: [chunked('5 \r\nhello\r\n0\r\n\r\n')], status: 400 },
  {
    family: 'chunk size',
    name: 'more than 16 hex digits (17, value 5)',
    segments: [chunked('00000000000000005\r\nhello\r\n0\r\n\r\n')],
    status: 400,
    // llhttp reads leading zeros as zeros (it bounds the value, not the digits), as nginx does:
    // one reading, and the upstream gets the body re-framed. docs/hardening.md "Limitations".
    statuses: { node: [200, 200] },
    open: ['node'],
    upstream: {
      node: [
        { line: 'POST /p HTTP/1.1', body: 'hello' },
        { line: 'GET /smuggled HTTP/1.1', body: '' },
      ],
    },
  },
  {
    family: 'chunk size',
    name: 'a size past 2^52 (14 hex digits)',
    segments: [chunked('fffffffffffff0\r\nhello\r\n0\r\n\r\n')],
    status: 400,
    // llhttp takes it (it fits 64 bits): one chunk of 2^56 bytes, the pipelined request its
    // data. One reading again, never a second request; the client waits out the body timeout.
    statuses: { node: [] },
    open: ['node'],
  },
  // ---- NUL in the head
  { family: 'NUL', name: 'in the request target', segments: [`GET /p\0x HTTP/1.1\r\n${HOST}\r\n`], status: 400 },
  { family: 'NUL', name: 'in a field name', segments: [post('X\0A: 1\r\n')], status: 400 },
  { family: 'NUL', name: 'in a field value', segments: [post('X-A: 1\0\r\n')], status: 400 },
  { family: 'NUL', name: 'in the method', segments: [`GE\0T /p HTTP/1.1\r\n${HOST}\r\n`], status: 400 },
  // ---- a body where none belongs (RFC 9110 §9.3.1: a smuggling vector; the runtimes disagreed)
  { family: 'body on GET', name: 'GET with Content-Length 5', segments: [`GET /g HTTP/1.1\r\n${HOST}Content-Length: 5\r\n\r\nhello`], status: 400 },
  {
    family: 'body on GET',
    name: 'GET chunked',
    segments: [`GET /g HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`],
    status: 400,
  },
  { family: 'body on GET', name: 'HEAD with Content-Length 5', segments: [`HEAD /h HTTP/1.1\r\n${HOST}Content-Length: 5\r\n\r\nhello`], status: 400 },
  // ---- a chunked body that breaks after the head has gone out
  {
    family: 'chunked, split',
    name: 'the first size line bad, in a later segment than the head',
    segments: [post('Transfer-Encoding: chunked\r\n'), '+5\r\nhello\r\n0\r\n\r\n'],
    status: 400,
    // node:http hands the request over at its head: the upstream has the head and a cut body.
    upstream: { node: [] },
  },
];
