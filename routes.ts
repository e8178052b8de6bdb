// The repo's own routes: the seed example. `make run` starts the proxy with this file on
// 127.0.0.1:4433 and demo backends on 8080, 8181 and 8888.
import type { Config } from './src/config/types.ts';

export default {
  listen: '127.0.0.1:4433',
  routes: [
    { host: 'sub1.xyz.com', upstream: 'http://localhost:8080' },
    { host: '*.xyz.com', upstream: 'http://localhost:8181' },
    { host: '*', upstream: 'http://localhost:8888' },
  ],
} satisfies Config;
