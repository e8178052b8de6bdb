// Runs the transport conformance cases (transport.cases.ts) against this runtime's transports:
// Bun: bun-socket (http:) and undici; Node and Deno: undici. The upstream TLS cases run against
// undici only: it serves https: upstreams on every runtime (index.ts).
import { detectRuntime } from '../server/runtime.ts';
import { tlsTransportCases, transportCases } from './transport.cases.ts';
import { createUndiciTransport } from './undici.ts';

transportCases('undici', createUndiciTransport);
tlsTransportCases('undici', createUndiciTransport);

if (detectRuntime() === 'bun') {
  const { createBunSocketTransport } = await import('./bun-socket.ts');
  transportCases('bun-socket', createBunSocketTransport as never);
}
