/**
 * The host kernel is the judge: every scenario runs on the model and on the host (where the
 * helper can be built), and any disagreement fails the suite. A short differential fuzz run
 * checks that random scripts agree too.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { describeDiff, runConformance } from "../lab/conformance.ts";
import { fuzzConformance, generateScenario } from "../lab/conformance-fuzz.ts";
import { hostAvailability } from "../native/host.ts";
import { validateScenario } from "../shm/scenario.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "scenarios");
const avail = await hostAvailability();
if (!avail.available) console.log(`host conformance skipped: ${avail.reason}`);

describe("conformance: model against the host kernel", () => {
  it("every scenario agrees (host-runnable ones with the host, model-only ones with expect)", async () => {
    const report = await runConformance(root);
    const bad = report.rows
      .filter((r) => r.verdict === "disagree" || r.verdict === "model-only-differs")
      .map((r) => `${r.id}: ${describeDiff(r)} (replay: npx shmlab run ${r.path})`);
    expect(bad).toEqual([]);
    expect(report.rows.length).toBeGreaterThanOrEqual(60);
    if (avail.available) {
      expect(report.rows.filter((r) => r.verdict === "agree").length).toBeGreaterThanOrEqual(60);
    }
  });

  it("the fuzzer's scripts are valid and deterministic per seed", () => {
    const a = generateScenario(42, 25);
    expect(validateScenario(a)).toBe(a);
    expect(generateScenario(42, 25)).toEqual(a);
    expect(generateScenario(43, 25)).not.toEqual(a);
  });

  it.skipIf(!avail.available)("a bounded differential fuzz run finds no disagreement", async () => {
    const report = await fuzzConformance({ seed: 7, runs: 150, steps: 25 });
    const found = report.findings.map(
      (f) =>
        `${f.disagreement.scenario.name} step ${f.disagreement.step} (replay: npx shmlab conformance --fuzz --seed ${f.disagreement.scenario.name.slice(5)} --runs 1)`,
    );
    expect(found).toEqual([]);
  });
});
