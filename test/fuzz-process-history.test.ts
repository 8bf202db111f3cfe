/**
 * A fuzz run is a function of its seed and case count only, not of what the process ran
 * before: the same guided run on zero-beyond-eof gives the same cases, digests, features,
 * corpus and findings first in a fresh test process and again after other policies were
 * fuzzed, blind and guided, in the same process (what `npm run bench fuzz` does: 16
 * policies raced in one process). docs/fuzz.md ("Determinism across a long process")
 * has the history: a bench-vs-standalone difference that turned out to be two code versions.
 */
import { describe, expect, it } from "vitest";
import { getPolicy } from "../compositor/policies/index.ts";
import { runCase } from "../lab/fuzz/case.ts";
import { type CaseOutcome, type FuzzReport, fuzzLoop, outcomeOf } from "../lab/fuzz/fuzz.ts";

interface Traced {
  report: FuzzReport;
  digests: string[];
}

/** The loop driven on this thread, as `fuzz` drives it, keeping every case's digest. */
function traced(name: string, seed: number, runs: number, mode: "guided" | "blind"): Traced {
  const policy = getPolicy(name);
  const loop = fuzzLoop({ policy, policyArg: name, seed, runs, mode, shrink: false });
  const digests: string[] = [];
  let step = loop.next(undefined as unknown as CaseOutcome[]);
  while (!step.done) {
    const outs = step.value.map((fc) =>
      outcomeOf(fc, runCase(fc, policy, { features: true }), false),
    );
    for (const o of outs) digests.push(o.digest);
    step = loop.next(outs);
  }
  return { report: step.value, digests };
}

const summary = ({ report: r, digests }: Traced) => ({
  digests,
  features: [...r.features].sort(),
  corpus: r.corpus,
  findings: r.firstSeen.map((f) => [f.signature, f.runs]),
});

// Policies that die, copy, populate and read at create: varied kernel and compositor state.
const WARM_UP = ["libwayland", "wlroots", "kwin", "xorg-mit-shm", "populate", "hyprland"];

describe("fuzz runs and process history", () => {
  it("gives the same cases and features after other policies were fuzzed in the process", () => {
    const fresh = summary(traced("zero-beyond-eof", 1, 48, "guided"));
    for (const name of WARM_UP)
      for (const mode of ["blind", "guided"] as const) traced(name, 7, 32, mode);
    const warm = summary(traced("zero-beyond-eof", 1, 48, "guided"));
    expect(warm.digests).toEqual(fresh.digests);
    expect(warm).toEqual(fresh);
    expect(fresh.corpus).toBeGreaterThan(0);
  });
});
