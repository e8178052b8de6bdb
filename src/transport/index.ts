// The transport for every runtime: undici's dispatcher (docs/runtimes.md has the measurements
// against Bun's fetch, node:http and Readable-based undici that led here).
import type { ClosableTransport } from './types.ts';

export type { ClosableTransport, Transport, UpstreamInit } from './types.ts';

export async function createTransport(): Promise<ClosableTransport> {
  return (await import('./undici.ts')).createUndiciTransport();
}
