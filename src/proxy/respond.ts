// Short plain-text answers the proxy gives itself: every one comes from a ProxyError (`refuse`),
// so its access line names the error. Bodies say what happened without naming internal
// addresses; the log line names them.
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { type ProxyError, statusFor } from './errors.ts';

const TEXT = { 'content-type': 'text/plain; charset=utf-8' };

/** What the client reads for a status when the error has no `reply` of its own. */
const GENERIC: Record<number, string> = {
  408: 'request timeout',
  413: 'payload too large',
  499: 'client closed request',
  502: 'bad gateway',
  503: 'service unavailable',
  504: 'gateway timeout',
  500: 'internal error',
};

function plain(status: number, message: string): Response {
  return new Response(`${message}\n`, { status, headers: TEXT });
}

/** The answer for `error`, recorded for the access line (status and error). */
export function refuse(c: Context<AppEnv>, error: ProxyError): Response {
  const status = statusFor(error.kind);
  const access = c.get('access');
  if (access !== undefined) {
    access.status = status;
    access.error = error.message;
  }
  const answer = plain(status, error.reply ?? GENERIC[status] ?? 'error');
  // RFC 6455 §4.4: a 426 to a WebSocket handshake says which version we speak.
  if (error.kind === 'websocket-version') answer.headers.set('sec-websocket-version', '13');
  // RFC 9110 §10.2.3: when to come back (no upstream available).
  if (error.retryAfterSeconds !== undefined) answer.headers.set('retry-after', String(error.retryAfterSeconds));
  // A body we stopped reading: nothing after it on this connection can be trusted to be a request.
  if (error.kind === 'body-timeout') answer.headers.set('connection', 'close');
  return answer;
}
