// `switchyard serve`: the lifecycle in order: load, validate, compile, publish, listen, serve,
// stop (every listener with one grace period, then the transport).
import { createApp } from '../app.ts';
import { compileConfig, parseListen } from '../config/compile.ts';
import { loadConfig } from '../config/load.ts';
import { createConfigSource } from '../config/source.ts';
import { createLogger, stdoutWriter } from '../log/logger.ts';
import { type ListenerGroup, listenAll } from '../server/index.ts';
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
  const app = createApp({ config: createConfigSource(config), transport, logger });
  let group: ListenerGroup;
  try {
    group = await listenAll(options.runtime, (request, env) => app.fetch(request, env), [
      {
        name: 'http',
        hostname: address.hostname,
        port: address.port,
        proto: 'http',
        maxHeaderBytes: config.maxHeaderBytes,
        onBadRequest: (info) => logger.warn('bad request', info),
      },
    ]);
  } catch (error) {
    // listenAll names the listener and its address; a bare runtime error gets ours.
    const message = error instanceof Error ? error.message : String(error);
    options.stderr(`switchyard: ${message.startsWith('cannot listen') ? message : `cannot listen on ${address.hostname}:${address.port}: ${message}`}\n`);
    await transport.close().catch(() => {}); // nothing was pooled yet; exiting anyway
    return 1;
  }
  for (const listener of group.listeners) {
    logger.info('listening', {
      address: listener.hostname,
      port: listener.port,
      runtime: options.runtime,
      transport: transport.name,
      routes: config.routes.length,
      file: loaded.file,
      version: VERSION,
      listener: listener.name,
      tls: listener.proto === 'https',
    });
  }
  logger.flush();

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info('stopping', { signal, grace_ms: config.shutdownGraceMs });
      logger.flush();
      await group.stop(config.shutdownGraceMs);
      await transport.close().catch(() => {}); // closing idle sockets at exit cannot fail usefully
      logger.info('stopped');
      logger.flush();
      resolve(0);
    };
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
  });
}
