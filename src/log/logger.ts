// JSON-lines logging: one object a line on stdout, `time`, `level`, `msg` first. The sink and
// the clock are injected so tests read lines without touching stdout.

export type Level = 'info' | 'warn' | 'error';
export type Fields = Record<string, unknown>;

export interface Logger {
  log(level: Level, msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  /** Flushes buffered lines; call before exit. */
  flush(): void;
}

export interface LoggerOptions {
  /** Receives whole lines, each ending in "\n". */
  readonly write: (text: string) => void;
  readonly now?: () => Date;
}

export function createLogger({ write, now = () => new Date() }: LoggerOptions): Logger {
  // Lines written in one turn of the event loop go out in one write: under load that is one
  // syscall for many access-log lines instead of one each.
  let buffer = '';
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (buffer === '') return;
    const text = buffer;
    buffer = '';
    write(text);
  };
  const log = (level: Level, msg: string, fields?: Fields) => {
    buffer += `${JSON.stringify({ time: now().toISOString(), level, msg, ...fields })}\n`;
    if (buffer.length > 65_536) flush();
    else if (!scheduled) {
      scheduled = true;
      setTimeout(flush, 0);
    }
  };
  return {
    log,
    info: (msg, fields) => log('info', msg, fields),
    warn: (msg, fields) => log('warn', msg, fields),
    error: (msg, fields) => log('error', msg, fields),
    flush,
  };
}

/** A sink writing to the process's stdout on any of the three runtimes. */
export async function stdoutWriter(): Promise<(text: string) => void> {
  const { writeSync } = await import('node:fs');
  // writeSync to fd 1: ordered, never lost at exit, and the same on Bun, Deno and Node. EAGAIN
  // on a non-blocking pipe is retried; a closed stdout (EPIPE) drops the line rather than crash.
  return (text) => {
    let bytes = Buffer.from(text);
    for (let tries = 0; bytes.length > 0 && tries < 1000; tries++) {
      try {
        const n = writeSync(1, bytes);
        bytes = bytes.subarray(n);
      } catch (error) {
        if ((error as { code?: string }).code !== 'EAGAIN') return;
      }
    }
  };
}
