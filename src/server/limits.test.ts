import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep } from '../../tests/support/wait.ts';
import { ConnectionGate, type RefusalReport } from './limits.ts';

test('the gate admits up to the global cap and the per-address cap, and a release makes room', () => {
  const reports: RefusalReport[] = [];
  const gate = new ConnectionGate({ maxConnections: 3, maxConnectionsPerIp: 2 }, (r) => reports.push(r));
  assert.equal(gate.admit('a'), true);
  assert.equal(gate.admit('a'), true);
  assert.equal(gate.admit('a'), false, 'third from a: per-address cap');
  assert.equal(gate.admit('b'), true);
  assert.equal(gate.admit('c'), false, 'global cap');
  assert.equal(gate.connections, 3);
  gate.release('a');
  assert.equal(gate.admit('c'), true);
  gate.release('zzz'); // never admitted: no effect
  assert.equal(gate.connections, 3);
  assert.equal(reports.length, 1, 'the first refusal is reported at once, the next one waits for the interval');
  assert.equal(reports[0]?.reason, 'max-connections-per-ip');
  gate.close();
  assert.equal(reports.length, 2, 'close reports what the interval held');
  assert.deepEqual(
    { refused: reports[1]?.refused, reason: reports[1]?.reason, client: reports[1]?.client },
    { refused: 1, reason: 'max-connections', client: 'c' },
  );
});

test('a flood of refusals is one report at once and one with the count per interval', async () => {
  const reports: RefusalReport[] = [];
  const gate = new ConnectionGate({ maxConnections: 1, maxConnectionsPerIp: 1 }, (r) => reports.push(r), 50);
  gate.admit('a');
  for (let i = 0; i < 500; i++) gate.admit(`x${i}`);
  assert.equal(reports.length, 1);
  await sleep(120);
  assert.equal(reports.length, 2);
  assert.equal(reports[1]?.refused, 499);
  for (let i = 0; i < 10; i++) gate.admit('y');
  assert.equal(reports.length, 3, 'after a quiet interval the first refusal is reported at once again');
  gate.close();
  assert.equal(reports.at(-1)?.refused, 9);
});
