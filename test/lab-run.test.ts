/**
 * Deterministic runs: the same spec replays to the same record, and the verdicts are what
 * the compositors' own sources and test suites say — asserted from the run records.
 */
import { describe, expect, it } from "vitest";
import type { Behaviour } from "../client/behaviour.ts";
import { compare } from "../lab/compare.ts";
import { makeSpec, replayCommand, runOne } from "../lab/run.ts";

describe("deterministic runs", () => {
  it("replay to the same record (digest) from the same seed", () => {
    for (const policy of ["libwayland", "wlroots", "none"]) {
      const spec = makeSpec({ policy, behaviour: "truncate-during-read", seed: 11 });
      const a = runOne(spec);
      const b = runOne(spec);
      expect(b.digest, a.replay).toBe(a.digest);
      expect(b.timeline).toEqual(a.timeline);
    }
  });

  it("different seeds interleave differently", () => {
    const digests = new Set(
      [1, 2, 3, 4, 5].map(
        (seed) =>
          runOne(makeSpec({ policy: "wlroots", behaviour: "truncate-during-read", seed })).digest,
      ),
    );
    expect(digests.size).toBeGreaterThan(1);
  });

  it("the replay command names every non-default choice", () => {
    const s = makeSpec({
      policy: "map-nofault",
      behaviour: "shrink-regrow",
      seed: 9,
      frames: 5,
      kernelFeatures: ["zero-beyond-eof"],
    });
    expect(replayCommand(s)).toBe(
      "npx shmlab compare --policies map-nofault --behaviours shrink-regrow --seed 9 --frames 5 --kernel-feature zero-beyond-eof",
    );
  });

  it("client steps do run inside the compositor's reads (the race is exercised)", () => {
    const r = runOne(makeSpec({ policy: "libwayland", behaviour: "honest-renderer", seed: 2 }));
    expect(r.compositor.preemptions).toBeGreaterThan(0);
  });
});

describe("verdicts match the compositors' sources (from the run records)", () => {
  const truncate = (policy: string, seed = 1) =>
    runOne(makeSpec({ policy, behaviour: "truncate-after-commit", seed }));

  it("none: a truncation kills the compositor with SIGBUS (no handler)", () => {
    const r = truncate("none");
    expect(r.verdict).toBe("died");
    expect(r.compositor.death?.signal).toBe("SIGBUS");
  });

  it("libwayland: survives, and the client gets wl_shm.invalid_fd on its wl_buffer (wayland-shm.c wl_shm_buffer_end_access)", () => {
    // Seeds where the compositor read the buffer after the truncation (the SIGBUS path).
    const runs = [1, 2, 3, 4, 5, 6].map((s) => truncate("libwayland", s));
    expect(runs.every((r) => r.compositor.alive)).toBe(true);
    const viaSigbus = runs.filter((r) => r.cost.signals > 0);
    expect(viaSigbus.length).toBeGreaterThan(0);
    for (const r of viaSigbus) {
      const e = r.clients.at(-1)!.protocolError;
      expect(e?.error).toBe("wl_shm.invalid_fd");
      expect(e?.interface).toBe("wl_buffer");
    }
  });

  it("wlroots and KWin: survive silently, zeros on screen, nothing sent to the client", () => {
    for (const policy of ["wlroots", "kwin"]) {
      const runs = [1, 2, 3].map((s) => truncate(policy, s)).filter((r) => r.cost.signals > 0);
      expect(runs.length, policy).toBeGreaterThan(0);
      for (const r of runs) {
        expect(r.verdict, `${policy}: ${r.replay}`).toBe("tolerated");
        expect(r.clients.at(-1)!.protocolError).toBeNull();
        // What the truncating client's own window shows: the handler's zeros.
        const o = r.clients.at(-1)!.hostileOutcome;
        expect(o?.kind === "tolerated" && o.screen, r.replay).toBe("zero");
      }
    }
  });

  it("honest bystanders keep exactly their own pixels whatever the attacker does, on every policy that survives", () => {
    const r = compare({
      policies: [
        "libwayland",
        "wlroots",
        "kwin",
        "smithay",
        "copy-pread",
        "map-nofault",
        "zero-beyond-eof",
      ],
      behaviours: ["truncate-during-read", "shrink-regrow", "punch-holes"],
      seed: 1,
      seeds: 2,
      variant: "standard",
      kernelFeatures: [],
      frames: 12,
      honest: 2,
    });
    for (const run of r.runs) {
      for (const c of run.clients.filter((x) => x.honest)) {
        expect(c.honestResult?.pixels, run.replay).toBe("correct");
      }
    }
  });

  it("seals-required refuses an unsealed honest client (the policy's cost)", () => {
    const r = runOne(makeSpec({ policy: "seals-required", behaviour: "honest-renderer", seed: 1 }));
    expect(r.verdict).toBe("honest-harmed");
    expect(r.clients.at(-1)!.protocolError?.error).toBe("wl_shm.invalid_fd");
  });

  it("a hook that throws stops the run, and every client is still stopped (runtime.stop in finally)", () => {
    let leftAt = "";
    const watcher: Behaviour = {
      name: "watcher",
      description: "waits forever; notes when the run ends it",
      honest: false,
      source: "test",
      *run(c) {
        try {
          yield c.setup();
          for (;;) yield c.roundtrip();
        } finally {
          leftAt = "stopped";
        }
      },
    };
    let frames = 0;
    expect(() =>
      runOne(makeSpec({ policy: "libwayland", behaviour: "watcher", frames: 8 }), {
        behaviour: watcher,
        afterFrame: () => {
          if (++frames === 2) throw new Error("hook failed");
        },
      }),
    ).toThrow("hook failed");
    expect(frames).toBe(2);
    expect(leftAt).toBe("stopped");
  });
});

