// Replays every saved failing input (tests/fuzz/regressions/*.json, written by `make fuzz`): each
// must no longer be a BUG-class disagreement. The response ones need Bun (a child process).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { judgeRequest, judgeResponse, REGRESSIONS, type Regression, type ResponseRig, startResponseRig } from './campaign.ts';
import { checkConfig } from './config-fuzz.ts';
import { stopEngine } from './engine-side.ts';
import type { RequestInput } from './request-gen.ts';
import type { ResponseInput } from './response-gen.ts';

const files = readdirSync(REGRESSIONS)
  .filter((name) => name.endsWith('.json'))
  .sort();

describe('fuzz regressions', () => {
  let rig: ResponseRig | null = null;
  after(async () => {
    await rig?.close();
    await stopEngine();
  });
  test('the regressions folder is readable', () => {
    assert.ok(Array.isArray(files));
  });
  for (const name of files) {
    const saved = JSON.parse(readFileSync(`${REGRESSIONS}${name}`, 'utf8')) as Regression;
    test(`${name}: ${saved.part} ${saved.kind} is fixed`, async () => {
      let judgement: { verdict: string; kind: string; detail: string };
      if (saved.part === 'requests') judgement = (await judgeRequest(saved.input as RequestInput)).judgement;
      else if (saved.part === 'responses') {
        rig ??= await startResponseRig();
        judgement = (await judgeResponse(rig, saved.input as ResponseInput)).judgement;
      } else judgement = checkConfig(saved.input);
      assert.notEqual(judgement.verdict, 'BUG', `${judgement.kind}: ${judgement.detail}`);
    });
  }
});
