// Which runtime we run on. The only place that sniffs globals.

export type Runtime = 'bun' | 'deno' | 'node';

export function detectRuntime(): Runtime {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun !== undefined) return 'bun';
  if (g.Deno !== undefined) return 'deno';
  return 'node';
}
