// Process entry for every runtime and for the compiled binary: run the CLI, exit with its code.
import { main } from './cli/main.ts';

const code = await main(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
// Give stdout/stderr pipes a turn to drain before exiting.
process.exitCode = code;
setTimeout(() => process.exit(code), 10);
