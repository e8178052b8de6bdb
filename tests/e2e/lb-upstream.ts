// A stub upstream for the load-balancing e2e cases (balancing.test.ts), run as its own process
// so a case can SIGKILL or SIGSTOP it by PID and start it again on the same port:
//
//   node --import tsx tests/e2e/lb-upstream.ts [--port N] [--backlog N]
//
// Listens on 127.0.0.1 (port 0 picks one) and writes one JSON line per event to stdout, which
// the parent reads as it goes (a pipe write is synchronous on Linux, so what was written before
// a SIGKILL is not lost):
//   {"ev":"listening","port":N,"pid":P}
//   {"ev":"req","method":"GET","url":"/x","id":"<x-req-id>"}   as soon as a request head arrives
// Answers: GET /healthz -> 200 "ok"; anything else -> 200 JSON {port,id,method,bytes} with
// `x-stub: <port>`, after the whole body was read and after `x-delay-ms` milliseconds if the
// request has that header.
import http from 'node:http';
import type net from 'node:net';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const out = (event: object) => process.stdout.write(`${JSON.stringify(event)}\n`);

const server = http.createServer((req, res) => {
  const idHeader = req.headers['x-req-id'];
  const id = typeof idHeader === 'string' ? idHeader : null;
  out({ ev: 'req', method: req.method, url: req.url, id });
  let bytes = 0;
  req.on('data', (c: Buffer) => {
    bytes += c.length;
  });
  req.on('end', () => {
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
      res.end('ok');
      return;
    }
    const port = (server.address() as net.AddressInfo).port;
    const body = JSON.stringify({ port, id, method: req.method, bytes });
    const answer = () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'x-stub': String(port) });
      res.end(body);
    };
    const delay = Number(req.headers['x-delay-ms'] ?? 0);
    if (delay > 0) setTimeout(answer, delay);
    else answer();
  });
});
// Long keep-alive: a stub closing an idle pooled connection while the proxy reuses it would be a
// failure of the stub, not of the proxy.
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
server.listen(arg('port', 0), '127.0.0.1', arg('backlog', 511), () => {
  out({ ev: 'listening', port: (server.address() as net.AddressInfo).port, pid: process.pid });
});
// The parent going away (its stdout pipe closing) ends the stub too.
process.stdout.on('error', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
