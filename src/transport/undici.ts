// undici's dispatcher as the transport (Node, Deno; https: on Bun): raw bytes (no decompression),
// the Host header as given, no invented headers, keep-alive pools per origin, streaming both
// ways, and upgrades (the upstream's socket after a 101). It keeps the promises of types.ts.
// It uses the low-level dispatch handler API and feeds a web ReadableStream directly: going
// through undici's Node Readable and Readable.toWeb cost ~35% of throughput on Bun and Node.
// A route's upstream TLS settings (`init.tls`) get an agent of their own, so pools and TLS
// sessions are never shared between settings.
// Global fetch is no option: it drops Host and decompresses on Node and Deno, and adds headers
// and normalises paths on Bun (docs/runtimes.md).
// 'undici/index.js', not 'undici': on Bun the bare name is Bun's own shim (which decompresses).
import type { Duplex } from 'node:stream';
import { Agent, buildConnector, type Dispatcher, Pool } from 'undici/index.js';
import { bodilessHeaders, responseBodyIsNull } from '../http/body-rules.ts';
import { BODY_HIGH_WATER_BYTES, BODY_QUEUE, SMALL_BODY_BYTES } from '../http/buffering.ts';
import { headersFromFields, headersWithoutHopByHop } from '../http/hop-by-hop.ts';
import { plainReason } from '../http/reason.ts';
import { duplexByteStream } from '../tunnel/node-socket-stream.ts';
import { lookupWithLocalhost } from './localhost.ts';
import { IDLE_KEEP_ALIVE_MS, type Transport, type UpgradeResult, UpstreamError, type UpstreamInit, type UpstreamTlsOptions } from './types.ts';

type Fields = Record<string, string | string[] | undefined>;

// The host of each upstream origin (an IP literal too), computed once per origin: the
// `servername` every request of an origin gives undici. undici compares it with its
// connection's and reconnects when they differ, and without one takes the client's Host
// (core/request.js), so it must be fixed per origin. What SNI carries and which name the
// certificate must show is the connector's decision (`connectorFor`), not this value's.
const hostnames = new Map<string, string>();
function hostnameOf(origin: string): string {
  let hostname = hostnames.get(origin);
  if (hostname === undefined) {
    hostname = new URL(origin).hostname;
    hostnames.set(origin, hostname);
  }
  return hostname;
}

/** Options of every agent: the proxy enforces its own header timeout per route; the body may take as long as it takes. */
const AGENT_OPTIONS = { headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: IDLE_KEEP_ALIVE_MS } as const;

/** How every connection is opened: `localhost` may be served on ::1 or 127.0.0.1 only, so both are offered and tried (RFC 8305). */
const CONNECT_OPTIONS = { lookup: lookupWithLocalhost, autoSelectFamily: true, autoSelectFamilyAttemptTimeout: 250 } as const;

/** node:tls client options for a route's settings (Bun and Deno take them through their node:tls). */
function tlsConnectOptions(tls: UpstreamTlsOptions): { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean } {
  const options: { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean } = { rejectUnauthorized: !tls.insecure };
  // Only the keys given: an explicit `ca: undefined` must still mean the system roots.
  if (tls.ca !== undefined) options.ca = tls.ca;
  if (tls.cert !== undefined) options.cert = tls.cert;
  if (tls.key !== undefined) options.key = tls.key;
  return options;
}

/**
 * One origin's connector: undici's own (its TLS session cache per origin, as undici keeps it),
 * with SNI and the verification name fixed to `tls.serverName`, else the origin's host (none
 * for an IP literal, which is then checked against the certificate's IP names). undici would
 * otherwise hand on the request's servername, which falls back to the client's Host header.
 */
function connectorFor(tls: UpstreamTlsOptions | undefined, connectTimeoutMs: number | undefined): buildConnector.connector {
  // undici's connector times the connect itself (UND_ERR_CONNECT_TIMEOUT); its default is 10 s.
  const base = connectTimeoutMs === undefined ? CONNECT_OPTIONS : { ...CONNECT_OPTIONS, timeout: connectTimeoutMs };
  const connect = buildConnector(tls === undefined ? base : { ...base, ...tlsConnectOptions(tls) });
  const servername = tls?.serverName;
  return function connectUpstream(options, callback) {
    return connect({ ...options, servername }, callback);
  };
}

