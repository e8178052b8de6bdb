// Which messages carry a body, and what their Content-Length means (RFC 9110 §6.4.1, §8.6,
// §15.3.5-6; RFC 9112 §6.3): the one home of the HEAD / 1xx / 204 / 205 / 304 rules, read by
// both transports, our HTTP/1.1 server and client, and nothing else.

/**
 * True when a response ends at its empty line whatever its framing fields say: any answer to
 * HEAD, and every 1xx, 204 and 304 (RFC 9112 §6.3 items 1-2). A 205 is not one of them: it may
 * carry a framed (empty) body, which a client must read to stay in sync.
 */
export function endsAtHead(method: string, status: number): boolean {
  return status < 200 || status === 204 || status === 304 || method === 'HEAD';
}

/**
 * True when a request says it has a body (RFC 9112 §6.3): any Transfer-Encoding, or a
 * Content-Length other than zero (`0`, `00`...). What a malformed length means is the framing
 * code's and the guard's to decide; here it counts as a body.
 */
export function requestDeclaresBody(contentLength: string | null | undefined, transferEncoding: string | null | undefined): boolean {
  return (transferEncoding !== null && transferEncoding !== undefined) || (contentLength !== null && contentLength !== undefined && !ZEROS.test(contentLength));
}

const ZEROS = /^0+$/;

/**
 * Fetch's null-body statuses (101, 103, 204, 205, 304): a `Response` with one of these cannot
 * carry a body, so a transport hands it over with `body: null`.
 */
export function isNullBodyStatus(status: number): boolean {
  return status === 204 || status === 304 || status === 205 || status === 101 || status === 103;
}

/** True when a transport hands a response over with `body: null`: any answer to HEAD, and the null-body statuses. */
export function responseBodyIsNull(method: string, status: number): boolean {
  return method === 'HEAD' || isNullBodyStatus(status);
}

/**
 * True when a response's Content-Length counts the bytes that follow it. On HEAD and 304 it
 * describes the representation a GET would get instead, and travels on as it is (RFC 9110
 * §8.6, §15.4.5).
 */
export function lengthFrames(method: string, status: number): boolean {
  return status !== 304 && method !== 'HEAD';
}

/**
 * The response headers a transport hands over for a 204 or 205, whose content is empty by
 * definition (RFC 9110 §15.3.5-6): a 204 carries no Content-Length, a 205 one of 0. An upstream
 * may still send the length of a body it dropped (node:http does for 205); passed on, it would
 * frame bytes that never come and desync the client's connection. Other statuses: `headers`.
 */
export function bodilessHeaders(status: number, headers: Headers): Headers {
  if ((status !== 204 && status !== 205) || !headers.has('content-length')) return headers;
  if (status === 205 && headers.get('content-length') === '0') return headers;
  const out = new Headers(headers);
  if (status === 204) out.delete('content-length');
  else out.set('content-length', '0');
  return out;
}
