// CLI: help, version, bad flags, `check`, `serve` with a bad file, `init`, and `listen` from routes.ts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { commandFor, ROOT, RUNTIMES, runCli, send, startUpstream, writeRoutes } from './harness.ts';

const temps: string[] = [];
after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'switchyard-cli-'));
  temps.push(d);
  return d;
}
function routesFile(text: string | object, name = 'routes.ts'): string {
  const { dir, file } = writeRoutes(text, name);
  temps.push(dir);
  return file;
}

/** Runs a command to completion, returning exit code and output. */
function run(cmd: string, args: string[], cwd: string, timeoutMs = 60_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} timed out`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** Spawns `serve` with exactly `args` (no --listen added), waits for the listening line, then runs `fn`. */
async function withServe(runtime: (typeof RUNTIMES)[number], args: string[], cwd: string, fn: (first: Record<string, unknown>) => Promise<void>) {
  const [cmd, ...pre] = commandFor(runtime);
  const child = spawn(cmd as string, [...pre, 'serve', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  try {
    const first = await new Promise<Record<string, unknown>>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`no listening line; stderr: ${stderr}`)), 20_000);
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (d: string) => {
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl >= 0) {
          clearTimeout(timer);
          try {
            resolve(JSON.parse(buf.slice(0, nl)));
          } catch (e) {
            reject(e);
          }
        }
      });
      void exited.then((code) => reject(new Error(`exited ${code} before listening: ${stderr}`)));
    });
    await fn(first);
  } finally {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid as number, 'SIGTERM');
    const t = setTimeout(() => child.exitCode === null && process.kill(child.pid as number, 'SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }
}

for (const runtime of RUNTIMES) {
  describe(`cli on ${runtime}`, () => {
    test('--help prints usage and exits 0', async () => {
      const r = await runCli(runtime, ['--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Usage:/);
      assert.match(r.stdout, /switchyard check/);
    });

    test('--version prints the version and exits 0', async () => {
      const r = await runCli(runtime, ['--version']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'switchyard 0.1.0');
    });

    test('a bad flag prints usage to stderr and exits 2', async () => {
      const r = await runCli(runtime, ['--nope']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /nope/);
      assert.match(r.stderr, /Usage:/);
      assert.equal(r.stdout, '');
    });

    test('an unknown command exits 2', async () => {
      const r = await runCli(runtime, ['frobnicate']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /unknown command "frobnicate"/);
    });

    test('--listen nonsense exits 2', async () => {
      const r = await runCli(runtime, ['serve', '--listen', 'nonsense']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--listen nonsense/);
    });

    test('check: a valid file exits 0', async () => {
      const file = routesFile({ routes: [{ host: '*', upstream: 'http://localhost:8080' }] });
      const r = await runCli(runtime, ['check', file]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /ok \(1 routes\)/);
    });

    test('check: every problem is printed with its path, exit 1', async () => {
      const file = routesFile(`export default {
  routes: [
    { host: 'a.example', upstreem: 'http://localhost:1' },
    { host: 'bad host!*', upstream: 'http://localhost:2' },
    { host: 'c.example', upstream: 'not a url' },
  ],
};
`);
      const r = await runCli(runtime, ['check', file]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /routes\[0\]\.upstreem: unknown key/);
      // The required key is missing too, and the message must say so (not "must be an object").
      assert.match(r.stderr, /routes\[0\]\.upstream: .*(missing|required)/i);
      assert.match(r.stderr, /routes\[1\]\.host: /);
      assert.match(r.stderr, /routes\[2\]\.upstream: invalid URL/);
    });

    test('check: a missing routes array is named', async () => {
      const file = routesFile('export default { listen: "127.0.0.1:0" };\n');
      const r = await runCli(runtime, ['check', file]);
      assert.equal(r.code, 1);
      // A missing key must be reported as missing, not as "must be an object".
      assert.match(r.stderr, /routes: .*(missing|required)/i);
    });

    test('check: a plain-JS routes.mjs is accepted', async () => {
      const file = routesFile('export default { routes: [{ host: "*", upstream: "http://127.0.0.1:9" }] };\n', 'routes.mjs');
      const r = await runCli(runtime, ['check', file]);
      assert.equal(r.code, 0, r.stderr);
    });

    test('check: a syntax error exits 1 with a readable message', async () => {
      const file = routesFile('export default { routes: [ { host: "*", upstream: \n');
      const r = await runCli(runtime, ['check', file]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /cannot load/);
      assert.ok(r.stderr.length < 2000, `message too long: ${r.stderr}`);
    });

    test('check: a missing file exits 1 saying not found', async () => {
      const r = await runCli(runtime, ['check', join(tempDir(), 'nope.ts')]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /not found/);
    });

    test('serve with an invalid routes file exits 1 before listening', async () => {
      const file = routesFile({ routes: [{ host: '*', upstream: 'ftp://x' }] });
      const r = await runCli(runtime, ['serve', '--routes', file, '--listen', '127.0.0.1:0']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /routes\[0\]\.upstream: unsupported scheme/);
      assert.doesNotMatch(r.stdout, /listening/);
    });

    test('init writes files, refuses a second time, output loads, serves and type-checks', async () => {
      const dir = join(tempDir(), 'site');
      const r1 = await runCli(runtime, ['init', dir], { cwd: tmpdir() });
      assert.equal(r1.code, 0, r1.stderr);
      for (const f of ['routes.ts', 'switchyard.d.ts', 'tsconfig.json']) assert.ok(readFileSync(join(dir, f), 'utf8').length > 0);
      const r2 = await runCli(runtime, ['init', dir], { cwd: tmpdir() });
      assert.equal(r2.code, 1);
      assert.match(r2.stderr, /--force/);
      const r3 = await runCli(runtime, ['init', dir, '--force'], { cwd: tmpdir() });
      assert.equal(r3.code, 0, r3.stderr);

      // The starter loads and serves from a directory with no node_modules.
      const up = await startUpstream();
      try {
        const routes = join(dir, 'routes.ts');
        writeFileSync(routes, readFileSync(routes, 'utf8').replace('http://localhost:8888', up.origin));
        await withServe(runtime, ['--routes', routes, '--listen', '127.0.0.1:0'], dir, async (first) => {
          assert.equal(first.msg, 'listening');
          const reply = await send(`http://127.0.0.1:${first.port}/hi`, { headers: { host: 'other.example' } });
          assert.equal(reply.status, 200);
          assert.equal(up.requests.length, 1);
        });
      } finally {
        await up.close();
      }

      const tsc = join(ROOT, 'node_modules/.bin/tsc');
      const ok = await run(tsc, ['-p', dir], dir);
      assert.equal(ok.code, 0, ok.out);

      const routes = join(dir, 'routes.ts');
      writeFileSync(routes, readFileSync(routes, 'utf8').replace("upstream: 'http://localhost:8080'", "upstreem: 'http://localhost:8080'"));
      const bad = await run(tsc, ['-p', dir], dir);
      assert.notEqual(bad.code, 0);
      assert.match(bad.out, /upstreem/);
      const check = await runCli(runtime, ['check', routes]);
      assert.equal(check.code, 1);
      assert.match(check.stderr, /routes\[0\]\.upstreem: unknown key/);
    });

    test('listen in routes.ts is used without --listen', async () => {
      const up = await startUpstream();
      const dir = tempDir();
      writeFileSync(join(dir, 'routes.ts'), `export default { listen: '127.0.0.1:0', routes: [{ host: '*', upstream: '${up.origin}' }] };\n`);
      try {
        // No --routes either: ./routes.ts in the working directory is the default.
        await withServe(runtime, [], dir, async (first) => {
          assert.equal(first.msg, 'listening');
          assert.equal(first.address, '127.0.0.1');
          assert.equal(typeof first.port, 'number');
          assert.notEqual(first.port, 0);
          const reply = await send(`http://127.0.0.1:${first.port}/`, { headers: { host: 'x.example' } });
          assert.equal(reply.status, 200);
        });
      } finally {
        await up.close();
      }
    });
  });
}
