// A real redis-server for tests (the Debian package; `make test` installs it when missing), on a
// free loopback port, without persistence. Stopped, killed and restarted by its PID.
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly pid: number;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
  /** A new server on the same port (after `kill`), empty. */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: a Redis that accepts nothing and answers nothing. */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

function launch(port: number): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (error) {
      reject(error);
      return;
    }
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server on ${port} did not start: ${out}`));
    }, 5_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run redis-server (make test installs the Debian package redis-server): ${error.message}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server on ${port} exited with ${code}: ${out}`));
    });
    // With --loglevel warning nothing is printed when all is well: poll the port instead.
    child.stdout?.on('data', (d) => {
      out += d;
    });
    child.stderr?.on('data', (d) => {
      out += d;
    });
    const poll = () => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.write('PING\r\n');
        socket.once('data', () => {
          socket.destroy();
          clearTimeout(timer);
          child.removeAllListeners('exit');
          resolve(child);
        });
      });
      socket.once('error', () => {
        socket.destroy();
        setTimeout(poll, 20);
      });
    };
    poll();
  });
}

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));

export async function startRedis(): Promise<RedisServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    let child: ChildProcess;
    try {
      child = await launch(port);
    } catch (error) {
      lastError = error;
      if (String(error).includes('cannot run')) throw error;
      continue;
    }
    const server: RedisServer = {
      port,
      url: `redis://127.0.0.1:${port}`,
      get pid() {
        return child.pid as number;
      },
      async kill() {
        child.kill('SIGKILL');
        await exited(child);
      },
      async restart() {
        child = await launch(port);
      },
      pause() {
        child.kill('SIGSTOP');
      },
      resume() {
        child.kill('SIGCONT');
      },
      async stop() {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
        await exited(child);
      },
    };
    return server;
  }
  throw lastError;
}
