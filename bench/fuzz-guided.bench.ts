/**
 * Blind vs guided fuzzing on every built-in policy (issue 15's measured edge): the same
 * seed, the same compute time each (SHMLAB_BENCH_FUZZ_MS, default 12 s: 24 policies x 2 x
 * 12 s is under 10 minutes), their batches interleaved so that the machine's load falls on
 * both alike. Per policy: features reached, distinct findings, and per minute. Goals:
 * guided reaches more features, and finds every finding blind finds. The markdown table it
 * prints is what docs/fuzz.md shows.
 *
 * One run, not the harness's five: each figure is already a count over about a thousand
 * cases per side, and five runs would take 50 minutes. SHMLAB_BENCH_FUZZ_SEEDS=1,90000
 * repeats it on other seeds (default 1); SHMLAB_BENCH_FUZZ_POLICIES=a,b limits it.
 * `npm run bench fuzz-guided` runs only this; `npm run bench fuzz` with the rest.
 */
import { loadavg } from "node:os";
import { getPolicy, policyNames } from "../compositor/policies/index.ts";
import { runCase } from "../lab/fuzz/case.ts";
import { type CaseOutcome, type FuzzReport, fuzzLoop, outcomeOf } from "../lab/fuzz/fuzz.ts";
import type { BenchResult, BenchSuite } from "./harness.ts";

interface Row {
  policy: string;
  seed: number;
  blind: FuzzReport;
  guided: FuzzReport;
}

/**
 * Blind and guided on one policy, the same seed and the same compute time each: their
 * batches interleave, each mode's time counted on its own, so the machine's load falls on
 * both alike.
 */
function race(name: string, seed: number, ms: number): Row {
  const policy = getPolicy(name);
  const used = { blind: 0, guided: 0 };
  const loops = (["blind", "guided"] as const).map((mode) => ({
    mode,
    loop: fuzzLoop({
      policy,
      policyArg: name,
      seed,
      mode,
      shrink: false,
      stop: () => used[mode] >= ms,
    }),
    last: undefined as CaseOutcome[] | undefined,
    report: undefined as FuzzReport | undefined,
  }));
  while (loops.some((l) => !l.report)) {
    for (const l of loops) {
      if (l.report) continue;
      const t = performance.now();
      const step = l.loop.next(l.last as CaseOutcome[]);
      if (step.done) l.report = step.value;
      else
        l.last = step.value.map((fc) =>
          outcomeOf(fc, runCase(fc, policy, { features: true }), true),
        );
      used[l.mode] += performance.now() - t;
    }
  }
  return { policy: name, seed, blind: loops[0].report!, guided: loops[1].report! };
}

function blindVsGuided(ms: number, seeds: number[]): { results: BenchResult[]; rows: Row[] } {
  const wanted = process.env.SHMLAB_BENCH_FUZZ_POLICIES?.split(",").filter(Boolean);
  const names = wanted?.length ? wanted : policyNames();
  const results: BenchResult[] = [];
  const rows: Row[] = [];
  for (const seed of seeds)
    for (const name of names) {
      const row = race(name, seed, ms);
      rows.push(row);
      results.push(...goals(row, ms));
    }
  return { results, rows };
}

function goals({ policy: name, seed, blind, guided }: Row, ms: number): BenchResult[] {
  const got = new Set(guided.firstSeen.map((f) => f.signature));
  const missed = blind.firstSeen.filter((f) => !got.has(f.signature));
  return [
    {
      name: `${name}, seed ${seed}: features reached in ${ms / 1000} s, guided (${guided.runs} cases, ${guided.fresh} fresh)`,
      value: guided.features.size,
      unit: "features",
      baseline: { name: `blind (${blind.runs} cases)`, value: blind.features.size },
      goal: { minRatio: 1.0001, text: "guided reaches more" },
    },
    {
      name: `${name}, seed ${seed}: blind's ${blind.firstSeen.length} finding(s) also found by guided${missed.length ? ` (missed: ${missed.map((m) => m.signature).join("; ")})` : ""}; +1 on both sides`,
      value: blind.firstSeen.length - missed.length + 1,
      unit: "findings",
      baseline: { name: "blind's findings", value: blind.firstSeen.length + 1 },
      goal: { minRatio: 1, text: "every one" },
    },
  ];
}

function table(rows: Row[], ms: number): string {
  const perMin = (r: FuzzReport) => ((r.firstSeen.length * 60_000) / ms).toFixed(1);
  const lines = [
    `| policy | seed | blind: cases | features | findings | /min | guided: cases | fresh | features | findings | /min | guided only |`,
    `|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|`,
  ];
  for (const { policy, seed, blind, guided } of rows) {
    const b = new Set(blind.firstSeen.map((f) => f.signature));
    const only = guided.firstSeen.filter((f) => !b.has(f.signature)).map((f) => f.signature);
    lines.push(
      `| ${policy} | ${seed} | ${blind.runs} | ${blind.features.size} | ${blind.firstSeen.length} | ${perMin(blind)} | ${guided.runs} | ${guided.fresh} | ${guided.features.size} | ${guided.firstSeen.length} | ${perMin(guided)} | ${only.join("; ") || "-"} |`,
    );
  }
  return lines.join("\n");
}

const suite: BenchSuite = {
  name: "fuzz: blind vs guided",
  once: "a count over the whole race per policy; SHMLAB_BENCH_FUZZ_SEEDS repeats it on other seeds",
  async run() {
    const ms = Number(process.env.SHMLAB_BENCH_FUZZ_MS ?? 12_000);
    const seeds = (process.env.SHMLAB_BENCH_FUZZ_SEEDS ?? "1").split(",").map(Number);
    const load0 = loadavg()[0];
    const t0 = performance.now();
    const { results, rows } = blindVsGuided(ms, seeds);
    const missed = rows.filter((r) => {
      const got = new Set(r.guided.firstSeen.map((f) => f.signature));
      return r.blind.firstSeen.some((f) => !got.has(f.signature));
    }).length;
    const behind = rows.filter((r) => r.guided.features.size <= r.blind.features.size).length;
    console.log(
      `\nblind vs guided, seed${seeds.length > 1 ? "s" : ""} ${seeds.join(", ")}, ${ms / 1000} s each, ${((performance.now() - t0) / 60_000).toFixed(1)} min in all, load average ${load0.toFixed(2)} -> ${loadavg()[0].toFixed(2)}; guided not ahead in features: ${behind} of ${rows.length}; missed a blind finding: ${missed} of ${rows.length}:\n${table(rows, ms)}\n`,
    );
    return results;
  },
};
export default suite;
