/**
 * Acceptance: on `none` the fuzzer finds the truncation death within seconds, reports it as
 * the policy's own promise ("the compositor dies"), shrinks it to the handful of actions the
 * attack needs, and the finding replays to the same digest.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { getPolicy } from "../compositor/policies/index.ts";
import { readFinding } from "../lab/fuzz/finding.ts";
import { fuzz, replayFinding } from "../lab/fuzz/fuzz.ts";

const dir = mkdtempSync(join(tmpdir(), "shmlab-fuzz-none-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Cases the fuzzer gets to find the death in. */
const CASE_BUDGET = 600;

describe("fuzz against none", () => {
  it("finds the truncation death within a few hundred cases, shrunk, and it replays exactly", () => {
    const none = getPolicy("none");
    // A budget in cases, not seconds (tests never assert wall-clock times): every case is
    // seeded, so where the death comes is the same on any machine; at a few hundred cases a
    // second (docs/performance.md) this is "within seconds".
    const r = fuzz({
      policy: none,
      policyArg: "none",
      seed: 1,
      runs: CASE_BUDGET,
      maxFindings: 1,
      out: dir,
    });
    const death = r.findings.find((f) => f.finding.invariant === "compositor-alive");
    expect(death, `no compositor death in ${CASE_BUDGET} cases`).toBeDefined();
    const first = r.firstSeen.find((s) => s.signature.startsWith("compositor-alive"));
    expect(first!.runs).toBeLessThanOrEqual(CASE_BUDGET);
    const f = death!.finding;
    // The read of the truncated pool faults inside that pool's own mapping.
    expect(f.place).toBe("SIGBUS (unhandled) in the pool being read");
    expect(f.expected).toBe(true); // none's clientReceives: "the compositor dies of SIGBUS"
    // Shrinking shrinks: a generated program has dozens of actions; the attack needs about six
    // (memfd, pool, buffer, attach+commit, truncate, and perhaps a surface).
    expect(f.found.actions).toBeGreaterThan(10);
    const n = f.actions.flat().length;
    expect(n).toBeLessThanOrEqual(8);
    expect(n).toBeLessThan(f.found.actions);
    expect(
      f.actions
        .flat()
        .some(
          (a) =>
            a.startsWith("truncate") || a.startsWith("child-truncate") || a.startsWith("punch"),
        ),
    ).toBe(true);
    expect(death!.stable).toBe(true);
    // The file on disk replays to the same digest and the same failure.
    const file = readFinding(death!.file!);
    const again = replayFinding(file, none);
    expect(again.sameFailure).toBe(true);
    expect(again.sameDigest).toBe(true);
    // Atomic writes leave no temporary files; the corpus keeps the seed.
    expect(readdirSync(dir).filter((x) => x.includes(".tmp-"))).toEqual([]);
    expect(readdirSync(dir)).toContain("corpus.json");
  });

  it("replays the corpus first on the next run", () => {
    const r = fuzz({
      policy: getPolicy("none"),
      policyArg: "none",
      seed: 1_000_000,
      runs: 1,
      out: dir,
    });
    expect(r.corpusRuns).toBeGreaterThan(0);
    const death = r.findings.find((f) => f.finding.invariant === "compositor-alive");
    expect(death).toBeDefined();
    expect(death!.fresh).toBe(false); // deduplicated against the folder
  });
});
