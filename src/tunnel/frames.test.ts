import assert from 'node:assert/strict';
import { test } from 'node:test';
import { closeFrame, FrameCursor, OP_CLOSE } from './frames.ts';

/** A frame as a client (masked) or server sends it, payload `length` bytes of 0x61. */
function frame(opcode: number, length: number, masked: boolean, fin = true): Uint8Array {
  const ext = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const head = new Uint8Array(2 + ext + (masked ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = (masked ? 0x80 : 0) | (ext === 0 ? length : ext === 2 ? 126 : 127);
  if (ext === 2) {
    head[2] = length >> 8;
    head[3] = length & 0xff;
  } else if (ext === 8) {
    let rest = length;
    for (let k = 9; k >= 2; k--) {
      head[k] = rest % 256;
      rest = Math.floor(rest / 256);
    }
  }
  const out = new Uint8Array(head.byteLength + length);
  out.set(head);
  out.fill(0x61, head.byteLength);
  return out;
}

const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
};

/** Frame ends the cursor reports over `bytes` fed in pieces of `step` bytes. */
function endsOf(bytes: Uint8Array, step: number): { opcode: number; at: number }[] {
  const cursor = new FrameCursor();
  const ends: { opcode: number; at: number }[] = [];
  for (let from = 0; from < bytes.byteLength; from += step) {
    const piece = bytes.subarray(from, Math.min(from + step, bytes.byteLength));
    cursor.scan(piece, 0, (opcode, end) => {
      ends.push({ opcode, at: from + end });
      return false;
    });
  }
  assert.equal(cursor.atBoundary, true, 'at a boundary after whole frames');
  return ends;
}

test('frame ends are found for 7-bit, 16-bit and 64-bit lengths, masked or not, however the bytes are split', () => {
  const frames = [frame(1, 5, true), frame(2, 300, false), frame(2, 70_000, true), frame(9, 0, true), frame(0x8, 2, false)];
  const bytes = concat(...frames);
  const expected: { opcode: number; at: number }[] = [];
  let at = 0;
  for (const f of frames) {
    at += f.byteLength;
    expected.push({ opcode: (f[0] as number) & 0x0f, at });
  }
  for (const step of [1, 2, 3, 7, 1000, bytes.byteLength]) assert.deepEqual(endsOf(bytes, step), expected, `pieces of ${step}`);
});

test('mid-frame the cursor is not at a boundary; scan stops at the first end when asked', () => {
  const cursor = new FrameCursor();
  const bytes = concat(frame(2, 10, true), frame(1, 3, true));
  assert.equal(cursor.scan(bytes.subarray(0, 8)), -1);
  assert.equal(cursor.atBoundary, false);
  const end = cursor.scan(bytes, 8, () => true);
  assert.equal(end, 16, 'the first frame ends after 2 + 4 + 10 bytes');
  assert.equal(cursor.atBoundary, true);
});

test('a fragmented message is several frames: each fragment ends at a boundary', () => {
  const bytes = concat(frame(1, 4, true, false), frame(0, 4, true, false), frame(0, 4, true, true));
  assert.deepEqual(
    endsOf(bytes, 5).map((e) => e.opcode),
    [1, 0, 0],
  );
});

test('closeFrame: unmasked toward a client, masked toward a server, code and reason readable', () => {
  const plain = closeFrame(1001, 'going away', false);
  assert.equal(plain[0], 0x88);
  assert.equal(plain[1], 12);
  assert.equal(((plain[2] as number) << 8) | (plain[3] as number), 1001);
  assert.equal(Buffer.from(plain.subarray(4)).toString(), 'going away');
  const masked = closeFrame(1001, 'going away', true);
  assert.equal(masked[1], 0x80 | 12);
  const key = masked.subarray(2, 6);
  const payload = masked.subarray(6).map((b, i) => b ^ (key[i & 3] as number));
  assert.equal(((payload[0] as number) << 8) | (payload[1] as number), 1001);
  assert.equal(Buffer.from(payload.subarray(2)).toString(), 'going away');
  assert.deepEqual(endsOf(masked, 1), [{ opcode: OP_CLOSE, at: masked.byteLength }]);
});
