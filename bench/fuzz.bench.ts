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
 *   (4. blind vs guided on every built-in policy: bench/fuzz-guided.bench.ts.)
 *
 * `npm run bench fuzz` runs both files.
 */
import { Session } from "node:inspector/promises";
import { availableParallelism } from "node:os";
import { getPolicy } from "../compositor/policies/index.ts";
import { generateProgram } from "../lab/fuzz/actions.ts";
import { CASE_DEFAULTS, runCase } from "../lab/fuzz/case.ts";
import { type FuzzReport, fuzz } from "../lab/fuzz/fuzz.ts";
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
 * Per wall-clock second and per CPU-second of the process (user+sys: what other processes'
 * load does not take, though GC threads count).
 */
function interleavedRates(fns: (() => void)[], totalMs: number): { wall: number[]; cpu: number[] } {
  for (const f of fns) for (let i = 0; i < 5; i++) f(); // warm-up
  const ms = fns.map(() => 0);
  const cpuUs = fns.map(() => 0);
  const calls = fns.map(() => 0);
  const end = performance.now() + totalMs;
  while (performance.now() < end) {
    fns.forEach((f, i) => {
      const c = process.cpuUsage();
      const t = performance.now();
      f();
      ms[i] += performance.now() - t;
      const d = process.cpuUsage(c);
      cpuUs[i] += d.user + d.system;
      calls[i]++;
    });
  }
  return {
    wall: calls.map((n, i) => (n * 1000) / ms[i]),
    cpu: calls.map((n, i) => (n * 1e6) / cpuUs[i]),
  };
}

function throughput(): BenchResult[] {
  const policy = getPolicy(POLICY);
  let s1 = 1;
  let s2 = 1;
  let s3 = 1;
  const rates = interleavedRates(
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
  const [withF, without, plain] = rates.wall;
  const [withFCpu, , plainCpu] = rates.cpu;
  return [
    {
      name: `fuzz cases with features (${POLICY}, ${CASE_DEFAULTS.frames} frames, ${CASE_DEFAULTS.honest} honest, 1-3 hostile; issue 16 goal: 1,000/s per core)`,
      value: withF,
      unit: "runs/s",
      baseline: { name: "runOne truncate-during-read, same length", value: plain },
      goal: { minRatio: 0.5, text: ">= 0.5 of a plain run's rate" },
    },
    {
      name: "the same, per CPU-second of the process (issue 16's per-core figure under load)",
      value: withFCpu,
      unit: "runs/cpu-s",
      baseline: {
        name: "runOne truncate-during-read, same length, per CPU-second",
        value: plainCpu,
      },
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

const suite: BenchSuite = {
  name: "fuzz: throughput, feedback cost, workers",
  async run() {
    const out: BenchResult[] = [...throughput()];
    out.push(await v8Coverage());
    out.push(...(await workers()));
    return out;
  },
};
export default suite;
