// `auth: { forward }` (issue 11): a subrequest to an auth service, like Caddy's forward_auth and
// nginx's auth_request. The service gets GET with the client's fields (no body, no hop-by-hop
// fields) plus X-Forwarded-Method / -Uri / -Host / -Proto / -For. A 2xx lets the request through,
// with the `copyHeaders` of the answer set on it (a client's own copies are removed first). Any
// other answer goes back to the client as it is: status, fields, body. A timeout or an
// unreachable service is a 504 / 502: never an open door.

import type { ForwardAuth } from '../config/types.ts';
import { HOP_BY_HOP } from '../http/hop-by-hop.ts';
import { classifyTransportError } from '../proxy/errors.ts';
import type { AuthContext, AuthOutcome, CompiledAuth } from './auth.ts';

const DEFAULT_TIMEOUT_MS = 5_000;
/** Request fields never sent to the auth service: they frame a body it does not get. */
const NOT_SENT = new Set([...HOP_BY_HOP, 'content-length', 'expect', 'host']);

export function compileForwardAuth(options: ForwardAuth): CompiledAuth {
  const url = new URL(options.url);
  const target = url.href;
  const hostPort = url.host;
  const copy = (options.copyHeaders ?? []).map((name) => name.toLowerCase());
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return {
    challenges: [],
    consumes: [],
    setsFields: copy,
    async check(headers: Headers, context?: AuthContext): Promise<AuthOutcome> {
      if (context === undefined) return { ok: false, reason: 'forward auth needs the request' };
      const sent = new Headers();
      for (const [name, value] of headers) if (!NOT_SENT.has(name) && !name.startsWith('x-forwarded-')) sent.append(name, value);
      sent.set('host', hostPort);
      sent.set('x-forwarded-method', context.method);
      sent.set('x-forwarded-uri', context.target);
      sent.set('x-forwarded-host', context.host);
      sent.set('x-forwarded-proto', context.proto);
      sent.set('x-forwarded-for', context.client);
      const signal = AbortSignal.any([context.signal, AbortSignal.timeout(timeoutMs)]);
      let answer: Response;
      try {
        answer = await context.transport.fetch(target, { method: 'GET', headers: sent, body: null, signal, connectTimeoutMs: timeoutMs });
      } catch (error) {
        const timedOut = signal.aborted && !context.signal.aborted;
        const problem = timedOut ? null : classifyTransportError(error, url.origin);
        return {
          ok: false,
          reason: timedOut ? `auth service ${url.origin} timed out` : `auth service: ${problem?.message ?? String(error)}`,
          unavailable: timedOut ? 504 : 502,
        };
      }
      if (answer.status >= 200 && answer.status < 300) {
        await answer.body?.cancel().catch(() => {});
        const fields: [string, string][] = [];
        for (const name of copy) {
          const value = answer.headers.get(name);
          if (value !== null) fields.push([name, value]);
        }
        return { ok: true, user: answer.headers.get('x-user') ?? 'forward', fields };
      }
      return { ok: false, reason: `auth service answered ${answer.status}`, response: answer };
    },
  };
}
