/**
 * Deterministic compare runs per second: the default matrix's mix of policies and
 * behaviours, against the simplest run (one honest client under `none`) measured in the
 * same process.
 */
import { compare, defaultBehaviours, defaultPolicies } from "../lab/compare.ts";
import { makeSpec, runOne } from "../lab/run.ts";
import { type BenchSuite, measureRate } from "./harness.ts";

const suite: BenchSuite = {
  name: "lab: compare runs",
  async run() {
    const simplest = measureRate(
      () => {
        runOne(makeSpec({ policy: "none", behaviour: "honest-renderer", honest: 0, seed: 1 }));
      },
      1,
      1500,
    );
    const t0 = performance.now();
    const r = compare({
      policies: defaultPolicies(),
      behaviours: defaultBehaviours(),
      seed: 1,
      seeds: 1,
      variant: "standard",
      kernelFeatures: [],
      frames: 16,
      honest: 2,
    });
    const matrixRate = (r.runs.length * 1000) / (performance.now() - t0);
    return [
      {
        name: `default matrix (${r.runs.length} runs: 3 clients, 16 frames each)`,
        value: matrixRate,
        unit: "runs/s",
        baseline: { name: "one honest client under none, 16 frames", value: simplest },
      },
    ];
  },
};
export default suite;
