// The soak's upstreams, both node:http on 127.0.0.1:0 in the test process:
// - a WebSocket echo (the `ws` package): every message sent back as it came (text as text,
//   binary as binary); the text message `!close` makes it close the connection (1000,
//   "upstream-bye"), `!reset` makes it drop the socket without a close frame;
// - an SSE server: GET /sse/<stream> sends that stream's events (content.ts's sseEvent) a few
//   per second, from the one after the request's Last-Event-ID (0 without one).
// Each counts its open connections, so the soak can check that the proxy closed every one.
import http from 'node:http';
import type net from 'node:net';
import { WebSocketServer } from 'ws';
import { sseEvent } from './content.ts';

export interface SoakUpstream {
  readonly port: number;
  /** Connections (TCP) open to this server now. */
  open(): number;
  /** What it served so far. */
  readonly stats: Record<string, number>;
  close(): Promise<void>;
}

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}

/**
 * Listens on 127.0.0.1:0 and counts the server's connections; `close` runs `beforeClose`,
 * destroys every connection and closes the server.
 */
async function serve(server: http.Server, stats: Record<string, number> & { connections: number }, beforeClose: () => void): Promise<SoakUpstream> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    stats.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listen(server);
  return {
    port,
    open: () => sockets.size,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        beforeClose();
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export async function startWsEcho(): Promise<SoakUpstream> {
  const server = http.createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
    res.end('websocket only\n');
  });
  const stats = { connections: 0, upgrades: 0, messages: 0, bytes: 0, closesAsked: 0, resetsAsked: 0 };
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 << 20 });
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      stats.upgrades++;
      ws.on('error', () => {});
      ws.on('message', (data: Buffer, isBinary) => {
        if (!isBinary && data.length <= 6 && data[0] === 0x21) {
          const word = data.toString('latin1');
          if (word === '!close') {
            stats.closesAsked++;
            ws.close(1000, 'upstream-bye');
            return;
          }
          if (word === '!reset') {
            stats.resetsAsked++;
            ws.terminate();
            return;
          }
        }
        stats.messages++;
        stats.bytes += data.length;
        ws.send(data, { binary: isBinary });
      });
    });
  });
  return serve(server, stats, () => {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
  });
}

export async function startSse(): Promise<SoakUpstream> {
  const stats = { connections: 0, streams: 0, events: 0, resumed: 0 };
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    const m = /^\/sse\/(\d+)$/.exec(req.url ?? '');
    if (req.method !== 'GET' || !m) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('no such stream\n');
      return;
    }
    const stream = Number(m[1]);
    const last = req.headers['last-event-id'];
    let seq = typeof last === 'string' && /^\d+$/.test(last) ? Number(last) + 1 : 0;
    if (seq > 0) stats.resumed++;
    stats.streams++;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(': stream open\n\n');
    let timer: NodeJS.Timeout;
    const tick = () => {
      timers.delete(timer);
      res.write(sseEvent(stream, seq++));
      stats.events++;
      timer = setTimeout(tick, 150 + Math.floor(Math.random() * 200)); // ~4 events/s
      timers.add(timer);
    };
    timer = setTimeout(tick, 20);
    timers.add(timer);
    res.on('close', () => {
      clearTimeout(timer);
      timers.delete(timer);
    });
  });
  return serve(server, stats, () => {
    for (const t of timers) clearTimeout(t);
  });
}
