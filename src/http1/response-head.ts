// Response heads our Bun server writes (RFC 9112 §4, §6; RFC 9110 §6.6.1): the status line and
// its reason rule, the app's fields minus the framing ones this server decides, Date, and how
// the body is framed. Pure functions over a Response; the socket glue writes what they return.

import { STATUS_CODES } from 'node:http';
import { endsAtHead, lengthFrames } from '../http/body-rules.ts';
import { CONNECTION_SPECIFIC } from '../http/hop-by-hop.ts';
import { plainReason } from '../http/reason.ts';

/** What to write for one response, decided before the first byte goes out. */
export interface ResponseHead {
  /** Status line and field lines, each ending in CRLF; the Connection field and the empty line are the caller's (`endOfHead`). */
  readonly text: string;
  /** The body to send, or null (none, or none allowed: HEAD, 204, 304). */
  readonly body: ReadableStream<Uint8Array> | null;
  /** The app's Content-Length as given, or null. */
  readonly length: string | null;
  /** The body goes chunked (HTTP/1.1, no length). */
  readonly chunked: boolean;
  /** The body ends with the connection (HTTP/1.0, no length): the connection must close. */
  readonly untilClose: boolean;
}

/** `HTTP/1.1 <status> <reason>\r\n`: the app's reason when it is plain visible ASCII (a CR LF in it would end the line), else the standard one. */
export function statusLine(status: number, statusText: string): string {
  return `HTTP/1.1 ${status} ${plainReason(statusText) || (STATUS_CODES[status] ?? '')}\r\n`;
}

/**
 * The head for `res` answering a `method` request from an HTTP/1.0 or 1.1 client. Framing and
 * connection fields are this server's to write, whatever the app set; a Content-Length
 * frames the bytes that follow, except on HEAD and 304 where it describes the representation
 * (RFC 9110 §8.6). Without a body it says 0, and a 204 carries none.
 */
export function responseHead(method: string, http10: boolean, res: Response, dateLine: string): ResponseHead {
  const status = res.status;
  const body = endsAtHead(method, status) ? null : res.body;
  const frames = lengthFrames(method, status);
  let text = statusLine(status, res.statusText);
  let hasDate = false;
  let length: string | null = null;
  for (const [name, value] of res.headers) {
    if (CONNECTION_SPECIFIC.has(name)) continue;
    if (name === 'content-length') {
      if (body === null && frames) continue;
      length = value;
    } else if (name === 'date') hasDate = true;
    text += `${name}: ${value}\r\n`;
  }
  if (body === null && frames && status !== 204) text += 'content-length: 0\r\n';
  if (!hasDate) text += dateLine;
  // No length known: chunked for HTTP/1.1, the end of the connection for HTTP/1.0.
  const unframed = body !== null && length === null;
  if (unframed && !http10) text += 'transfer-encoding: chunked\r\n';
  return { text, body, length, chunked: unframed && !http10, untilClose: unframed && http10 };
}

/** The Connection field (when one is needed) and the empty line ending a head. */
export function endOfHead(closing: boolean, http10: boolean): string {
  return closing ? 'connection: close\r\n\r\n' : http10 ? 'connection: keep-alive\r\n\r\n' : '\r\n';
}

/** A complete plain-text answer of our own that closes the connection (a refused head, a timeout). */
export function closingAnswer(status: number, message: string, dateLine: string, withBody = true): string {
  const body = `${message}\n`;
  return `${statusLine(status, '')}${dateLine}content-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${withBody ? body : ''}`;
}

export const BAD_GATEWAY_BODY: Uint8Array = new TextEncoder().encode('bad gateway\n');

/** The head replacing a small answer whose body broke before it was whole (the caller adds `endOfHead`). */
export function badGatewayHead(dateLine: string): string {
  return `HTTP/1.1 502 Bad Gateway\r\n${dateLine}content-type: text/plain; charset=utf-8\r\ncontent-length: ${BAD_GATEWAY_BODY.byteLength}\r\n`;
}

/** `101 Switching Protocols` with `headers` as given (Upgrade, Connection...) and the empty line. */
export function switchingHead(headers: Headers): string {
  let text = 'HTTP/1.1 101 Switching Protocols\r\n';
  for (const [name, value] of headers) text += `${name}: ${value}\r\n`;
  return `${text}\r\n`;
}
