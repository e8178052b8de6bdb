// The WebSocket part's echo upstream (tests/bench/ws.sh): Bun.serve on 127.0.0.1, port 0 or
// argv[2], every message sent back as it came (text as text, binary as binary), no compression.
// Run with Bun only: `bun tests/bench/ws-echo.ts [PORT]`. Prints one JSON line,
// {"msg":"listening","port":N}, then nothing; stops on SIGTERM/SIGINT.
const server = Bun.serve({
  hostname: '127.0.0.1',
  port: Number(process.argv[2] ?? 0),
  fetch(req, srv) {
    if (srv.upgrade(req)) return undefined;
    return new Response('websocket echo\n', { headers: { 'content-type': 'text/plain' } });
  },
  websocket: {
    perMessageDeflate: false,
    maxPayloadLength: 16 << 20,
    idleTimeout: 960,
    message(ws, message) {
      ws.send(message);
    },
  },
});
console.log(JSON.stringify({ msg: 'listening', port: server.port }));

const shutdown = () => {
  server.stop(true);
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
