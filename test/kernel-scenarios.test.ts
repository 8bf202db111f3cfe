/**
 * The table-driven kernel suite: every scenario under scenarios/ runs on the simulated
 * kernel and must produce, step for step, the result recorded in its `expect` — which for
 * host-runnable scenarios is what the host kernel did (see test/native-host.test.ts).
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { resultKey } from "../shm/scenario.ts";
import { findScenarioFiles } from "../shm/scenario-files.ts";
import { runScenarioOnModel } from "../shm/scenario-runner.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "scenarios");
const files = findScenarioFiles(root).filter((f) => f.scenario.expect);

describe("kernel scenarios on the model", () => {
  it("has a suite of at least 40 scenarios with recorded results", () => {
    expect(files.length).toBeGreaterThanOrEqual(40);
  });

  it("covers every rule of LINUX.md (1-16)", () => {
    const covered = new Set(files.flatMap((f) => f.scenario.rules));
    const missing = Array.from({ length: 16 }, (_, i) => i + 1).filter((r) => !covered.has(r));
    expect(missing).toEqual([]);
  });

  for (const f of files) {
    it(`${f.id}: ${f.scenario.description}`, () => {
      const { results } = runScenarioOnModel(f.scenario);
      const got = results.map((r, i) => `${i} ${f.scenario.steps[i].op} ${resultKey(r)}`);
      const want = f.scenario.expect!.map(
        (r, i) => `${i} ${f.scenario.steps[i].op} ${resultKey(r)}`,
      );
      expect(got, `replay: npx shmlab run ${f.path}`).toEqual(want);
    });
  }
});