/** Seed 1, one seed, 4 frames, one honest bystander: the small matrices the suites below read. */
const smallCompare = (policies: string[], behaviours: string[]) =>
  compare({
    policies,
    behaviours,
    seed: 1,
    seeds: 1,
    variant: "standard",
    kernelFeatures: [],
    frames: 4,
    honest: 1,
  });

describe("behaviours a policy's protocol cannot express", () => {
  it("are n/a in the comparison, with the reason, and never run", async () => {
    const { renderMatrix } = await import("../lab/matrix-text.ts");
    const r = smallCompare(["libwayland", "xorg-mit-shm"], ["resize-pool-smaller", "pipe-fd"]);
    expect(r.notApplicable).toEqual([
      {
        policy: "xorg-mit-shm",
        behaviour: "resize-pool-smaller",
        why: expect.stringMatching(/no pool resize/),
      },
    ]);
    expect(r.runs.map((x) => `${x.spec.policy}/${x.spec.behaviour}`)).not.toContain(
      "xorg-mit-shm/resize-pool-smaller",
    );
    expect(r.cells.find((c) => c.policy === "xorg-mit-shm")?.text).toBe("BadMatch (kept)");
    expect(renderMatrix(r, 200)).toMatch(/n\/a/);
  });
});

describe("matrix cells fit their column without losing their meaning", () => {
  it("a tolerated cell names the window's pixel class in full words' short forms, not cut", async () => {
    const { shortCell } = await import("../lab/matrix-text.ts");
    // verdict.ts: `survived (${screen}), no error`; "surv(correct)" was cut to "surv(corre".
    expect(shortCell("survived (correct), no error")).toBe("surv(ok)");
    expect(shortCell("survived (foreign), no error")).toBe("surv(frgn)");
    expect(shortCell("last frame kept, no error")).toBe("kept");
  });
});

describe("the replay lines under the matrix", () => {
  it("show one cell of each verdict, spread over the policies, not the first column only", async () => {
    const { replayLines } = await import("../lab/matrix-text.ts");
    const r = smallCompare(
      ["none", "libwayland", "wlroots"],
      ["honest-renderer", "truncate-after-commit", "truncate-during-read", "huge-pool"],
    );
    const lines = replayLines(r);
    const verdicts = new Set(r.cells.map((c) => c.verdict));
    for (const v of verdicts) expect(lines.some((l) => l.includes(`(${v})`))).toBe(true);
    // four lines are enough to reach all three columns (none's cells alone would fill them)
    const four = replayLines(r, 4);
    const policies = new Set(four.map((l) => /^ {2}(\S+) ×/.exec(l)?.[1]));
    expect(policies.size).toBe(3);
    for (const l of lines) expect(l).toMatch(/npx shmlab compare --policies \S+ --behaviours \S+/);
  });
});

describe("the legend under the matrix", () => {
  it("names the policies that harm an honest behaviour with no attacker, read from the cells", async () => {
    const { renderLegend } = await import("../lab/matrix-text.ts");
    const r = smallCompare(
      ["libwayland", "seals-required"],
      ["honest-renderer", "truncate-after-commit"],
    );
    const harmed = r.cells.find(
      (c) => c.behaviour === "honest-renderer" && c.verdict === "honest-harmed",
    );
    // seals-required refuses the honest renderer's unsealed pool: its own price.
    expect(harmed?.policy).toBe("seals-required");
    const legend = renderLegend(r);
    expect(legend).toContain("seals-required (honest-renderer)");
    expect(legend).not.toContain("libwayland (honest-renderer)");
    // Without a result (or with no such cell) the line is absent.
    expect(renderLegend()).not.toContain("own price");
  });
});
