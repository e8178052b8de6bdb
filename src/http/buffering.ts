// How much of a message body the proxy holds, on every side (both transports, our Bun server,
// the tunnels): the one home of these numbers, so a response is buffered the same way whichever
// runtime or transport carries it.

/** A declared body this small is collected whole and handed over as bytes (like nginx's proxy buffers). */
export const SMALL_BODY_BYTES = 64 * 1024;

/** Whether a Content-Length value declares a body of at most SMALL_BODY_BYTES. */
export const isSmallLength = (value: string | null): boolean => value !== null && value.length <= 5 && Number(value) <= SMALL_BODY_BYTES;

/** Bytes queued in a body stream before its source is paused (backpressure). */
export const BODY_HIGH_WATER_BYTES = 64 * 1024;

/**
 * How body streams queue: bytes plus a per-chunk overhead, so a body of tiny chunks cannot pile
 * up unseen under the mark; past it the socket is paused (backpressure).
 */
export const BODY_QUEUE: QueuingStrategy<Uint8Array> = { highWaterMark: BODY_HIGH_WATER_BYTES, size: (chunk?: Uint8Array) => (chunk?.byteLength ?? 0) + 256 };
