// `switchyard serve`: the lifecycle in order: load, validate, compile, listen, serve, stop.
import { createApp } from '../app.ts';
import { compileConfig, parseListen } from '../config/compile.ts';
import { loadConfig } from '../config/load.ts';
import { createLogger, stdoutWriter } from '../log/logger.ts';
import { listen } from '../server/index.ts';
import type { Runtime } from '../server/runtime.ts';
import { createTransport } from '../transport/index.ts';
import { VERSION } from '../version.ts';

export interface ServeOptions {
  readonly routes: string;
  readonly listen: string | undefined;
  readonly runtime: Runtime;
  /** Where human-readable startup errors go. */
  readonly stderr: (text: string) => void;
}

/** Runs until a signal stops it; returns the exit code. */
export async function serve(options: ServeOptions): Promise<number> {
  const loaded = await loadConfig(options.routes, options.runtime);
  if (!loaded.ok) {
    options.stderr(`switchyard: invalid routes file ${loaded.file}:\n${loaded.problems.map((p) => `  ${p}`).join('\n')}\n`);
    return 1;
  }
  const config = compileConfig(loaded.config);
  const address = options.listen ? parseListen(options.listen) : config.listen;
  const logger = createLogger({ write: await stdoutWriter() });

  // Bad input must never take the process down: log what escaped and keep serving.
  process.on('uncaughtException', (error) => logger.error('uncaught exception', { error: error?.stack ?? String(error) }));
  process.on('unhandledRejection', (reason) => logger.error('unhandled rejection', { error: (reason as Error)?.stack ?? String(reason) }));

  const transport = await createTransport(options.runtime);
  const app = createApp({ config, transport: transport.fetch, logger });
  let listener: Awaited<ReturnType<typeof listen>>;
  try {
    listener = await listen(options.runtime, (request, conn) => app.fetch(request, conn), {
      hostname: address.hostname,
      port: address.port,
      maxHeaderBytes: config.maxHeaderBytes,
      onBadRequest: (info) => logger.warn('bad request', info),
    });
  } catch (error) {
    options.stderr(`switchyard: cannot listen on ${address.hostname}:${address.port}: ${(error as Error).message}\n`);
    return 1;
  }
  logger.info('listening', {
    address: listener.hostname,
    port: listener.port,
    runtime: options.runtime,
    transport: transport.name,
    routes: config.routes.length,
    file: loaded.file,
    version: VERSION,
  });
  logger.flush();

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info('stopping', { signal, grace_ms: config.shutdownGraceMs });
      logger.flush();
      await listener.stop(config.shutdownGraceMs);
      await transport.close().catch(() => {}); // closing idle sockets at exit cannot fail usefully
      logger.info('stopped');
      logger.flush();
      resolve(0);
    };
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
  });
}
