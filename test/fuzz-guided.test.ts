/**
 * The guided loop: deterministic per seed (the same corpus and findings twice, and with
 * worker threads), and ahead of blind generation on the same budget — counted in features
 * reached over the same number of cases, never in time.
 */
import { describe, expect, it } from "vitest";
import { getPolicy } from "../compositor/policies/index.ts";
import { type FuzzReport, fuzz } from "../lab/fuzz/fuzz.ts";
import { fuzzParallel } from "../lab/fuzz/parallel.ts";

const sig = (r: FuzzReport) =>
  JSON.stringify({
    features: [...r.features].sort(),
    corpus: r.corpus,
    findings: r.firstSeen.map((f) => [f.signature, f.runs]),
  });

describe("guided fuzzing", () => {
  it("is deterministic per seed, on one thread or on workers", async () => {
    const policy = getPolicy("kwin");
    const o = { policy, policyArg: "kwin", seed: 11, runs: 40, shrink: false };
    const a = fuzz(o);
    expect(sig(fuzz(o))).toBe(sig(a));
    expect(sig(await fuzzParallel({ ...o, workers: 2 }))).toBe(sig(a));
    expect(a.corpus).toBeGreaterThan(0);
  });

  it.each(["libwayland", "smithay"])(
    "reaches more features than blind generation in the same number of cases (%s)",
    (name) => {
      const policy = getPolicy(name);
      const o = { policy, policyArg: name, seed: 1, runs: 240, shrink: false };
      const blind = fuzz({ ...o, mode: "blind" });
      const guided = fuzz({ ...o, mode: "guided" });
      expect(blind.corpus).toBe(0);
      expect(guided.features.size).toBeGreaterThan(blind.features.size);
    },
  );
});
