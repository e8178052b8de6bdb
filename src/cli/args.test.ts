import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCommand } from './args.ts';

test('serve is the default command', () => {
  assert.deepEqual(parseCommand([]), { kind: 'serve', routes: 'routes.ts', listen: undefined });
  assert.deepEqual(parseCommand(['--routes', 'r.ts', '--listen', '127.0.0.1:0']), { kind: 'serve', routes: 'r.ts', listen: '127.0.0.1:0' });
  assert.deepEqual(parseCommand(['serve', '-r', 'r.ts']), { kind: 'serve', routes: 'r.ts', listen: undefined });
});

test('check, init, help, version', () => {
  assert.deepEqual(parseCommand(['check', 'x.ts']), { kind: 'check', routes: 'x.ts' });
  assert.deepEqual(parseCommand(['check']), { kind: 'check', routes: 'routes.ts' });
  assert.deepEqual(parseCommand(['init', 'dir', '--force']), { kind: 'init', dir: 'dir', force: true });
  assert.deepEqual(parseCommand(['--help']), { kind: 'help' });
  assert.deepEqual(parseCommand(['-v']), { kind: 'version' });
});

test('bad command lines are usage errors', () => {
  for (const argv of [
    ['--nope'],
    ['frobnicate'],
    ['serve', 'extra'],
    ['--listen', 'nonsense'],
    ['--listen'],
    ['check', 'a', 'b'],
    ['init', '--listen', ':1'],
  ]) {
    assert.equal(parseCommand(argv).kind, 'usage-error', argv.join(' '));
  }
});
