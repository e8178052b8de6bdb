// The WebSocket part's load generator (tests/bench/ws.sh), on Bun's native WebSocket client.
//
//   bun tests/bench/ws-load.ts URL CONNECTIONS SECONDS BYTES
//     Opens CONNECTIONS WebSockets to URL; once all are open, each sends a BYTES-long text
//     message and sends its next one when the echo of the previous one arrives (one message in
//     flight per connection), for SECONDS. Every echo is compared with what was sent (each
//     message carries its connection and sequence number, so a stale, reordered or altered echo
//     is a mismatch). Prints one line:
//       WSRESULT roundtrips=N duration_us=N mismatches=N errors=N connections=N
//     roundtrips = echoes received within the SECONDS window; duration_us = the window;
//     errors = connections that failed, closed early, or whose last echo never came.
//     Exit status 0 if the run completed (mismatches and errors are for the caller to judge).
//
//   bun tests/bench/ws-load.ts --check URL
//     One connection; text and binary messages of sizes around the frame-length boundaries
//     (125/126, 65535/65536) and one of 200000 bytes, each echo verified. Prints
//     "WSCHECK ok N messages" (exit 0) or what went wrong (exit 1).
//
// Bounded: exits on its own at SECONDS + 15 s at the latest.

const CONNECT_TIMEOUT_MS = 10_000;
const DRAIN_TIMEOUT_MS = 3_000;

function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    const timer = setTimeout(() => {
      ws.close();
      reject(new Error(`no open within ${CONNECT_TIMEOUT_MS} ms`));
    }, CONNECT_TIMEOUT_MS);
    ws.onopen = () => {
      clearTimeout(timer);
      resolve(ws);
    };
    ws.onerror = () => {
      clearTimeout(timer);
      reject(new Error('connection failed'));
    };
    ws.onclose = (ev) => {
      clearTimeout(timer);
      reject(new Error(`closed before open (code ${ev.code})`));
    };
  });
}

async function check(url: string): Promise<number> {
  const ws = await openSocket(url);
  const sizes = [1, 32, 125, 126, 127, 4096, 65535, 65536, 65537, 200000];
  const pending: ((data: string | ArrayBuffer) => void)[] = [];
  ws.onmessage = (ev) => pending.shift()?.(ev.data as string | ArrayBuffer);
  ws.onclose = (ev) => {
    console.log(`WSCHECK failed: closed (code ${ev.code}) with ${pending.length} echoes outstanding`);
    process.exit(1);
  };
  let n = 0;
  for (const size of sizes) {
    for (const binary of [false, true]) {
      const text = Array.from({ length: size }, (_, i) => String.fromCharCode(33 + ((i * 7 + size) % 94))).join('');
      const sent: string | Uint8Array<ArrayBuffer> = binary ? new TextEncoder().encode(text) : text;
      const got = await new Promise<string | ArrayBuffer>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no echo of a ${size}-byte ${binary ? 'binary' : 'text'} message within 5 s`)), 5000);
        pending.push((d) => {
          clearTimeout(timer);
          resolve(d);
        });
        ws.send(sent);
      });
      const ok = binary ? got instanceof ArrayBuffer && Buffer.from(got).equals(sent as Uint8Array) : got === text;
      if (!ok) {
        const kind = typeof got === 'string' ? `text of ${got.length}` : `binary of ${got.byteLength}`;
        console.log(`WSCHECK failed: the echo of a ${size}-byte ${binary ? 'binary' : 'text'} message differs (got ${kind})`);
        return 1;
      }
      n++;
    }
  }
  ws.onclose = null;
  ws.close(1000, 'done');
  console.log(`WSCHECK ok ${n} messages`);
  return 0;
}

async function load(url: string, conns: number, seconds: number, bytes: number): Promise<number> {
  const pad = 'x'.repeat(bytes);
  const message = (conn: number, seq: number) => {
    const head = `${conn.toString(36)}.${seq.toString(36)}.`;
    return head.length >= bytes ? head : head + pad.slice(head.length);
  };
  let roundtrips = 0;
  let mismatches = 0;
  let errors = 0;
  let measuring = false;
  let stopping = false;
  const opened = await Promise.allSettled(Array.from({ length: conns }, () => openSocket(url)));
  const sockets: WebSocket[] = [];
  for (const r of opened) {
    if (r.status === 'fulfilled') sockets.push(r.value);
    else {
      errors++;
      console.error(`ws-load: ${r.reason instanceof Error ? r.reason.message : r.reason}`);
    }
  }
  if (sockets.length === 0) {
    console.log(`WSRESULT roundtrips=0 duration_us=0 mismatches=0 errors=${errors} connections=0`);
    return 1;
  }
  const expected: string[] = [];
  const seqs: number[] = [];
  const inFlight: boolean[] = [];
  let outstanding = 0;
  let drained: (() => void) | undefined;
  sockets.forEach((ws, i) => {
    seqs[i] = 0;
    ws.onmessage = (ev) => {
      if (!inFlight[i] || ev.data !== expected[i]) mismatches++;
      inFlight[i] = false;
      outstanding--;
      if (measuring) roundtrips++;
      if (stopping) {
        if (outstanding === 0) drained?.();
        return;
      }
      const m = message(i, ++(seqs[i] as number));
      expected[i] = m;
      inFlight[i] = true;
      outstanding++;
      ws.send(m);
    };
    ws.onclose = (ev) => {
      if (stopping && !inFlight[i]) return;
      errors++;
      console.error(`ws-load: connection ${i} closed (code ${ev.code}) during the run`);
      if (inFlight[i]) {
        inFlight[i] = false;
        outstanding--;
        if (stopping && outstanding === 0) drained?.();
      }
    };
    ws.onerror = null;
  });
  const start = performance.now();
  measuring = true;
  sockets.forEach((ws, i) => {
    const m = message(i, 0);
    expected[i] = m;
    inFlight[i] = true;
    outstanding++;
    ws.send(m);
  });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const durationUs = Math.round((performance.now() - start) * 1000);
  const counted = roundtrips;
  measuring = false;
  stopping = true;
  if (outstanding > 0) {
    await new Promise<void>((resolve) => {
      drained = resolve;
      setTimeout(resolve, DRAIN_TIMEOUT_MS);
    });
  }
  if (outstanding > 0) {
    errors += outstanding;
    console.error(`ws-load: ${outstanding} echoes did not come back within ${DRAIN_TIMEOUT_MS} ms of the end`);
  }
  for (const ws of sockets) {
    ws.onclose = null;
    ws.close(1000, 'done');
  }
  console.log(`WSRESULT roundtrips=${counted} duration_us=${durationUs} mismatches=${mismatches} errors=${errors} connections=${sockets.length}`);
  return 0;
}

const args = process.argv.slice(2);
let main: Promise<number>;
let limitS = 30;
if (args[0] === '--check') {
  main = check(args[1] ?? '');
} else {
  const [url = '', conns = '50', seconds = '4', bytes = '32'] = args;
  limitS = Number(seconds) + 15;
  main = load(url, Number(conns), Number(seconds), Number(bytes));
}
setTimeout(() => {
  console.log(`ws-load: still running after ${limitS} s; giving up`);
  process.exit(3);
}, limitS * 1000).unref();
main.then(
  (code) => process.exit(code),
  (error) => {
    console.log(`ws-load failed: ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  },
);
