// Command-line parsing: pure, so every bad flag gets a tested message and exit code 2.
import { parseArgs } from 'node:util';
import { listenProblem } from '../config/schema.ts';

export type Command =
  | { kind: 'serve'; routes: string; listen: string | undefined }
  | { kind: 'check'; routes: string }
  | { kind: 'init'; dir: string; force: boolean }
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'usage-error'; message: string };

const DEFAULT_ROUTES = 'routes.ts';

export function parseCommand(argv: readonly string[]): Command {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    return { kind: 'usage-error', message: (error as Error).message.split('\n')[0] ?? 'bad arguments' };
  }
  const { values, positionals } = parsed;
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  const [first, ...rest] = positionals;
  const command = first ?? 'serve';
  switch (command) {
    case 'serve': {
      if (rest.length) return { kind: 'usage-error', message: `unexpected argument "${rest[0]}"` };
      if (values.listen !== undefined) {
        const problem = listenProblem(values.listen);
        if (problem) return { kind: 'usage-error', message: `--listen ${values.listen}: ${problem}` };
      }
      if (values.force) return { kind: 'usage-error', message: '--force only goes with init' };
      return { kind: 'serve', routes: values.routes ?? DEFAULT_ROUTES, listen: values.listen };
    }
    case 'check': {
      if (rest.length > 1) return { kind: 'usage-error', message: `unexpected argument "${rest[1]}"` };
      if (values.listen !== undefined || values.force) return { kind: 'usage-error', message: 'check takes only a routes file' };
      if (rest[0] && values.routes) return { kind: 'usage-error', message: 'give the routes file once' };
      return { kind: 'check', routes: rest[0] ?? values.routes ?? DEFAULT_ROUTES };
    }
    case 'init': {
      if (rest.length > 1) return { kind: 'usage-error', message: `unexpected argument "${rest[1]}"` };
      if (values.listen !== undefined || values.routes !== undefined) return { kind: 'usage-error', message: 'init takes only a directory and --force' };
      return { kind: 'init', dir: rest[0] ?? '.', force: values.force ?? false };
    }
    default:
      return { kind: 'usage-error', message: `unknown command "${command}"` };
  }
}

const OPTIONS = {
  routes: { type: 'string', short: 'r' },
  listen: { type: 'string', short: 'l' },
  force: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;
