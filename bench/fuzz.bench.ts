/**
 * The fuzzer's benchmarks, each against a baseline measured in the same run:
 *
 *   1. throughput: generated cases per second on one core (generation, the action-list
 *      clients, the invariant checks after every step and frame, the features), against one
 *      plain deterministic `compare` run (runOne) of the same length; goal >= 0.5. The
 *      cases/s figure itself is issue 16's "1,000 cases/s per core" goal, printed as is.
 *   2. the cost of the feedback: features on vs off, and V8's precise coverage
 *      (node:inspector Profiler.takePreciseCoverage after every case) vs off.
 *   3. `--workers 2` against one thread on the same cases (the same corpus and findings:
 *      checked), goal >= 1.7x on two cores.
 *   4. blind vs guided on every built-in policy: the same seed, the same compute time each
 *      (SHMLAB_BENCH_FUZZ_MS, default 15 s; their batches interleave so that the machine's
 *      load falls on both alike): features reached and distinct findings per minute. Goals: guided reaches more features, and finds every finding blind finds.
 *      The markdown table at the end is what docs/fuzz.md shows.
 *
 * `npm run bench fuzz`; SHMLAB_BENCH_FUZZ_POLICIES=a,b limits part 4.
 */
import { Session } from "node:inspector/promises";
import { availableParallelism, loadavg } from "node:os";
import { getPolicy, policyNames } from "../compositor/policies/index.ts";
import { generateProgram } from "../lab/fuzz/actions.ts";
import { CASE_DEFAULTS, runCase } from "../lab/fuzz/case.ts";
import { type CaseOutcome, type FuzzReport, fuzz, fuzzLoop, outcomeOf } from "../lab/fuzz/fuzz.ts";
import { casePool, fuzzParallel } from "../lab/fuzz/parallel.ts";
import { makeSpec, runOne } from "../lab/run.ts";
import type { BenchResult, BenchSuite } from "./harness.ts";

const POLICY = "libwayland";

function caseOf(s: number) {
  return { ...CASE_DEFAULTS, seed: s, policy: POLICY, program: generateProgram(s) };
}

/**
 * Rates of several workloads measured round-robin, one call of each in turn, each timed on
 * its own: a change in the machine's load hits them all alike (this machine is shared).
 */
function interleavedRates(fns: (() => void)[], totalMs: number): number[] {
  for (const f of fns) for (let i = 0; i < 5; i++) f(); // warm-up
  const ms = fns.map(() => 0);
  const calls = fns.map(() => 0);
  const end = performance.now() + totalMs;
  while (performance.now() < end) {
    fns.forEach((f, i) => {
      const t = performance.now();
      f();
      ms[i] += performance.now() - t;
      calls[i]++;
    });
  }
  return calls.map((n, i) => (n * 1000) / ms[i]);
}

function throughput(): BenchResult[] {
  const policy = getPolicy(POLICY);
  let s1 = 1;
  let s2 = 1;
  let s3 = 1;
  const [withF, without, plain] = interleavedRates(
    [
      () => void runCase(caseOf(s1++), policy, { features: true }),
      () => void runCase(caseOf(s2++), policy),
      () =>
        void runOne(
          makeSpec({
            policy: POLICY,
            behaviour: "truncate-during-read",
            seed: s3++,
            frames: CASE_DEFAULTS.frames,
            honest: CASE_DEFAULTS.honest,
          }),
        ),
    ],
    6000,
  );
  return [
    {
      name: `fuzz cases with features (${POLICY}, ${CASE_DEFAULTS.frames} frames, ${CASE_DEFAULTS.honest} honest, 1-3 hostile; issue 16 goal: 1,000/s per core)`,
      value: withF,
      unit: "runs/s",
      baseline: { name: "runOne truncate-during-read, same length", value: plain },
      goal: { minRatio: 0.5, text: ">= 0.5 of a plain run's rate" },
    },
    {
      name: "features computed (cost of the feedback)",
      value: withF,
      unit: "runs/s",
      baseline: { name: "the same cases without features", value: without },
    },
  ];
}

async function v8Coverage(): Promise<BenchResult> {
  const policy = getPolicy(POLICY);
  const session = new Session();
  session.connect();
  try {
    await session.post("Profiler.enable");
    await session.post("Profiler.startPreciseCoverage", { callCount: true, detailed: true });
    // Taken after every case (that is what feedback needs), alternating with cases without
    // it; the coverage counters run during both, so "off" is an upper bound of its cost.
    let on = 0;
    let off = 0;
    let nOn = 0;
    let nOff = 0;
    let seed = 1;
    const end = performance.now() + 4000;
    while (performance.now() < end) {
      let t = performance.now();
      runCase(caseOf(seed++), policy);
      off += performance.now() - t;
      nOff++;
      t = performance.now();
      runCase(caseOf(seed++), policy);
      await session.post("Profiler.takePreciseCoverage");
      on += performance.now() - t;
      nOn++;
    }
    await session.post("Profiler.stopPreciseCoverage");
    return {
      name: "V8 precise coverage taken after every case (node:inspector, block granularity)",
      value: (nOn * 1000) / on,
      unit: "runs/s",
      baseline: { name: "the same cases, coverage on but not taken", value: (nOff * 1000) / off },
    };
  } finally {
    session.disconnect();
  }
}

