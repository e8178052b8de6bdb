// Chunked transfer coding on the way out (RFC 9112 §7.1): what our server writes for a response
// of unknown length and our client for a request body without Content-Length. No extensions,
// no trailers.

/** The last chunk and the empty trailer section. */
export const LAST_CHUNK: Buffer = Buffer.from('0\r\n\r\n');

/** `data` as one chunk (hex size, CRLF, data, CRLF) in one new buffer; `data` must not be empty (a 0 would end the body). */
export function encodeChunk(data: Uint8Array): Buffer {
  const size = data.byteLength.toString(16);
  const out = Buffer.allocUnsafe(size.length + data.byteLength + 4);
  out.write(size, 0, 'latin1');
  let at = size.length;
  out[at++] = 13;
  out[at++] = 10;
  out.set(data, at);
  at += data.byteLength;
  out[at++] = 13;
  out[at] = 10;
  return out;
}
