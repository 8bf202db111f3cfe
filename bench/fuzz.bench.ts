/**
 * Fuzz throughput on one core: generated cases per second (generation, the action-list
 * clients, the invariant checks after every step and frame), against one plain
 * deterministic `compare` run (runOne) of the same length — same policy, frames, honest
 * bystanders — measured in the same process. A fuzz case runs up to three hostile clients
 * where the compare run has one, so it may cost more; the goal is that checking invariants
 * at every step keeps the fuzzer within 2× a plain run: at least 0.5 of its rate.
 */
import { getPolicy } from "../compositor/policies/index.ts";
import { generateProgram } from "../lab/fuzz/actions.ts";
import { CASE_DEFAULTS, runCase } from "../lab/fuzz/case.ts";
import { makeSpec, runOne } from "../lab/run.ts";
import { type BenchSuite, measureRate } from "./harness.ts";

const POLICY = "libwayland";

const suite: BenchSuite = {
  name: "fuzz: cases per second on one core",
  async run() {
    const policy = getPolicy(POLICY);
    // Alternate the two measurements and keep each one's best round: on a shared machine the
    // load changes between rounds, and the best round is the least disturbed.
    let fuzzRate = 0;
    let plainRate = 0;
    for (let round = 0; round < 2; round++) {
      fuzzRate = Math.max(fuzzRate, measureFuzz());
      plainRate = Math.max(plainRate, measurePlain());
    }
    function measureFuzz(): number {
      let seed = 1;
      return measureRate(
        () => {
          const s = seed++;
          runCase(
            { ...CASE_DEFAULTS, seed: s, policy: POLICY, program: generateProgram(s) },
            policy,
          );
        },
        1,
        1500,
      );
    }
    function measurePlain(): number {
      let plainSeed = 1;
      return measureRate(
        () => {
          runOne(
            makeSpec({
              policy: POLICY,
              behaviour: "truncate-during-read",
              seed: plainSeed++,
              frames: CASE_DEFAULTS.frames,
              honest: CASE_DEFAULTS.honest,
            }),
          );
        },
        1,
        1500,
      );
    }
    return [
      {
        name: `fuzz cases (${POLICY}, ${CASE_DEFAULTS.frames} frames, ${CASE_DEFAULTS.honest} honest, 1-3 hostile)`,
        value: fuzzRate,
        unit: "runs/s",
        baseline: { name: "runOne truncate-during-read, same length", value: plainRate },
        goal: { minRatio: 0.5, text: ">= 0.5 of a plain run's rate" },
      },
    ];
  },
};
export default suite;
