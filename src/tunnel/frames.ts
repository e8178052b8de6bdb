// Where WebSocket frames begin and end in a tunnel's byte stream (RFC 6455 §5.2), read without
// unmasking or copying a payload: the proxy needs frame boundaries only to say goodbye cleanly
// (a close frame injected between two frames on shutdown, never inside one) and to see a peer's
// close frame. Payloads are skipped by length, so the cost is per frame, not per byte.

/** Opcode of a close frame. */
export const OP_CLOSE = 0x8;

/** Follows frame boundaries through the bytes of one direction of a WebSocket connection. */
export class FrameCursor {
  /** Header bytes collected so far for the frame now starting (up to 14). */
  private readonly header = new Uint8Array(14);
  private have = 0;
  /** Payload bytes of the current frame still to come. */
  private remaining = 0;
  /** In the payload of a frame (its header was read whole). */
  private inPayload = false;
  private opcode = 0;

  /** Between two frames: a control frame may be sent now. */
  get atBoundary(): boolean {
    return this.have === 0 && !this.inPayload;
  }

  /**
   * Follows `bytes` from `from`; at each frame's end calls `onEnd(opcode, offset just past it)`,
   * and stops there if it returns true. Returns that offset, or -1 when it ran to the end.
   */
  scan(bytes: Uint8Array, from = 0, onEnd?: (opcode: number, end: number) => boolean): number {
    let i = from;
    const n = bytes.byteLength;
    while (i < n) {
      if (this.inPayload) {
        const take = Math.min(this.remaining, n - i);
        this.remaining -= take;
        i += take;
        if (this.remaining > 0) return -1;
        this.inPayload = false;
        if (onEnd?.(this.opcode, i)) return i;
        continue;
      }
      // Collect the header: 2 bytes, then the extended length and the mask key they announce.
      this.header[this.have++] = bytes[i++] as number;
      if (this.have < 2) continue;
      const b1 = this.header[1] as number;
      const len7 = b1 & 0x7f;
      const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
      if (this.have < need) continue;
      this.opcode = (this.header[0] as number) & 0x0f;
      let length = len7;
      if (len7 === 126) length = ((this.header[2] as number) << 8) | (this.header[3] as number);
      else if (len7 === 127) {
        length = 0;
        for (let k = 2; k < 10; k++) length = length * 256 + (this.header[k] as number);
      }
      this.have = 0;
      this.remaining = length;
      this.inPayload = true;
      if (length === 0) {
        this.inPayload = false;
        if (onEnd?.(this.opcode, i)) return i;
      }
    }
    return -1;
  }
}

/** 1001 Going Away (RFC 6455 §7.4.1): the endpoint is going down. */
export const GOING_AWAY = 1001;

/**
 * A close frame with `code` and a short `reason`: unmasked toward a client (frames from a
 * server), masked with a random key toward a server (RFC 6455 §5.3 requires clients to mask).
 */
export function closeFrame(code: number, reason: string, masked: boolean): Uint8Array {
  const text = new TextEncoder().encode(reason.slice(0, 123));
  const payload = new Uint8Array(2 + text.byteLength);
  payload[0] = code >> 8;
  payload[1] = code & 0xff;
  payload.set(text, 2);
  const headerLength = masked ? 6 : 2;
  const frame = new Uint8Array(headerLength + payload.byteLength);
  frame[0] = 0x80 | OP_CLOSE; // FIN, close
  frame[1] = (masked ? 0x80 : 0) | payload.byteLength;
  if (!masked) {
    frame.set(payload, 2);
    return frame;
  }
  const key = crypto.getRandomValues(new Uint8Array(4));
  frame.set(key, 2);
  for (let i = 0; i < payload.byteLength; i++) frame[6 + i] = (payload[i] as number) ^ (key[i & 3] as number);
  return frame;
}
