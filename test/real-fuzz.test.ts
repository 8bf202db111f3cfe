/**
 * Fuzzing a real compositor (lab/fuzz/real.ts): what makes a case a finding, the shrinker
 * (on a fake runner: it must keep exactly the action that matters), and a short session on
 * the installed sway beside wlroots-0.15 (skips with a note without sway or a compiler).
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Action } from "../lab/fuzz/actions.ts";
import {
  fuzzReal,
  kindOf,
  programFor,
  type RealCaseResult,
  type RealFuzzCase,
  shrinkRealCase,
} from "../lab/fuzz/real.ts";
import { realCompositorPolicy } from "../lab/real-conformance.ts";
import { driverFor } from "../lab/real-drivers.ts";
import { wlClientAvailability } from "../native/wl-client.ts";
import { getReal } from "../real/index.ts";
import type { RealDriver, RealRunObservation } from "../real/target.ts";

const ok = { verdict: "error-to-client", cell: "invalid_fd" } as const;

describe("the program a case runs on both sides", () => {
  const prog = [
    { k: "memfd", size: 8192, sealing: false },
    { k: "create-pool", f: 0, size: "file" },
    { k: "resize", p: 0, size: 16384 },
    { k: "truncate", f: 0, size: 0 },
  ] as Action[];
  const run = async () => ({}) as RealRunObservation;

  it("is the driver's form of it where the driver has one (X11 drops resize), else the program", async () => {
    const x11 = await driverFor("x11");
    if (!("run" in x11)) throw new Error(x11.why);
    const f = programFor(x11, prog);
    expect(f.actions.map((a) => a.k)).toEqual(["memfd", "create-pool", "truncate"]);
    expect(f.dropped).toMatchObject([{ i: 2, k: "resize" }]);
    const plain: RealDriver = { endpointKind: "wayland", run };
    expect(programFor(plain, prog)).toEqual({ actions: prog, dropped: [] });
  });
});

describe("what a real fuzz case finds", () => {
  it("a death or a harmed honest client on the real one, or any disagreement with the model", () => {
    expect(kindOf({ verdict: "died", cell: "DIED SIGBUS" }, false)).toBe("real-died");
    expect(kindOf({ verdict: "honest-harmed", cell: "honest disconnected" }, false)).toBe(
      "real-honest-harmed",
    );
    expect(kindOf({ verdict: "undetected", cell: "no effect seen" }, false)).toBe(
      "model-disagrees",
    );
    expect(kindOf(ok, true)).toBeNull();
    // another client's pixels in a hostile window (the model's foreign-pixels invariant)
    expect(kindOf(ok, true, 32)).toBe("real-foreign-pixels");
    expect(kindOf({ verdict: "died", cell: "DIED SIGBUS" }, false, 32)).toBe("real-died");
  });
});

describe("shrinking a real case", () => {
  it("keeps only the action that brings the finding back", async () => {
    const actions = [
      { k: "memfd", size: 4096, sealing: false },
      { k: "truncate", file: 0, size: 0 },
      { k: "close", file: 0 },
      { k: "dup", file: 0 },
    ] as unknown as Action[];
    const c: RealFuzzCase = { seed: 1, frames: 4, honest: 1, timeoutMs: 100, actions };
    const obs = {} as RealRunObservation;
    let calls = 0;
    // A stand-in for the real compositor: it dies whenever a truncate is in the program.
    const run = async (x: RealFuzzCase): Promise<RealCaseResult> => {
      calls++;
      const dies = x.actions.some((a) => a.k === "truncate");
      return {
        kind: dies ? "real-died" : null,
        dropped: [],
        model: ok,
        real: dies ? { verdict: "died", cell: "DIED SIGBUS" } : ok,
        observation: obs,
      };
    };
    const s = await shrinkRealCase(run, c, "real-died", 50);
    expect(s.case.actions.map((a) => a.k)).toEqual(["truncate"]);
    expect(s.attempts).toBe(calls);
    const capped = await shrinkRealCase(run, c, "real-died", 1);
    expect(capped.attempts).toBe(1);
  });
});

const client = await wlClientAvailability();
const sway = getReal("sway").probe();
const skip = !sway.available ? sway.why : !client.available ? client.reason : null;
if (skip) console.log(`real fuzz on sway skipped: ${skip}`);

describe.skipIf(skip !== null)("fuzz --real sway (two cases)", () => {
  it("runs generated programs on fresh instances beside wlroots-0.15 and writes only findings", async () => {
    const comp = getReal("sway");
    const version = (sway as { version: string }).version;
    const policy = realCompositorPolicy("sway", version)!;
    expect(policy).toBe("wlroots-0.15");
    const driver = await driverFor("wayland");
    if (!("run" in driver)) throw new Error(driver.why);
    const out = mkdtempSync(join(tmpdir(), "shmlab-realfuzz-"));
    try {
      const seen: RealCaseResult[] = [];
      const r = await fuzzReal({
        compositor: comp,
        driver,
        policy,
        version,
        seed: 1,
        runs: 2,
        out,
        frames: 6,
        honest: 1,
        timeoutMs: 1500,
        length: 8,
        maxShrinkAttempts: 2,
        onCase: (_i, x) => seen.push(x),
      });
      expect(r.cases).toBe(2);
      expect(seen).toHaveLength(2);
      // Guided by what the real client observed: the first case is always new, so kept.
      expect(r.features).toBeGreaterThan(0);
      expect(r.corpus).toBeGreaterThanOrEqual(1);
      for (const x of seen) expect(x.observation.target.version).toBe(version);
      // Every finding was written, and only findings.
      expect(readdirSync(out)).toHaveLength(r.findings.length);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
