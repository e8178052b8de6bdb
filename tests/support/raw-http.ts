// Raw HTTP/1.1 clients for unit suites that drive real sockets: exact bytes out, responses
// framed as a client must frame them (Content-Length, chunked, close-delimited, HEAD/204/304).
// Shared by the listener conformance cases and our own server's tests.
import assert from 'node:assert/strict';
import net from 'node:net';
import { until, within } from './wait.ts';

export interface Client {
  readonly socket: net.Socket;
  /** Everything received so far. */
  bytes(): Buffer;
  text(): string;
  readonly state: { ended: boolean; closed: boolean };
  write(data: string | Buffer): void;
  /** Resolves with the first `n` responses once they are complete (`methods` for HEAD). */
  responses(n: number, methods?: string[], ms?: number): Promise<Parsed[]>;
  /** Resolves when the server has closed the connection. */
  closed(ms?: number): Promise<void>;
}

export const clients = new Set<net.Socket>();

export async function connect(port: number): Promise<Client> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  socket.on('error', () => {}); // resets are part of several scenarios
  clients.add(socket);
  const chunks: Buffer[] = [];
  const state = { ended: false, closed: false };
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('end', () => {
    state.ended = true;
  });
  socket.on('close', () => {
    state.closed = true;
    clients.delete(socket);
  });
  await within(
    new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    }),
    2000,
    'connect',
  );
  const bytes = () => Buffer.concat(chunks);
  const client: Client = {
    socket,
    bytes,
    text: () => bytes().toString('latin1'),
    state,
    write: (data) => void socket.write(data),
    async responses(n, methods = [], ms = 2000) {
      let got: Parsed[] = [];
      await until(
        () => {
          got = parseResponses(bytes(), methods, state.ended || state.closed).responses;
          return got.length >= n;
        },
        ms,
        () => `${n} response(s); got ${JSON.stringify(bytes().toString('latin1').slice(0, 600))}`,
      );
      return got.slice(0, n);
    },
    closed: (ms = 2000) => until(() => state.closed || state.ended, ms, 'the server closes the connection'),
  };
  return client;
}

export interface Parsed {
  status: number;
  reason: string;
  /** The head as received, without its final empty line. */
  head: string;
  /** Field lines in order, names lowercased. */
  fields: [string, string][];
  body: Buffer;
  /** Interim (1xx) heads received before this response. */
  interim: string[];
}

export const fieldValues = (res: Parsed, name: string) => res.fields.filter(([n]) => n === name).map(([, v]) => v);
export const field = (res: Parsed, name: string): string | undefined => {
  const values = fieldValues(res, name);
  assert.ok(values.length <= 1, `more than one ${name}: ${res.head}`);
  return values[0];
};

/** Splits received bytes into complete responses, framing each one as a client must. */
export function parseResponses(buf: Buffer, methods: string[], closed: boolean, max = Number.POSITIVE_INFINITY): { responses: Parsed[]; rest: Buffer } {
  const responses: Parsed[] = [];
  let interim: string[] = [];
  let at = 0;
  while (responses.length < max) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const head = buf.toString('latin1', at, end);
    const [statusLine, ...lines] = head.split('\r\n');
    const match = /^HTTP\/1\.1 (\d{3}) (.*)$/.exec(statusLine as string);
    if (match === null) throw new Error(`bad status line: ${JSON.stringify(statusLine)}`);
    const fields = lines.map((line): [string, string] => {
      const colon = line.indexOf(':');
      assert.ok(colon > 0, `bad field line ${JSON.stringify(line)}`);
      return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
    });
    const status = Number(match[1]);
    let pos = end + 4;
    if (status < 200) {
      interim.push(head);
      at = pos;
      continue;
    }
    const res: Parsed = { status, reason: match[2] as string, head, fields, body: Buffer.alloc(0), interim };
    const method = methods[responses.length] ?? 'GET';
    const te = fields.find(([n]) => n === 'transfer-encoding')?.[1];
    const cl = fields.find(([n]) => n === 'content-length')?.[1];
    if (method === 'HEAD' || status === 204 || status === 304) {
      // no body
    } else if (te !== undefined) {
      assert.equal(te, 'chunked');
      const parts: Buffer[] = [];
      let complete = false;
      for (;;) {
        const eol = buf.indexOf('\r\n', pos);
        if (eol < 0) break;
        const size = Number.parseInt(buf.toString('latin1', pos, eol), 16);
        assert.ok(Number.isInteger(size), `bad chunk size line at ${pos}`);
        if (size === 0) {
          if (buf.length < eol + 4) break;
          assert.equal(buf.toString('latin1', eol + 2, eol + 4), '\r\n', 'no trailers expected');
          pos = eol + 4;
          complete = true;
          break;
        }
        if (buf.length < eol + 2 + size + 2) break;
        parts.push(buf.subarray(eol + 2, eol + 2 + size));
        assert.equal(buf.toString('latin1', eol + 2 + size, eol + 4 + size), '\r\n', 'chunk data must end with CRLF');
        pos = eol + 4 + size;
      }
      if (!complete) break;
      res.body = Buffer.concat(parts);
    } else if (cl !== undefined) {
      const n = Number(cl);
      if (buf.length < pos + n) break;
      res.body = buf.subarray(pos, pos + n);
      pos += n;
    } else {
      if (!closed) break; // close-delimited: complete only at the end of the connection
      res.body = buf.subarray(pos);
      pos = buf.length;
    }
    responses.push(res);
    interim = [];
    at = pos;
  }
  return { responses, rest: buf.subarray(at) };
}

export const get = (target: string, extra = '') => `GET ${target} HTTP/1.1\r\nHost: example.test\r\n${extra}\r\n`;
