// The repo's own routes: the seed example. `make run` starts the proxy with this file on
// 127.0.0.1:4433 (plain HTTP) and 127.0.0.1:4443 (HTTPS, h2 and HTTP/1.1) and demo backends on
// 8080, 8181 and 8888. The demo certificate is made by tests/demo/certs.sh (a private CA).
import type { Config } from './src/config/types.ts';

export default {
  listen: '127.0.0.1:4433',
  tls: {
    listen: '127.0.0.1:4443',
    certificates: [{ cert: '.tmp/demo-certs/xyz.pem', key: '.tmp/demo-certs/xyz.key' }],
    // The demo keeps plain HTTP answering; a real edge leaves this out (308 to https://).
    redirectHttp: false,
  },
  routes: [
    { host: 'sub1.xyz.com', upstream: 'http://localhost:8080', hsts: true },
    { host: '*.xyz.com', upstream: 'http://localhost:8181' },
    // Two backends behind one name, checked every 2 s: stop one and the other takes it all.
    {
      host: 'lb.xyz.com',
      upstream: { targets: ['http://localhost:8080', 'http://localhost:8181'], health: { path: '/healthz', intervalMs: 2000 } },
    },
    // Access control: user alice, password demo (a bcrypt hash: `htpasswd -nbB alice demo`),
    // from this machine only, at most 30 requests a minute per client.
    {
      host: 'admin.xyz.com',
      upstream: 'http://localhost:8080',
      auth: { basic: { users: { alice: '$2b$10$9mf57HcchNqWSkM/9EYzJeQ7lbP6JpOr8hRQve/cb.x8MKoBplLz2' }, realm: 'demo admin' } },
      allow: ['127.0.0.0/8', '::1'],
      rateLimit: { requests: 30, windowSeconds: 60 },
    },
    { host: '*', upstream: 'http://localhost:8888' },
  ],
} satisfies Config;
