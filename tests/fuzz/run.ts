// `make fuzz`: a campaign of FUZZ_SECONDS (default 300) from FUZZ_SEED (default: random, printed
// first so a run can be repeated), over FUZZ_PARTS (default requests,responses,configs). Saves
// every BUG input under tests/fuzz/regressions/ and exits 1 if there was any.
import { bugCount, type Part, runCampaign, saveRegressions, summarise } from './campaign.ts';

const seconds = Number(process.env.FUZZ_SECONDS ?? 300);
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
const parts = (process.env.FUZZ_PARTS ?? 'requests,responses,configs').split(',').filter(Boolean) as Part[];
console.log(`fuzz: seed ${seed}, ${seconds} s, parts ${parts.join(',')} (repeat with FUZZ_SEED=${seed})`);
const started = Date.now();
const reports = await runCampaign({ seed, seconds, parts });
console.log(summarise(reports));
const saved = saveRegressions(reports);
for (const path of saved) console.log(`saved ${path}`);
const bugs = bugCount(reports);
console.log(`fuzz: ${((Date.now() - started) / 1000).toFixed(0)} s, seed ${seed}, ${bugs} BUG-class input(s), ${saved.length} saved`);
process.exit(bugs > 0 ? 1 : 0);
