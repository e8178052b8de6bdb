// A demo backend for `make run`: answers every request with its own port, the Host it saw,
// and the path, so the three seed routes are easy to tell apart.
import http from 'node:http';

const port = Number(process.argv[2]);
const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  res.end(`backend :${port} host=${req.headers.host} path=${req.url} x-forwarded-for=${req.headers['x-forwarded-for'] ?? '-'}\n`);
});
// '::' with ipv6Only off accepts IPv4 too, so `localhost` works whichever address it means.
server.listen({ port, host: '::', ipv6Only: false }, () => console.error(`demo backend listening on :${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
