import http from 'node:http';
const agent = new http.Agent({ keepAlive: true });
for (const path of ['//a%2Fb/../c?x', '/%7E']) {
await new Promise<void>((res) => { const r = http.request({ host: 'localhost', port: 18080, path, agent, headers: { host: 'foo.com' } }, (resp) => { let d=''; resp.on('data', c=>d+=c); resp.on('end', ()=>{ console.log(resp.statusCode, resp.rawHeaders.join('|'), d); res(); }); }); r.end(); });
}
const r = await fetch('http://localhost:18080/x', { headers: { 'user-agent': '', accept: '' } }); console.log(await r.text());
import { request } from 'undici'; const u = await request('http://localhost:18080//a%2Fb/../c'); console.log(await u.body.text());
