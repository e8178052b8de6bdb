// The smuggling payloads of smuggling-cases.ts through nginx (a reverse proxy to the same
// recording upstream), printed as one table for comparison with switchyard's (docs/hardening.md).
// Not part of the suite: nginx's answers are its own choices, not ours to assert.
//   node --import tsx tests/e2e/smuggling-reference.ts
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cases, exchange, recordingUpstream, SMUGGLED } from './smuggling-cases.ts';

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });

const upstream = await recordingUpstream();
const port = await freePort();
const dir = mkdtempSync(join(tmpdir(), 'smuggling-nginx-'));
writeFileSync(
  join(dir, 'nginx.conf'),
  `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    server_name s.test;
    location / { proxy_pass http://127.0.0.1:${upstream.port}; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`,
);
const nginx = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'inherit' });
try {
  for (let i = 0; i < 50; i++) {
    const up = await new Promise<boolean>((resolve) =>
      net
        .connect(port, '127.0.0.1')
        .once('connect', function (this: net.Socket) {
          this.destroy();
          resolve(true);
        })
        .once('error', () => resolve(false)),
    );
    if (up) break;
    await sleep(100);
  }
  console.log(`nginx ${process.env.NGINX_VERSION ?? ''}: each payload followed by ${JSON.stringify(SMUGGLED)}`);
  for (const c of cases) {
    const from = upstream.received.length;
    const segments = [...c.segments];
    segments[segments.length - 1] += SMUGGLED;
    const outcome = await exchange(port, segments, 150, segments[0]?.startsWith('HEAD ') ? ['HEAD'] : []);
    await sleep(50);
    const got = upstream.received.slice(from);
    console.log(
      `| ${c.family}: ${c.name} | ${outcome.statuses.join(', ') || 'none'} | ${outcome.closed ? 'closed' : 'open'} | ${got.length ? got.map((g) => `${g.line} [${g.body.length} B]`).join(' + ') : 'nothing'} |`,
    );
  }
} finally {
  nginx.kill('SIGTERM');
  await new Promise((r) => nginx.once('exit', r));
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
}