/**
 * An agent for one set of TLS settings (or none) and connect timeout: a pool per origin, each
 * with its own connector. `fresh`: keep-alive off (undici's `pipelining: 0`), so every request
 * gets a new connection and leaves none behind (health checks, the stale-connection retry).
 */
function createAgent(tls: UpstreamTlsOptions | undefined, connectTimeoutMs: number | undefined, fresh: boolean): Agent {
  return new Agent({
    ...AGENT_OPTIONS,
    ...(fresh ? { pipelining: 0 } : {}),
    factory: (origin, options) => new Pool(origin, { ...options, connect: connectorFor(tls, connectTimeoutMs) }),
  });
}

/**
 * undici's error as an UpstreamError with the facts the retry policy reads. `requestStarted`:
 * undici had handed the request to a connection (onRequestStart ran); before that nothing was
 * written. undici does not say whether that connection had served an earlier request, so
 * `reusedConnection` is always false (a stale pooled connection looks like a plain reset).
 */
function upstreamError(error: Error, requestStarted: boolean, responseStarted: boolean): UpstreamError {
  if (error instanceof UpstreamError) return error;
  const code = (error as { code?: unknown }).code;
  // undici's own code, or none: its cause's code and the message then name the failure.
  return new UpstreamError(
    error.message,
    typeof code === 'string' && code ? code : undefined,
    { connectFailed: !requestStarted, reusedConnection: false, responseStarted },
    { cause: error },
  );
}

/** `init.headers` as undici takes them, and the `upgrade` value it writes itself. */
function upgradeFields(headers: Headers): { fields: string[]; upgrade: string } {
  // undici refuses Connection and Upgrade among the headers of an upgrade request: it writes
  // `connection: upgrade` and `upgrade: <value>` itself, right after Host.
  const fields: string[] = []; // flat: name, value, name, value...
  let upgrade = '';
  for (const [name, value] of headers) {
    if (name === 'upgrade') upgrade = value;
    else if (name !== 'connection') fields.push(name, value);
  }
  return { fields, upgrade };
}

interface Exchange {
  readonly origin: string;
  readonly path: string;
  readonly method: string;
  readonly headers: Iterable<[string, string]> | string[];
  readonly body: ReadableStream<Uint8Array> | null;
  readonly signal: AbortSignal;
  /** The route's upstream TLS settings; none: system roots, the URL's host. */
  readonly tls: UpstreamTlsOptions | undefined;
  readonly connectTimeoutMs: number | undefined;
  readonly bodyIdleTimeoutMs: number | null | undefined;
  /** A new connection, not kept afterwards. */
  readonly fresh: boolean;
  /** Set for upgrade requests: undici writes Connection and Upgrade itself. */
  readonly upgrade?: string;
  /** Set for upgrade requests: the 101 and the upstream's socket. */
  readonly onUpgrade?: (headers: Fields, socket: Duplex) => void;
}

