// `switchyard serve`: the lifecycle in order: load, validate, compile, publish, listen, serve,
// stop (every listener with one grace period, then the transport).

import { dirname } from 'node:path';
import type { SecureContext } from 'node:tls';
import { RateLimiters } from '../access/limiters.ts';
import { createApp } from '../app.ts';
import { Balancers } from '../balancer/state.ts';
import { compileConfig, parseListen } from '../config/compile.ts';
import { loadConfig } from '../config/load.ts';
import { createConfigSource } from '../config/source.ts';
import { loadPair, loadTlsFiles } from '../config/tls-files.ts';
import { createLogger, stdoutWriter } from '../log/logger.ts';
import { type ListenerGroup, type ListenerSpec, listenAll } from '../server/index.ts';
import { ConnectionGate } from '../server/limits.ts';
import type { Runtime } from '../server/runtime.ts';
import { createListenerStore } from '../tls/context.ts';
import { type Reloader, startReloader } from '../tls/reload.ts';
import { type CertificateStore, CertificateStoreError } from '../tls/store.ts';
import { createTransport } from '../transport/index.ts';
import { TunnelRegistry } from '../tunnel/registry.ts';
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
  const tlsFiles = await loadTlsFiles(loaded.config, loaded.file);
  if (!tlsFiles.ok) {
    options.stderr(`switchyard: cannot start with ${loaded.file}:\n${tlsFiles.problems.map((p) => `  ${p}`).join('\n')}\n`);
    return 1;
  }
  const config = compileConfig(loaded.config, tlsFiles.files);
  const address = options.listen ? parseListen(options.listen) : config.listen;
  let store: CertificateStore<SecureContext> | null = null;
  if (config.tls !== null) {
    try {
      store = createListenerStore(options.runtime, tlsFiles.files.pairs, config.tls.clientAuth?.ca ?? null);
    } catch (error) {
      const problems = error instanceof CertificateStoreError ? error.problems : [String(error)];
      options.stderr(`switchyard: cannot start with ${loaded.file}:\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
      return 1;
    }
  }
  const logger = createLogger({ write: await stdoutWriter() });
  for (const warning of tlsFiles.files.warnings) logger.warn('tls', { warning });

  // Bad input must never take the process down: log what escaped and keep serving.
  process.on('uncaughtException', (error) => logger.error('uncaught exception', { error: error?.stack ?? String(error) }));
  process.on('unhandledRejection', (reason) => logger.error('unhandled rejection', { error: (reason as Error)?.stack ?? String(reason) }));

  const transport = await createTransport(options.runtime);
  let httpsPort: number | null = null;
  const tunnels = new TunnelRegistry();
  // Upstream health lives here, outside the config: a reload keeps it for unchanged routes.
  const balancers = new Balancers({ logger, transport });
  balancers.sync(config);
  // Rate-limit counts too (and the Redis connection, made only if a limit uses it).
  const limiters = new RateLimiters({ logger });
  limiters.sync(config);
  // Up to 3 s for Redis before listening, so the first requests are counted (not decided by
  // onStoreDown); a Redis that is not there by then is logged and handled per onStoreDown.
  await limiters.ready(3_000);
  const app = createApp({ config: createConfigSource(config), transport, logger, httpsPort: () => httpsPort, tunnels, balancers, limiters });
  // One gate for every listener: the caps count the process's connections, not one port's.
  const limits = config.clientLimits;
  const gate = new ConnectionGate(limits, (report) =>
    logger.warn('connections refused', { ...report, max_connections: limits.maxConnections, max_per_ip: limits.maxConnectionsPerIp }),
  );
  const onBadRequest: ListenerSpec['onBadRequest'] = (info) => logger.warn('bad request', info);
  // Every listener hands over connections that ask to switch protocols: WebSocket tunnels.
  const shared = { maxHeaderBytes: config.maxHeaderBytes, limits, gate, upgrades: true, onBadRequest } as const;
  const specs: ListenerSpec[] = [{ name: 'http', hostname: address.hostname, port: address.port, proto: 'http', ...shared }];
  if (config.tls !== null && store !== null) {
    specs.push({
      name: 'https',
      hostname: config.tls.listen.hostname,
      port: config.tls.listen.port,
      proto: 'https',
      ...shared,
      tls: { store, clientAuth: config.tls.clientAuth },
    });
  }
  let group: ListenerGroup;
  try {
    group = await listenAll(options.runtime, (request, env) => app.fetch(request, env), specs);
  } catch (error) {
    // listenAll names the listener and its address; a bare runtime error gets ours.
    const message = error instanceof Error ? error.message : String(error);
    options.stderr(`switchyard: ${message.startsWith('cannot listen') ? message : `cannot listen on ${address.hostname}:${address.port}: ${message}`}\n`);
    balancers.stop();
    limiters.stop();
    await transport.close().catch(() => {}); // nothing was pooled yet; exiting anyway
    return 1;
  }
  httpsPort = group.listeners.find((l) => l.proto === 'https')?.port ?? null;
  let reloader: Reloader | null = null;
  if (store !== null) {
    const pairStore = store;
    reloader = await startReloader({ store: pairStore, files: tlsFiles.files.pairFiles, load: (files) => loadPair(files, dirname(loaded.file)), logger });
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
      alpn: listener.alpn ?? [],
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
      reloader?.stop();
      balancers.stop();
      limiters.stop();
      // Tunnels get close 1001 on both sides and the same grace as requests in flight.
      await Promise.all([group.stop(config.shutdownGraceMs), tunnels.goAway(config.shutdownGraceMs)]);
      gate.close();
      await transport.close().catch(() => {}); // closing idle sockets at exit cannot fail usefully
      logger.info('stopped');
      logger.flush();
      resolve(0);
    };
    // SIGHUP: certificates are read again now (a file change is picked up within a second anyway).
    if (reloader !== null) {
      const r = reloader;
      process.on('SIGHUP', () => void r.reloadAll('SIGHUP').then(() => logger.flush()));
    }
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
  });
}
