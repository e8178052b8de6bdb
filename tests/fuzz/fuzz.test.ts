// The short fuzz run of `make test` (about 60 s): one campaign from a fixed seed, one from a
// random seed it prints. Fails on any BUG-class disagreement; prints the counts either way.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bugCount, runCampaign, summarise } from './campaign.ts';

const seconds = Number(process.env.FUZZ_TEST_SECONDS ?? 28);
const FIXED_SEED = 20_261_202;
const randomSeed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);

for (const [label, seed] of [
  ['fixed', FIXED_SEED],
  ['random', randomSeed],
] as const) {
  test(`fuzz, ${label} seed ${seed}: no BUG-class disagreement in ${seconds} s`, { timeout: (seconds + 60) * 1000 }, async (t) => {
    const reports = await runCampaign({ seed, seconds, parts: ['requests', 'responses', 'configs'] });
    const summary = summarise(reports);
    for (const line of summary.split('\n')) t.diagnostic(line);
    assert.equal(bugCount(reports), 0, `BUG-class disagreements (repeat with FUZZ_SEED=${seed} make fuzz):\n${summary}`);
  });
}
