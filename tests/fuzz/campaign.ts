// One fuzz campaign: requests (engine vs llhttp), responses (Bun transport vs llhttp) and configs,
// each for its share of a time budget, from one seed. Counts every input by verdict and kind,
// keeps the shortest example of each kind, and shrinks each new BUG kind with fast-check before
// going on with the next seed. Used by `make fuzz` (run.ts) and the short run in `make test`.

import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { classify, type Judgement } from './classify.ts';
import { checkConfig, configInput } from './config-fuzz.ts';
import { runEngine, stopEngine } from './engine-side.ts';
import { runLlhttp } from './llhttp-side.ts';
import type { Outcome } from './outcome.ts';
import { type RequestInput, requestInput, segmentsOf } from './request-gen.ts';
import { type ResponseInput, responseInput } from './response-gen.ts';
import { type BunClient, type ClientResult, classifyResponse, nodeFetch, type RawUpstream, startBunClient, startRawUpstream } from './response-sides.ts';

export type Part = 'requests' | 'responses' | 'configs';

/** A saved failing input (tests/fuzz/regressions/*.json), replayed by replay.test.ts. */
export interface Regression {
  readonly part: Part;
  readonly verdict: string;
  readonly kind: string;
  readonly detail: string;
  readonly seed: number;
  /** requests: bytes (latin1 as a JSON string), cuts, mutations; responses: bytes, cuts, method; configs: the value. */
  readonly input: unknown;
  /** What each side did, for the reader (not compared on replay). */
  readonly ours?: unknown;
  readonly reference?: unknown;
}

export interface Example {
  readonly judgement: Judgement;
  readonly input: unknown;
  readonly ours?: unknown;
  readonly reference?: unknown;
  readonly size: number;
}

export interface PartReport {
  inputs: number;
  /** `VERDICT kind` -> inputs. */
  readonly counts: Map<string, number>;
  /** The shortest input of each `VERDICT kind`. */
  readonly examples: Map<string, Example>;
  /** Minimal (shrunk) inputs of each BUG kind found. */
  readonly bugs: Regression[];
}

export const REGRESSIONS = fileURLToPath(new URL('./regressions/', import.meta.url));

// ---- one input of each part ------------------------------------------------------------

export async function judgeRequest(input: RequestInput): Promise<{ judgement: Judgement; ours: Outcome; reference: Outcome }> {
  const segments = segmentsOf(input);
  const ours = await runEngine(segments);
  const reference = await runLlhttp(segments);
  return { judgement: classify(ours, reference, input.mutations), ours, reference };
}

export interface ResponseRig {
  readonly upstream: RawUpstream;
  readonly bun: BunClient;
  close(): Promise<void>;
}

export async function startResponseRig(): Promise<ResponseRig> {
  const upstream = await startRawUpstream();
  const bun = startBunClient();
  return {
    upstream,
    bun,
    async close() {
      await bun.close();
      await upstream.close();
    },
  };
}

export async function judgeResponse(rig: ResponseRig, input: ResponseInput): Promise<{ judgement: Judgement; ours: ClientResult; reference: ClientResult }> {
  const id = rig.upstream.serve(input);
  const [ours, reference] = await Promise.all([rig.bun.fetch(rig.upstream.port, id, input.method), nodeFetch(rig.upstream.port, id, input.method)]);
  return { judgement: classifyResponse(ours, reference, input.bytes), ours, reference };
}

// ---- the campaign ------------------------------------------------------------------------

const newReport = (): PartReport => ({ inputs: 0, counts: new Map(), examples: new Map(), bugs: [] });

/** Most shrink steps tried per BUG kind: a minimal example is worth a few seconds, not the budget. */
const MAX_SHRINK_RUNS = 400;

/**
 * Runs `judge` on inputs of `arbitrary` until `ms` pass. Every input is counted; the first of
 * each BUG kind makes the property fail so fast-check shrinks it (only to inputs of the same
 * kind), then the search goes on from the next seed.
 */
