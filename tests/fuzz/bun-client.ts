// The Bun half of the response fuzzer, run as `bun tests/fuzz/bun-client.ts`: our upstream
// client (src/transport/bun-socket.ts) fetches each URL named on stdin (one JSON line each)
// and answers one JSON line with what it got. Bun.connect exists on Bun only, hence a process.
import { createInterface } from 'node:readline';
import { createBunSocketTransport } from '../../src/transport/bun-socket.ts';
import type { ClientResult } from './response-sides.ts';

const transport = createBunSocketTransport();

async function fetchOne(url: string, method: string): Promise<ClientResult> {
  try {
    // fresh: every case is its own connection (the fuzz server closes after each response).
    const res = await transport.fetch(url, { method, headers: new Headers({ host: '127.0.0.1' }), body: null, signal: AbortSignal.timeout(3000), fresh: true });
    const body = Buffer.from(await res.arrayBuffer()).toString('latin1');
    return { ok: true, status: res.status, fields: [...res.headers], body };
  } catch (error) {
    const e = error as { code?: string; message?: string; name?: string };
    return { ok: false, error: e.code ?? e.name ?? 'Error', message: String(e.message ?? error).slice(0, 200) };
  }
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const { id, url, method } = JSON.parse(line) as { id: number; url: string; method: string };
  void fetchOne(url, method).then((result) => process.stdout.write(`${JSON.stringify({ id, result })}\n`));
});
lines.on('close', () => {
  void transport.close().then(() => process.exit(0));
});
