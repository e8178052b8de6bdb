// Waiting helpers for unit tests that drive real sockets: every wait has a deadline, so a
// broken case fails with a message instead of hanging the suite.

/** True on Bun, where the suites for our own HTTP/1.1 server and client run. */
export const onBun = typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `promise`, or a rejection naming `what` after `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Polls `check` every 5 ms until it holds, or throws naming `what` after `ms`. */
export async function until(check: () => boolean, ms: number, what: string | (() => string)): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms: ${typeof what === 'string' ? what : what()}`);
    await sleep(5);
  }
}

/** A promise the test opens when it chooses: `await g.wait` holds until `g.open()`. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open = () => {};
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}
