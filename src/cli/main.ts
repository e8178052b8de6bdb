// The CLI dispatcher: argv in, exit code out. No process.exit below this file.
import { loadConfig } from '../config/load.ts';
import { loadTlsFiles } from '../config/tls-files.ts';
import { detectRuntime } from '../server/runtime.ts';
import { runtimePairsProblem } from '../tls/context.ts';
import { VERSION } from '../version.ts';
import { parseCommand } from './args.ts';
import { initDirectory } from './init.ts';
import { serve } from './serve.ts';
import { USAGE } from './usage.ts';

export interface Io {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

export async function main(argv: readonly string[], io: Io): Promise<number> {
  const command = parseCommand(argv);
  const runtime = detectRuntime();
  switch (command.kind) {
    case 'help':
      io.stdout(USAGE);
      return 0;
    case 'version':
      io.stdout(`switchyard ${VERSION}\n`);
      return 0;
    case 'usage-error':
      io.stderr(`switchyard: ${command.message}\n\n${USAGE}`);
      return 2;
    case 'check': {
      const loaded = await loadConfig(command.routes, runtime);
      // The files TLS settings name are checked as a start would check them.
      const files = loaded.ok ? await loadTlsFiles(loaded.config, loaded.file) : null;
      const problems = loaded.ok ? (files?.ok === false ? files.problems : []) : loaded.problems;
      // What this runtime cannot serve (tls/context.ts) is a problem here as it is at serve.
      const unservable = files?.ok ? runtimePairsProblem(runtime, files.files.pairs) : undefined;
      if (unservable !== undefined) problems.push(unservable);
      if (loaded.ok && problems.length === 0) {
        const certificates = loaded.config.tls ? `, ${loaded.config.tls.certificates.length} certificates` : '';
        io.stdout(`${loaded.file}: ok (${loaded.config.routes.length} routes${certificates})\n`);
        if (files?.ok) for (const warning of files.files.warnings) io.stdout(`  warning: ${warning}\n`);
        return 0;
      }
      io.stderr(`${loaded.file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
      return 1;
    }
    case 'init': {
      const result = await initDirectory(command.dir, command.force);
      if (result.refused.length) {
        io.stderr(`switchyard: not overwriting ${result.refused.join(', ')} (use --force)\n`);
        return 1;
      }
      io.stdout(`wrote ${result.written.join(', ')}\n`);
      return 0;
    }
    case 'serve':
      return serve({ routes: command.routes, listen: command.listen, runtime, stderr: io.stderr });
  }
}