async function runPart<T>(
  part: Part,
  arbitrary: fc.Arbitrary<T>,
  judge: (input: T) => Promise<{ judgement: Judgement; ours?: unknown; reference?: unknown }>,
  seed: number,
  ms: number,
  sizeOf: (input: T) => number,
  report: PartReport,
): Promise<void> {
  const end = Date.now() + ms;
  const known = new Set(report.bugs.map((b) => b.kind));
  let runSeed = seed;
  while (Date.now() < end) {
    let target: string | null = null;
    let shrinkRuns = 0;
    const property = fc.asyncProperty(arbitrary, async (input) => {
      if (target !== null) {
        // Shrinking: an input fails only if it is still the same kind of BUG.
        if (++shrinkRuns > MAX_SHRINK_RUNS) return true;
        const { judgement } = await judge(input);
        return !(judgement.verdict === 'BUG' && judgement.kind === target);
      }
      let { judgement, ours, reference } = await judge(input);
      // Both parsers are deterministic for the same reads, so a BUG that does not come back on
      // the same input twice more is the harness's timing (a side judged before it had finished,
      // on a loaded machine), not a disagreement: counted apart, shown, never failed on.
      if (judgement.verdict === 'BUG') {
        for (let i = 0; i < 2 && judgement.verdict === 'BUG'; i++) {
          const again = await judge(input);
          if (again.judgement.verdict !== 'BUG')
            judgement = { verdict: 'UNSTABLE', kind: `unstable:${judgement.kind}`, detail: `${judgement.detail} (then ${again.judgement.verdict})` };
        }
      }
      report.inputs++;
      const key = `${judgement.verdict} ${judgement.kind}`;
      report.counts.set(key, (report.counts.get(key) ?? 0) + 1);
      const size = sizeOf(input);
      const previous = report.examples.get(key);
      if (previous === undefined || previous.size > size) report.examples.set(key, { judgement, input, ours, reference, size });
      if (judgement.verdict === 'BUG' && !known.has(judgement.kind)) {
        target = judgement.kind;
        return false;
      }
      return true;
    });
    const remaining = end - Date.now();
    if (remaining <= 0) break;
    const result = await fc.check(property, {
      seed: runSeed,
      numRuns: 1_000_000_000,
      interruptAfterTimeLimit: remaining,
      markInterruptAsFailure: false,
      endOnFailure: false,
    });
    if (!result.failed || result.counterexample === null || target === null) break;
    const input = result.counterexample[0] as T;
    const again = await judge(input);
    known.add(target);
    report.bugs.push({
      part,
      verdict: again.judgement.verdict,
      kind: target,
      detail: again.judgement.detail,
      seed: runSeed,
      input,
      ours: again.ours,
      reference: again.reference,
    });
    runSeed = (runSeed * 1_103_515_245 + 12_345) >>> 0;
  }
}

export interface CampaignOptions {
  readonly seed: number;
  readonly seconds: number;
  readonly parts: readonly Part[];
}

export async function runCampaign(options: CampaignOptions): Promise<Map<Part, PartReport>> {
  const shares: Record<Part, number> = { requests: 0.6, responses: 0.25, configs: 0.15 };
  const total = options.parts.reduce((n, p) => n + shares[p], 0);
  const reports = new Map<Part, PartReport>();
  for (const part of options.parts) {
    const report = newReport();
    reports.set(part, report);
    const ms = (options.seconds * 1000 * shares[part]) / total;
    if (part === 'requests') {
      await runPart(part, requestInput, judgeRequest, options.seed, ms, (i) => i.bytes.length + i.cuts.length, report);
      await stopEngine();
    } else if (part === 'responses') {
      const rig = await startResponseRig();
      try {
        await runPart(
          part,
          responseInput,
          (i) => judgeResponse(rig, i),
          options.seed,
          ms,
          (i) => i.bytes.length,
          report,
        );
      } finally {
        await rig.close();
      }
    } else {
      await runPart(
        part,
        configInput,
        async (i) => ({ judgement: checkConfig(i) }),
        options.seed,
        ms,
        (i) => JSON.stringify(i ?? null).length,
        report,
      );
    }
  }
  return reports;
}

/** Writes each BUG input as tests/fuzz/regressions/<part>-<kind>-<hash>.json; returns the paths. */
export function saveRegressions(reports: Map<Part, PartReport>): string[] {
  mkdirSync(REGRESSIONS, { recursive: true });
  const paths: string[] = [];
  for (const report of reports.values()) {
    for (const bug of report.bugs) {
      const text = `${JSON.stringify(bug, null, 2)}\n`;
      const hash = createHash('sha256').update(JSON.stringify(bug.input)).digest('hex').slice(0, 10);
      const path = `${REGRESSIONS}${bug.part}-${bug.kind.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 60)}-${hash}.json`;
      writeFileSync(path, text);
      paths.push(path);
    }
  }
  return paths;
}

/** JSON that keeps `undefined` visible (config inputs carry it; JSON would drop the key). */
export const show = (value: unknown): string => JSON.stringify(value, (_key, v) => (v === undefined ? '<undefined>' : v)) ?? 'undefined';

/** Human-readable counts: inputs, then verdict and kind, with the shortest example of each non-AGREE kind. */
export function summarise(reports: Map<Part, PartReport>, examples = true): string {
  const lines: string[] = [];
  for (const [part, report] of reports) {
    const byVerdict = new Map<string, number>();
    for (const [key, n] of report.counts) byVerdict.set(key.split(' ')[0] as string, (byVerdict.get(key.split(' ')[0] as string) ?? 0) + n);
    lines.push(`${part}: ${report.inputs} inputs; ${[...byVerdict].map(([v, n]) => `${v} ${n}`).join(', ')}`);
    for (const [key, n] of [...report.counts].sort()) {
      lines.push(`  ${String(n).padStart(7)}  ${key}`);
      const example = report.examples.get(key);
      if (examples && example !== undefined && !key.startsWith('AGREE')) {
        lines.push(`           e.g. ${show(example.input).slice(0, 400)}`);
        lines.push(`           ${example.judgement.detail.slice(0, 400)}`);
      }
    }
    for (const bug of report.bugs) lines.push(`  BUG (shrunk) ${bug.kind}: ${show(bug.input).slice(0, 400)}\n           ${bug.detail.slice(0, 400)}`);
  }
  return lines.join('\n');
}

/** The number of BUG-class inputs in a campaign. */
export const bugCount = (reports: Map<Part, PartReport>): number =>
  [...reports.values()].reduce((n, r) => n + [...r.counts].filter(([k]) => k.startsWith('BUG ')).reduce((m, [, c]) => m + c, 0), 0);