async function workers(): Promise<BenchResult[]> {
  const policy = getPolicy(POLICY);
  const runs = 192;
  const opts = { policy, policyArg: POLICY, seed: 1, runs, shrink: false };
  const sig = (r: FuzzReport) =>
    JSON.stringify([[...r.features].sort(), r.firstSeen.map((f) => f.signature), r.corpus]);
  let t = performance.now();
  const one = fuzz(opts);
  const oneMs = performance.now() - t;
  // Threads started and the policy loaded before the clock starts, as in a long run; the
  // start-up itself is reported beside it (what a short run pays on top).
  t = performance.now();
  const pool = await casePool(2, POLICY);
  const startMs = performance.now() - t;
  let two: FuzzReport;
  let twoMs: number;
  try {
    // Warm the threads' JIT on other seeds, as this thread is warm from the parts before.
    await fuzzParallel({ ...opts, seed: 1000, runs: 64, workers: 2 }, pool);
    t = performance.now();
    two = await fuzzParallel({ ...opts, workers: 2 }, pool);
    twoMs = performance.now() - t;
  } finally {
    await pool.destroy();
  }
  const same = sig(one) === sig(two);
  return [
    {
      name: `--workers 2 (${runs} guided cases, ${availableParallelism()} cores; same features, corpus and findings as one thread: ${same ? "yes" : "NO"})`,
      value: same ? (runs * 1000) / twoMs : 0,
      unit: "runs/s",
      baseline: { name: "one thread, same cases", value: (runs * 1000) / oneMs },
      goal: { minRatio: 1.7, text: ">= 1.7x on 2 cores" },
    },
    {
      name: "--workers 2 start-up: two threads started, the policy loaded (lab/worker-bundle.ts)",
      value: startMs,
      unit: "ms",
      baseline: { name: `one thread's time for the ${runs} cases`, value: oneMs },
    },
  ];
}

interface Row {
  policy: string;
  blind: FuzzReport;
  guided: FuzzReport;
}

/**
 * Blind and guided on one policy, the same seed and the same compute time each: their
 * batches interleave, each mode's time counted on its own, so the machine's load falls on
 * both alike.
 */
function race(name: string, ms: number): Row {
  const policy = getPolicy(name);
  const used = { blind: 0, guided: 0 };
  const loops = (["blind", "guided"] as const).map((mode) => ({
    mode,
    loop: fuzzLoop({
      policy,
      policyArg: name,
      seed: 1,
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
  return { policy: name, blind: loops[0].report!, guided: loops[1].report! };
}

function blindVsGuided(ms: number): { results: BenchResult[]; rows: Row[] } {
  const wanted = process.env.SHMLAB_BENCH_FUZZ_POLICIES?.split(",").filter(Boolean);
  const names = wanted?.length ? wanted : policyNames();
  const results: BenchResult[] = [];
  const rows: Row[] = [];
  for (const name of names) {
    const { blind, guided } = race(name, ms);
    rows.push({ policy: name, blind, guided });
    const got = new Set(guided.firstSeen.map((f) => f.signature));
    const missed = blind.firstSeen.filter((f) => !got.has(f.signature));
    results.push({
      name: `${name}: features reached in ${ms / 1000} s, guided (${guided.runs} cases)`,
      value: guided.features.size,
      unit: "features",
      baseline: { name: `blind (${blind.runs} cases)`, value: blind.features.size },
      goal: { minRatio: 1.0001, text: "guided reaches more" },
    });
    results.push({
      name: `${name}: blind's ${blind.firstSeen.length} finding(s) also found by guided${missed.length ? ` (missed: ${missed.map((m) => m.signature).join("; ")})` : ""}; +1 on both sides`,
      value: blind.firstSeen.length - missed.length + 1,
      unit: "findings",
      baseline: { name: "blind's findings", value: blind.firstSeen.length + 1 },
      goal: { minRatio: 1, text: "every one" },
    });
  }
  return { results, rows };
}

function table(rows: Row[], ms: number): string {
  const perMin = (r: FuzzReport) => ((r.firstSeen.length * 60_000) / ms).toFixed(1);
  const lines = [
    `| policy | blind: cases | features | findings | /min | guided: cases | features | findings | /min | guided only |`,
    `|---|---:|---:|---:|---:|---:|---:|---:|---:|---|`,
  ];
  for (const { policy, blind, guided } of rows) {
    const b = new Set(blind.firstSeen.map((f) => f.signature));
    const only = guided.firstSeen.filter((f) => !b.has(f.signature)).map((f) => f.signature);
    lines.push(
      `| ${policy} | ${blind.runs} | ${blind.features.size} | ${blind.firstSeen.length} | ${perMin(blind)} | ${guided.runs} | ${guided.features.size} | ${guided.firstSeen.length} | ${perMin(guided)} | ${only.join("; ") || "-"} |`,
    );
  }
  return lines.join("\n");
}

const suite: BenchSuite = {
  name: "fuzz: throughput, feedback cost, workers, blind vs guided",
  async run() {
    const load0 = loadavg()[0];
    const out: BenchResult[] = [...throughput()];
    out.push(await v8Coverage());
    out.push(...(await workers()));
    const ms = Number(process.env.SHMLAB_BENCH_FUZZ_MS ?? 15_000);
    const { results, rows } = blindVsGuided(ms);
    out.push(...results);
    console.log(
      `\nblind vs guided, seed 1, ${ms / 1000} s each, load average ${load0.toFixed(2)} -> ${loadavg()[0].toFixed(2)}:\n${table(rows, ms)}\n`,
    );
    return out;
  },
};
export default suite;
