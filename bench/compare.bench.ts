/**
 * Deterministic compare runs per second: the default matrix (what `npm start` runs) in one
 * thread, against the simplest run (one honest client under `none`) measured in the same
 * repetition; then the same matrix over every core (lab/compare-parallel.ts, worker start-up
 * included), against the one-thread figure of the same repetition; and its wall time against
 * issue 16's goal for `npm start`: the default compare in at most 2 s of compute; and the
 * CPU time both ways (all threads), which says what the workers cost.
 */
import { availableParallelism } from "node:os";
import {
  type CompareOptions,
  compare,
  defaultBehaviours,
  defaultPolicies,
} from "../lab/compare.ts";
import { compareParallel } from "../lab/compare-parallel.ts";
import { makeSpec, runOne } from "../lab/run.ts";
import { type BenchResult, type BenchSuite, MIN_REPS, measureRate, median } from "./harness.ts";

const GOAL_SECONDS = 2;

const suite: BenchSuite = {
  name: "lab: compare runs",
  async run() {
    const opts: CompareOptions = {
      policies: defaultPolicies(),
      behaviours: defaultBehaviours(),
      seed: 1,
      seeds: 1,
      variant: "standard",
      kernelFeatures: [],
      frames: 16,
      honest: 2,
    };
    const cores = availableParallelism();
    const simplest: number[] = [];
    const single: number[] = [];
    const parallel: number[] = [];
    const seconds: number[] = [];
    const cpuSingle: number[] = [];
    const cpuParallel: number[] = [];
    const cpu = () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1e6;
    };
    let runs = 0;
    for (let rep = 0; rep < MIN_REPS; rep++) {
      simplest.push(
        measureRate(
          () => {
            runOne(makeSpec({ policy: "none", behaviour: "honest-renderer", honest: 0, seed: 1 }));
          },
          1,
          300,
        ),
      );
      let c0 = cpu();
      const one = compare(opts);
      cpuSingle.push(cpu() - c0);
      runs = one.runs.length;
      single.push((runs * 1000) / one.elapsedMs);
      c0 = cpu();
      const many = await compareParallel(opts, { workers: cores });
      cpuParallel.push(cpu() - c0);
      parallel.push((runs * 1000) / many.elapsedMs);
      seconds.push(many.elapsedMs / 1000);
    }
    const goalRate = runs / GOAL_SECONDS;
    const out: BenchResult[] = [
      {
        name: `default matrix in one thread (${runs} runs: 3 clients, 16 frames each)`,
        value: median(single),
        samples: single,
        unit: "runs/s",
        baseline: {
          name: "one honest client under none, 16 frames",
          value: median(simplest),
          samples: simplest,
        },
      },
      {
        name: `default matrix over ${cores} threads (piscina workers + this one, start-up included)`,
        value: median(parallel),
        samples: parallel,
        unit: "runs/s",
        baseline: { name: "the same in one thread", value: median(single), samples: single },
      },
      {
        name: `default matrix over ${cores} threads: ${runs} runs in ${median(seconds).toFixed(2)} s (median)`,
        value: median(parallel),
        samples: parallel,
        unit: "runs/s",
        baseline: {
          name: `${runs} runs in ${GOAL_SECONDS} s`,
          value: goalRate,
          samples: parallel.map(() => goalRate),
        },
        goal: { minRatio: 1, text: `npm start's compare in <= ${GOAL_SECONDS} s` },
      },
      {
        // What the workers cost: loading the sources in each thread and code that starts
        // cold in each thread's JIT. On a machine whose cores are busy with other work this
        // is what a second thread adds; on an idle one it runs beside this thread.
        name: `CPU time of the matrix over ${cores} threads, every thread (s)`,
        value: median(cpuParallel),
        samples: cpuParallel,
        unit: "CPU-s",
        baseline: { name: "in one thread", value: median(cpuSingle), samples: cpuSingle },
      },
    ];
    return out;
  },
};
export default suite;
