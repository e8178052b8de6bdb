// What the soak's messages and events carry, computed the same way by the side that sends and
// the side that checks, so that nothing has to be kept to verify an echo or an event: every
// payload is a slice of a fixed pool chosen by its numbers.
import { createHash, randomBytes } from 'node:crypto';

/** 3 MiB of random bytes (binary messages) and their base64, 4 MiB (text messages, SSE data). */
const RANDOM = randomBytes(3 << 20);
export const BINARY_POOL: Buffer = RANDOM;
export const TEXT_POOL: Buffer = Buffer.from(RANDOM.toString('base64'), 'latin1');

/** Small deterministic PRNG (mulberry32): the same seed gives the same session. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Where in a pool the payload of (a, b) of `len` bytes starts. */
export function offsetOf(a: number, b: number, len: number, poolLength: number): number {
  return (Math.imul(a, 7919) + Math.imul(b, 104729)) % (poolLength - len);
}

/**
 * A WebSocket message: `#<session>:<seq>:<length>;` then payload bytes from the pool, `length`
 * bytes in all. Text messages take the base64 pool (valid UTF-8), binary ones the random pool.
 */
export function wsMessage(session: number, seq: number, length: number, binary: boolean): Buffer {
  const head = `#${session}:${seq}:${length};`;
  const len = Math.max(length, head.length);
  const pool = binary ? BINARY_POOL : TEXT_POOL;
  const out = Buffer.allocUnsafe(len);
  out.write(head, 0, 'latin1');
  const n = len - head.length;
  const off = offsetOf(session, seq, n, pool.length);
  pool.copy(out, head.length, off, off + n);
  return out;
}

/** Checks an echo against the message (session, seq, length, binary) without a copy of it. */
export function wsMessageMatches(data: Buffer, session: number, seq: number, length: number, binary: boolean): boolean {
  const head = `#${session}:${seq}:${length};`;
  const len = Math.max(length, head.length);
  if (data.length !== len || data.toString('latin1', 0, head.length) !== head) return false;
  const pool = binary ? BINARY_POOL : TEXT_POOL;
  const n = len - head.length;
  const off = offsetOf(session, seq, n, pool.length);
  return data.subarray(head.length).equals(pool.subarray(off, off + n));
}

/** The seq of a message's head (`#s:seq:len;`), or -1. */
export function seqOf(data: Buffer): number {
  const m = /^#\d+:(\d+):\d+;/.exec(data.toString('latin1', 0, Math.min(data.length, 40)));
  return m ? Number(m[1]) : -1;
}

/** The payload of SSE event `seq` of stream `stream`: 16 to 4015 base64 characters. */
export function ssePayload(stream: number, seq: number): string {
  const len = 16 + ((Math.imul(stream, 31) + Math.imul(seq, 977)) % 4000);
  const off = offsetOf(stream, seq, len, TEXT_POOL.length);
  return TEXT_POOL.toString('latin1', off, off + len);
}

export const checksum = (s: string): string => createHash('sha1').update(s).digest('hex').slice(0, 16);

/**
 * SSE event `seq` of `stream` as sent: an id, an event name, a JSON line with the numbers and
 * the payload's checksum, then the payload on a second data line; every fifth one after a comment.
 */
export function sseEvent(stream: number, seq: number): string {
  const payload = ssePayload(stream, seq);
  const meta = JSON.stringify({ stream, seq, len: payload.length, sum: checksum(payload) });
  return `${seq % 5 === 0 ? ': keep-alive\n' : ''}id: ${seq}\nevent: tick\ndata: ${meta}\ndata: ${payload}\n\n`;
}
