// Side (b) of the request fuzzer, the reference: llhttp inside a node:http server (strict parser,
// no insecureHTTPParser), fed each connection as an in-memory Duplex through
// `server.emit('connection')`: the same parser and request handling as a listening server,
// without a socket per input. Node only (Bun's and Deno's node:http are not llhttp).
import http from 'node:http';
import { Duplex } from 'node:stream';
import { normaliseFields, type Outcome, quiesce, recordOutput, type SeenRequest, turns } from './outcome.ts';

const outcomes = new WeakMap<object, Outcome>();

let server: http.Server | null = null;

function theServer(): http.Server {
  if (server !== null) return server;
  // requireHostHeader off: our engine does not require Host either (the app answers that), and
  // node's 400 for it comes after llhttp accepted the request, so it is no parser verdict.
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const outcome = outcomes.get(req.socket);
    if (outcome === undefined) return void res.end('ok\n');
    const seen: SeenRequest = {
      method: req.method ?? '',
      target: req.url ?? '',
      version: req.httpVersion,
      fields: normaliseFields(pairs(req.rawHeaders)),
      body: '',
      complete: false,
    };
    outcome.requests.push(seen);
    outcome.order.push('r');
    req.on('data', (chunk: Buffer) => {
      seen.body += chunk.toString('latin1');
    });
    req.on('end', () => {
      seen.complete = true;
      res.setHeader('content-length', '3');
      res.end('ok\n');
    });
    req.on('error', () => {
      // aborted: the body broke; the request stays incomplete
    });
  };
  const created = http.createServer({ insecureHTTPParser: false, requireHostHeader: false }, onRequest);
  // node:http answers an Expect other than 100-continue with its own 417 unless told otherwise:
  // that is no parser verdict (llhttp accepted the request), and the engine hands it on.
  created.on('checkExpectation', onRequest);
  created.on('clientError', (error: Error & { code?: string; reason?: string }, socket: Duplex) => {
    const outcome = outcomes.get(socket);
    if (outcome === undefined) return void socket.destroy();
    outcome.refusal ??= { code: error.code ?? 'ERROR', reason: error.reason ?? error.message, after: outcome.requests.length };
    outcome.order.push('x');
    // Node's own handler answers 400 and destroys; answering is not what we compare, and
    // destroying at once would cut the answers of the requests before this one.
  });
  // CONNECT (and Upgrade, never generated) leave HTTP: recorded as a refusal of the request.
  created.on('connect', (req: http.IncomingMessage, socket: Duplex) => {
    const outcome = outcomes.get(socket);
    if (outcome !== undefined) {
      outcome.refusal ??= { code: 'CONNECT', reason: `connect ${req.url}`, after: outcome.requests.length };
      outcome.order.push('x');
    }
    socket.destroy();
  });
  server = created;
  return created;
}

const pairs = function* (raw: string[]): Generator<[string, string]> {
  for (let i = 0; i + 1 < raw.length; i += 2) yield [raw[i] as string, raw[i + 1] as string];
};

/** Feeds `segments` to node:http on one in-memory connection and returns what llhttp made of them. */
export async function runLlhttp(segments: readonly Buffer[]): Promise<Outcome> {
  const outcome: Outcome = { requests: [], refusal: null, closed: false, output: '', order: [] };
  const written: Buffer[] = [];
  let ended = false;
  let writtenBytes = 0;
  const socket = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      written.push(Buffer.from(chunk));
      writtenBytes += chunk.byteLength;
      callback();
    },
    final(callback) {
      ended = true;
      callback();
    },
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    ended = true;
  });
  // node:http reads these off a net.Socket; a Duplex lacks them.
  Object.assign(socket, { remoteAddress: '127.0.0.1', remotePort: 1, setNoDelay() {}, setKeepAlive() {}, setTimeout: () => socket });
  outcomes.set(socket, outcome);
  theServer().emit('connection', socket);
  const progress = () => writtenBytes + outcome.order.length + (ended ? 1 : 0) + outcome.requests.reduce((n, r) => n + r.body.length + (r.complete ? 1 : 0), 0);
  try {
    for (const segment of segments) {
      if (ended) break;
      socket.push(Buffer.from(segment));
      await turns(2);
    }
    await quiesce(progress);
  } finally {
    outcome.closed = ended;
    outcome.output = recordOutput(Buffer.concat(written));
    socket.destroy();
    await turns(1);
  }
  return outcome;
}