export function createUndiciTransport(): Transport {
  // A route's TLS settings are one object for all its requests (compiled once): one agent each
  // and per connect timeout (a connector option), made on first use (an http: origin in it is a
  // plain pool: TLS options apply to https: only). Most routes share the default timeout, so
  // one agent. `agents` holds every agent made, for close(); one whose settings are gone (a
  // reload) stays until then, its connections closing once idle (IDLE_KEEP_ALIVE_MS).
  // Keyed by connect timeout, negated for the fresh (no keep-alive) agents.
  const plainAgents = new Map<number, Agent>();
  const tlsAgents = new WeakMap<UpstreamTlsOptions, Map<number, Agent>>();
  const agents = new Set<Agent>();
  // The common case (plain http:, one timeout for every route) without a map lookup.
  let lastPlainMs = Number.NaN;
  let lastPlain: Agent | undefined;
  const agentFor = (tls: UpstreamTlsOptions | undefined, connectTimeoutMs: number | undefined, fresh: boolean): Agent => {
    const ms = connectTimeoutMs ?? 0;
    if (tls === undefined && !fresh && ms === lastPlainMs) return lastPlain as Agent;
    let byTimeout = tls === undefined ? plainAgents : tlsAgents.get(tls);
    if (byTimeout === undefined) {
      byTimeout = new Map();
      tlsAgents.set(tls as UpstreamTlsOptions, byTimeout);
    }
    const key = fresh ? -ms - 1 : ms;
    let agent = byTimeout.get(key);
    if (agent === undefined) {
      agent = createAgent(tls, connectTimeoutMs, fresh);
      byTimeout.set(key, agent);
      agents.add(agent);
    }
    if (tls === undefined && !fresh) {
      lastPlainMs = ms;
      lastPlain = agent;
    }
    return agent;
  };

  /** One exchange: resolves with the response once its head is in (or rejects with an UpstreamError). */
  function exchange(x: Exchange): Promise<Response> {
    const { method, signal } = x;
    return new Promise<Response>((resolve, reject) => {
      let control: Dispatcher.DispatchController | null = null;
      let stream: ReadableStreamDefaultController<Uint8Array> | null = null;
      // The response head once it is known; null for HEAD and null-body statuses.
      let head: ResponseInit | null = null;
      let declaredLength = false;
      let smallBody = false;
      let awaitingWhole = false;
      let resolved = false;
      let responseStarted = false;
      let ended = false;
      let early: Buffer[] = [];
      let earlyBytes = 0;
      const onAbort = () => control?.abort(signal.reason);
      const cleanup = () => signal.removeEventListener('abort', onAbort);
      const fail = (error: Error) => {
        cleanup();
        // An abort rejects with the signal's reason, as fetch does; the rest with the facts.
        const reason = signal.aborted ? signal.reason : upstreamError(error, control !== null, responseStarted);
        if (!resolved) {
          resolved = true;
          reject(reason);
        } else stream?.error(reason);
      };
      const settle = (response: Response) => {
        resolved = true;
        resolve(response);
      };
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });

      // Hands the response over one microtask after its head: bytes undici parsed in the same
      // pass (a small body usually arrives with its head) are in `early` by then. A body that is
      // already complete and declared its length goes out as bytes, sparing a stream per
      // response; anything else streams, starting with what arrived early.
      const handOver = (controller: Dispatcher.DispatchController) => {
        if (resolved || head === null) return;
        // A small declared body still on its way is awaited whole (bounded, like nginx's
        // proxy buffers): if it breaks, the client gets a clean 502, not a truncated answer.
        if (!ended && declaredLength && smallBody) {
          awaitingWhole = true;
          return;
        }
        if (ended && declaredLength) {
          const bytes = early.length === 1 ? (early[0] as Buffer) : Buffer.concat(early, earlyBytes);
          settle(new Response(bytes as unknown as Uint8Array<ArrayBuffer>, head));
          return;
        }
        const body = new ReadableStream<Uint8Array>(
          {
            start(c) {
              stream = c;
              for (const chunk of early) c.enqueue(chunk);
              early = [];
              if (ended) c.close();
            },
            pull() {
              if (controller.paused) controller.resume();
            },
            cancel(reason) {
              cleanup();
              controller.abort(reason instanceof Error ? reason : new Error('response body cancelled'));
            },
          },
          BODY_QUEUE,
        );
        settle(new Response(body, head));
      };

      const handler: Dispatcher.DispatchHandler = {
        onRequestStart(controller) {
          control = controller;
          if (signal.aborted) controller.abort(signal.reason);
        },
        onRequestUpgrade(controller, _statusCode, headers, socket) {
          cleanup();
          resolved = true;
          if (x.onUpgrade === undefined) {
            // Not asked for: undici only upgrades when the request named a protocol.
            socket.destroy();
            controller.abort(new Error('unexpected upgrade'));
            return;
          }
          x.onUpgrade(headers as Fields, socket);
        },
        onResponseStart(controller, statusCode, headers, statusMessage) {
          // 1xx informational answers (100 Continue, 103 Early Hints) are not the response.
          if (statusCode < 200) return;
          responseStarted = true;
          // RFC 9110 §15: three digits; a Response cannot carry more than 599 either.
          if (statusCode > 599) {
            const error = new UpstreamError(`invalid status ${statusCode}`, 'UPSTREAM_INVALID_STATUS', {
              connectFailed: false,
              reusedConnection: false,
              responseStarted: true,
            });
            fail(error);
            controller.abort(error);
            return;
          }
          // A reason phrase is optional (RFC 9112 §4); one no header may carry is dropped.
          const statusText = plainReason(statusMessage);
          const init = { status: statusCode, statusText, headers: headersWithoutHopByHop(headers as Fields) };
          if (responseBodyIsNull(method, statusCode)) {
            init.headers = bodilessHeaders(statusCode, init.headers);
            settle(new Response(null, init));
            return;
          }
          head = init;
          const length = headers['content-length'];
          declaredLength = length !== undefined;
          smallBody = declaredLength && Number(length) <= SMALL_BODY_BYTES;
          queueMicrotask(() => {
            try {
              handOver(controller);
            } catch (error) {
              // Never leave the caller waiting: whatever broke here is the upstream's answer.
              fail(error as Error);
              controller.abort(error as Error);
            }
          });
        },
        onResponseData(controller, chunk) {
          if (head === null) return; // body of a HEAD / null-body answer: ignored
          if (stream === null) {
            early.push(chunk);
            earlyBytes += chunk.byteLength;
            if (earlyBytes >= BODY_HIGH_WATER_BYTES && !smallBody) controller.pause();
            return;
          }
          stream.enqueue(chunk);
          if ((stream.desiredSize ?? 1) <= 0) controller.pause();
        },
        onResponseEnd(controller) {
          cleanup();
          ended = true;
          stream?.close();
          if (awaitingWhole) handOver(controller);
        },
        onResponseError(_controller, error) {
          fail(error);
        },
      };

      agentFor(x.tls, x.connectTimeoutMs, x.fresh).dispatch(
        {
          // undici's body timeout does not run while the stream is paused for a slow reader.
          bodyTimeout: x.bodyIdleTimeoutMs ?? 0,
          origin: x.origin,
          path: x.path,
          // A fixed value per origin, never the client's Host (see hostnameOf).
          servername: hostnameOf(x.origin),
          method: method as Dispatcher.HttpMethod,
          headers: x.headers as Iterable<[string, string]>,
          // A web ReadableStream is an async iterable on every runtime; undici streams it.
          body: x.body as unknown as import('node:stream').Readable | null,
          upgrade: x.upgrade,
          // `servername` is a Request option undici's types do not list.
        } as Dispatcher.DispatchOptions,
        handler,
      );
    });
  }

  const split = (url: string) => {
    const pathStart = url.indexOf('/', url.indexOf('//') + 2);
    return { origin: url.slice(0, pathStart), path: url.slice(pathStart) };
  };

  return {
    name: 'undici',
    // `init.fresh` goes through an agent without keep-alive: a new connection, closed after.
    fetch: function undiciTransport(url: string, init: UpstreamInit) {
      const { origin, path } = split(url);
      return exchange({
        origin,
        path,
        method: init.method,
        headers: init.headers as unknown as Iterable<[string, string]>,
        body: init.body,
        signal: init.signal,
        tls: init.tls,
        connectTimeoutMs: init.connectTimeoutMs,
        bodyIdleTimeoutMs: init.bodyIdleTimeoutMs,
        fresh: init.fresh === true,
      });
    },
    upgrade: function undiciUpgrade(url: string, init: UpstreamInit): Promise<UpgradeResult> {
      const { origin, path } = split(url);
      const { fields, upgrade } = upgradeFields(init.headers);
      if (upgrade === '') return Promise.reject(new TypeError('an upgrade request needs an Upgrade field'));
      // undici 7 answers a non-101 to an upgrade request through the ordinary response
      // callbacks (client-h1.js: only a 101 takes the upgrade path), so both outcomes come back.
      return new Promise<UpgradeResult>((resolve, reject) => {
        exchange({
          origin,
          path,
          method: init.method,
          headers: fields,
          body: init.body,
          signal: init.signal,
          tls: init.tls,
          connectTimeoutMs: init.connectTimeoutMs,
          bodyIdleTimeoutMs: undefined,
          fresh: false,
          upgrade,
          // A 101's hop-by-hop fields (Upgrade, Connection) are its substance: all kept.
          onUpgrade: (headers, socket) =>
            resolve({
              switched: true,
              headers: headersFromFields(headers),
              stream: duplexByteStream(socket),
            }),
        }).then((response) => resolve({ switched: false, response }), reject);
      });
    },
    // Called after the grace period: whatever is still in flight is cut, on every agent.
    close: async () => {
      await Promise.all(Array.from(agents, (a) => a.destroy()));
    },
  };
}
