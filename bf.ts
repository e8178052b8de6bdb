const r = await fetch('http://localhost:18080//a%2Fb/../c?x', { decompress: false } as any); console.log(await r.text());
const r2 = await fetch(new URL('http://localhost:18080//a%2Fb'), { decompress: false } as any); console.log(await r2.text());
