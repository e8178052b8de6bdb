// JSON-lines logging: one object a line on stdout, `time`, `level`, `msg` first. The sink and
// the clock are injected so tests read lines without touching stdout.

export type Level = 'info' | 'warn' | 'error';
export type Fields = Record<string, unknown>;

export interface Logger {
  log(level: Level, msg: string, fields?: Fields): void;
  /** Like `log`, with the fields already serialised as `,"k":v...` (the access log's hot path). */
  logSerialized(level: Level, msg: string, serializedFields: string): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  /** Flushes buffered lines; call before exit. */
  flush(): void;
}

export interface LoggerOptions {
  /** Receives whole lines, each ending in "\n". */
  readonly write: (text: string) => void;
  /** Epoch milliseconds. */
  readonly now?: () => number;
}

export function createLogger({ write, now = Date.now }: LoggerOptions): Logger {
  // Under load many lines share a millisecond: format its timestamp once.
  let lastMs = -1;
  let lastIso = '';
  const time = () => {
    const ms = now();
    if (ms !== lastMs) {
      lastMs = ms;
      lastIso = new Date(ms).toISOString();
    }
    return lastIso;
  };
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
  const append = (line: string) => {
    buffer += line;
    if (buffer.length > 65_536) flush();
    else if (!scheduled) {
      scheduled = true;
      setTimeout(flush, 0);
    }
  };
  const log = (level: Level, msg: string, fields?: Fields) => append(`${JSON.stringify({ time: time(), level, msg, ...fields })}\n`);
  return {
    log,
    logSerialized: (level, msg, serializedFields) => append(`{"time":"${time()}","level":"${level}","msg":${JSON.stringify(msg)}${serializedFields}}\n`),
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
