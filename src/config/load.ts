// Loading routes.ts from disk at run time on any of the three runtimes, then validating it.
// Bun and Deno import TypeScript natively; Node 20 cannot, so the file is transpiled with
// sucrase (type stripping only) and imported from a data: URL.
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Runtime } from '../server/runtime.ts';
import { validateConfig } from './schema.ts';
import type { Config } from './types.ts';

export type LoadResult = { ok: true; config: Config; file: string } | { ok: false; problems: string[]; file: string };

export async function loadConfig(path: string, runtime: Runtime): Promise<LoadResult> {
  const file = isAbsolute(path) ? path : resolve(path);
  let module: { default?: unknown };
  try {
    module = await importRoutes(file, runtime);
  } catch (error) {
    return { ok: false, file, problems: [`${file}: ${describeLoadError(error)}`] };
  }
  if (!module || module.default === undefined) {
    return { ok: false, file, problems: [`${file}: no default export (write \`export default { routes: [...] }\`)`] };
  }
  const result = validateConfig(module.default);
  return result.ok ? { ok: true, config: result.config, file } : { ok: false, file, problems: result.problems };
}

async function importRoutes(file: string, runtime: Runtime): Promise<{ default?: unknown }> {
  // Read first: a missing or unreadable file gets a plain message on every runtime.
  const source = await readFile(file, 'utf8');
  if (runtime !== 'node' || /\.(m?js)$/.test(file)) {
    // A query string makes each load a fresh module, which live reload will rely on.
    return import(`${pathToFileURL(file).href}?v=${Date.now()}`);
  }
  const { transform } = await import('sucrase');
  const { code } = transform(source, { transforms: ['typescript'], filePath: file, disableESTransforms: true });
  return import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`);
}

function describeLoadError(error: unknown): string {
  const code = (error as { code?: string })?.code;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory, expected a routes.ts file';
  const message = error instanceof Error ? error.message : String(error);
  return `cannot load: ${message.split('\n')[0]}`;
}
