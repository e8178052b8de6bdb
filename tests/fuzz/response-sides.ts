// The response half of the fuzzer: a raw node:net server on 127.0.0.1:0 sends each generated
// byte stream (then closes); node's http client (llhttp in response mode) and our Bun transport,
// in a Bun child process (bun-client.ts), each fetch it; `classifyResponse` compares them.
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { HOP_BY_HOP } from '../../src/http/hop-by-hop.ts';
import type { Judgement } from './classify.ts';
import { normaliseFields, turns } from './outcome.ts';
import { type RequestInput, segmentsOf } from './request-gen.ts';
import type { ResponseInput } from './response-gen.ts';

export type ClientResult = { ok: true; status: number; fields: [string, string][]; body: string } | { ok: false; error: string; message: string };

/** The upstream: answers `GET /r/<id>` with case `id`'s bytes, cut into writes, then closes. */
export interface RawUpstream {
  readonly port: number;
  serve(input: ResponseInput): number;
  close(): Promise<void>;
}

export async function startRawUpstream(): Promise<RawUpstream> {
  const cases = new Map<number, ResponseInput>();
  let next = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let head = '';
    socket.on('data', async (chunk: Buffer) => {
      if (head.includes('\r\n\r\n')) return;
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const id = Number(/^\w+ \/r\/(\d+) /.exec(head)?.[1]);
      const input = cases.get(id);
      if (input === undefined) return void socket.destroy();
      for (const segment of segmentsOf(input as unknown as RequestInput)) {
        if (socket.destroyed) return;
        socket.write(segment);
        await turns(1);
      }
      socket.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    serve(input) {
      const id = next++;
      cases.set(id, input);
      // Cases are fetched twice, then dropped a while later.
      setTimeout(() => cases.delete(id), 10_000).unref();
      return id;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** llhttp's reading: node's http client, one connection per request (agent: false). */
export function nodeFetch(port: number, id: number, method: string): Promise<ClientResult> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (result: ClientResult) => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    const req = http.request({ host: '127.0.0.1', port, path: `/r/${id}`, method, agent: false, headers: { host: '127.0.0.1' }, timeout: 3000 });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    // A 101 leaves HTTP; no upgrade was asked for.
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      done({ ok: false, error: 'UPGRADE', message: 'unexpected 101' });
    });
    let answered: (() => ClientResult) | null = null;
    let complete = () => false;
    req.on('response', (res) => {
      complete = () => res.complete;
      let body = '';
      const pairs: [string, string][] = [];
      for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) pairs.push([res.rawHeaders[i] as string, res.rawHeaders[i + 1] as string]);
      answered = () =>
        res.complete
          ? { ok: true, status: res.statusCode ?? 0, fields: pairs, body }
          : { ok: false, error: 'INCOMPLETE', message: 'connection closed before the body ended' };
      res.on('data', (chunk: Buffer) => {
        body += chunk.toString('latin1');
      });
      // The answer is llhttp's once its body ended: bytes after it (a body sent to HEAD, a
      // second response) fail the connection later, which our transport ignores as well.
      res.on('end', () => done((answered as () => ClientResult)()));
      res.on('close', () => done((answered as () => ClientResult)()));
    });
    req.on('error', (error: Error & { code?: string }) => {
      // Complete already: its 'end' (with the body still queued in the stream) answers.
      if (!complete()) done({ ok: false, error: error.code ?? 'Error', message: error.message });
    });
    req.end();
  });
}

/** Our Bun transport in a child process, one JSON line per request each way. */
export interface BunClient {
  fetch(port: number, id: number, method: string): Promise<ClientResult>;
  close(): Promise<void>;
}

const BUN = fileURLToPath(new URL('../../node_modules/.bin/bun', import.meta.url));
const WORKER = fileURLToPath(new URL('./bun-client.ts', import.meta.url));

