/**
 * The stress mode: generated clients in real worker threads beside honest ones, and the
 * deterministic re-check that decides whether a stress failure is reported as reproducible.
 */
import { describe, expect, it } from "vitest";
import { getPolicy } from "../compositor/policies/index.ts";
import { CASE_DEFAULTS, runCase, signature } from "../lab/fuzz/case.ts";
import { caseFor } from "../lab/fuzz/fuzz.ts";
import { fuzzStress, recheck } from "../lab/fuzz/stress.ts";

describe("fuzz stress mode", () => {
  it("runs generated clients in worker threads; libwayland stays quiet", async () => {
    const policy = getPolicy("libwayland");
    const r = await fuzzStress({
      policy,
      policyArg: "libwayland",
      seed: 1,
      runs: 2,
      workers: 3,
      sessionMs: 700,
    });
    expect(r.sessions).toBe(2);
    // The generated clients really ran in the workers: they made syscalls over the channel.
    const hostile = r.log.flatMap((s) => s.hostile);
    expect(hostile.length).toBeGreaterThan(0);
    expect(hostile.some((h) => h.requests > 0)).toBe(true);
    expect(r.failures).toBe(0);
    expect(r.findings).toEqual([]);
  });

  it("a failure is reported as reproducible only when a deterministic rerun fails", () => {
    const none = getPolicy("none");
    const o = { policy: none, policyArg: "none", seed: 1 };
    // The first generated program that truncates a committed pool (fatal under none).
    let seed = 1;
    while (!runCase(caseFor(o, seed), none).failure && seed < 100) seed++;
    const got = recheck(none, caseFor(o, seed), 3);
    expect(got).not.toBeNull();
    // The truncated file is the pool being read: the fault is in its own mapping.
    expect(signature(got!.r.failure!)).toBe(
      "compositor-alive @ SIGBUS (unhandled) in the pool being read",
    );
    // A program that never shrinks a file cannot fail, whatever the seed.
    const calm = {
      ...CASE_DEFAULTS,
      seed: 5,
      policy: "none",
      program: {
        clients: [
          [{ k: "memfd" as const, size: 16384, sealing: false }, { k: "surface" as const }],
        ],
      },
    };
    expect(recheck(none, calm, 3)).toBeNull();
  });
});