export function startBunClient(): BunClient {
  const child: ChildProcess = spawn(BUN, [WORKER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = new Map<number, (result: ClientResult) => void>();
  let next = 0;
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  lines.on('line', (line) => {
    const { id, result } = JSON.parse(line) as { id: number; result: ClientResult };
    waiting.get(id)?.(result);
    waiting.delete(id);
  });
  let gone = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => {
    gone = true;
    for (const resolve of waiting.values()) resolve({ ok: false, error: 'WORKER_EXIT', message: 'bun worker exited' });
    waiting.clear();
  });
  return {
    fetch(port, id, method) {
      const key = next++;
      if (gone) return Promise.resolve({ ok: false, error: 'WORKER_EXIT', message: 'bun worker exited' });
      return new Promise((resolve) => {
        waiting.set(key, resolve);
        child.stdin?.write(`${JSON.stringify({ id: key, url: `http://127.0.0.1:${port}/r/${id}`, method })}\n`);
      });
    },
    async close() {
      child.stdin?.end();
      const timer = setTimeout(() => child.kill(), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * What a proxy's client must pass on, from llhttp's reading, as our transport promises it
 * (transport/types.ts): no hop-by-hop field, none Connection names, no Transfer-Encoding, one
 * Content-Length (none on 204, none once chunked framed the body).
 */
function expectedFields(result: Extract<ClientResult, { ok: true }>): [string, string][] {
  const connection = result.fields.filter(([n]) => n.toLowerCase() === 'connection').flatMap(([, v]) => v.split(',').map((t) => t.trim().toLowerCase()));
  const chunked = result.fields.some(([n]) => n.toLowerCase() === 'transfer-encoding');
  const out: [string, string][] = [];
  let length: string | null = null;
  for (const [name, value] of result.fields) {
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || connection.includes(lower)) continue;
    if (lower === 'content-length') {
      length ??= value.split(',')[0]?.trim() ?? value;
      continue;
    }
    out.push([name, value]);
  }
  if (length !== null && !chunked && result.status !== 204) out.push(['content-length', result.status === 205 ? '0' : length]);
  return normaliseFields(out);
}

const RESPONSE_FRAMING_ERRORS = new Set([
  'HPE_INVALID_CONTENT_LENGTH',
  'HPE_UNEXPECTED_CONTENT_LENGTH',
  'HPE_INVALID_TRANSFER_ENCODING',
  'HPE_INVALID_CHUNK_SIZE',
  'HPE_CR_EXPECTED',
  'HPE_LF_EXPECTED',
  'HPE_STRICT',
  'HPE_INVALID_HEADER_TOKEN',
  'INCOMPLETE',
]);

/** Compares our transport's reading of a response with llhttp's. */
export function classifyResponse(ours: ClientResult, ref: ClientResult, bytes = ''): Judgement {
  if (!ours.ok && !ref.ok) return { verdict: 'AGREE', kind: 'agree', detail: `both failed: ${ours.error} / ${ref.error}` };
  if (!ours.ok)
    return {
      verdict: 'STRICTER',
      kind: `refused:${ours.message.replace(/\d+/g, 'N').slice(0, 60)}`,
      detail: `bun transport failed (${ours.error}: ${ours.message}); llhttp read status ${ref.ok ? ref.status : ''}`,
    };
  if (!ref.ok) {
    // A 205's framed content is read and dropped by our transport (it has none to hand on), so
    // the app has its answer before the bytes would have ended; a cut or malformed one kills the
    // connection (failExchange), so nothing after it is read as another response.
    if (ours.status === 205)
      return { verdict: 'BENIGN', kind: '205-dropped-body', detail: `bun transport answered 205 before its framed bytes; llhttp: ${ref.error} ${ref.message}` };
    // RFC 9110 §8.6: a list of identical lengths may be taken as that one length.
    const lengths = [...bytes.matchAll(/\r\ncontent-length:([^\r\n]*)/gi)].flatMap((m) => (m[1] as string).split(',').map((v) => v.trim()));
    const sameLengths = lengths.length > 1 && lengths.every((v) => v === lengths[0] && /^\d+$/.test(v));
    // RFC 9112 §6.3 item 3: with both, Transfer-Encoding overrides and an intermediary drops the
    // Content-Length (our transport does, and closes the connection after).
    const both = /can't be present with Transfer-Encoding/.test(ref.message);
    const framing = RESPONSE_FRAMING_ERRORS.has(ref.error) && !(sameLengths && /CONTENT_LENGTH/.test(ref.error)) && !both;
    return {
      verdict: framing ? 'BUG' : 'LAXER',
      kind: `accepted-refused:${ref.error}`,
      detail: `bun transport read ${ours.status} body ${JSON.stringify(ours.body)}; llhttp failed: ${ref.error} ${ref.message}`,
    };
  }
  if (ours.status !== ref.status) return { verdict: 'BUG', kind: 'status-differs', detail: `bun ${ours.status} / llhttp ${ref.status}` };
  // A 205 has no content (RFC 9110 §15.3.6): our transport reads and drops what was framed.
  if (ours.body !== (ref.status === 205 ? '' : ref.body))
    return { verdict: 'BUG', kind: 'body-differs', detail: `bun ${JSON.stringify(ours.body)} / llhttp ${JSON.stringify(ref.body)}` };
  const a = JSON.stringify(normaliseFields(ours.fields));
  const b = JSON.stringify(expectedFields(ref));
  if (a !== b) return { verdict: 'BUG', kind: 'fields-differ', detail: `bun ${a} / llhttp ${b}` };
  return { verdict: 'AGREE', kind: 'agree', detail: '' };
}
