/**
 * The lab side of the real-compositor judge (lab/real-run.ts, lab/real-conformance.ts): a
 * real observation becomes the same facts as a model run and gets its verdict from the same
 * rules; pixels unseen on the real side are masked on both; conformance pairs each policy
 * with the compositor and version it follows and counts disagreements. Driven here by fake
 * compositors and drivers (no binary needed): a "mirror" driver that reports what the model
 * did must agree everywhere, and drivers that report something else must be caught.
 */
import { describe, expect, it } from "vitest";
import { getPolicy } from "../compositor/policies/index.ts";
import {
  policiesFollowing,
  type RealCompositorLike,
  runRealConformance,
} from "../lab/real-conformance.ts";
import {
  factsOfObservation,
  faultsObserved,
  maskPixels,
  pairVerdicts,
  realErrorName,
  runModelWithFacts,
  runReal,
  type WatchedInstance,
} from "../lab/real-run.ts";
import type { RunRecord } from "../lab/record.ts";
import { makeSpec } from "../lab/run.ts";
import { verdictOf } from "../lab/verdict.ts";
import type {
  RealClientObservation,
  RealDriver,
  RealRunObservation,
  RealRunPlan,
} from "../real/target.ts";

const WESTON_121 = "weston 10.0.1 / libwayland-server 1.21.0";

/** A stand-in instance: no process; the fake driver sets the SIGBUS count strace would see. */
function fakeInstance(version = WESTON_121): WatchedInstance & { sigbus: number } {
  let dead: { code: number | null; signal: string | null } | null = null;
  return {
    kind: "weston",
    version,
    pid: 0,
    endpoint: { kind: "wayland", socket: "/nonexistent" },
    logPath: "",
    sigbus: 0,
    exited: () => dead,
    stop: async () => {
      dead ??= { code: 0, signal: null };
      return dead;
    },
    signalsSeen() {
      return { SIGBUS: this.sigbus, SIGSEGV: 0 };
    },
    faultNoted: () => null,
  };
}

/** What a real client would have reported, from a model record (the "mirror" driver). */
function observationOf(
  r: RunRecord,
  plan: RealRunPlan,
  pixels: "model" | "unchecked",
): RealRunObservation {
  const clients: RealClientObservation[] = r.clients.map((c) => ({
    index: c.index,
    behaviour: c.behaviour,
    honest: c.honest,
    protocolError: c.protocolError,
    errors: [],
    connection:
      c.closedBy === "compositor"
        ? "closed-by-server"
        : c.closedBy === "client"
          ? "closed-by-client"
          : "open",
    killed: null,
    framesDone: c.commits,
    releases: c.releases,
    commits: c.commits,
    pixels:
      pixels === "unchecked"
        ? "unchecked"
        : (c.honestResult?.pixels ??
          (c.hostileOutcome?.kind === "tolerated" ? c.hostileOutcome.screen : "none")),
    waitingFor: null,
    notes: [],
  }));
  const d = r.compositor.death;
  return {
    target: { kind: "weston", version: WESTON_121 },
    plan,
    compositor: { alive: r.compositor.alive, exit: d ? { code: null, signal: d.signal } : null },
    clients,
    ms: 1,
  };
}

/** Runs the model of `policy` and reports it as a real run would have been seen. */
function mirrorDriver(policy: string, pixels: "model" | "unchecked" = "unchecked"): RealDriver {
  return {
    endpointKind: "wayland",
    async run(instance, plan) {
      const spec = makeSpec({ policy, ...plan });
      const { record, facts } = runModelWithFacts(spec);
      (instance as ReturnType<typeof fakeInstance>).sigbus = facts.compositor.faultsHandled;
      return observationOf(record, plan, pixels);
    },
  };
}

const plan: RealRunPlan = {
  behaviour: "truncate-after-commit",
  honest: 1,
  seed: 3,
  frames: 8,
  params: {},
  timeoutMs: 1000,
};

describe("a real observation is classified by the model's verdict rules", () => {
  it("the same facts give the same verdict: a mirrored model run agrees with itself", async () => {
    for (const behaviour of [
      "truncate-after-commit",
      "honest-renderer",
      "stride-overflow",
      "resize-pool-smaller",
    ]) {
      const spec = makeSpec({ policy: "libwayland-1.21", ...plan, behaviour });
      const { record } = runModelWithFacts(spec);
      const real = await runReal(fakeInstance(), mirrorDriver("libwayland-1.21", "model"), {
        ...plan,
        behaviour,
      });
      expect([real.verdict, real.cell], behaviour).toEqual([record.verdict, record.cell]);
    }
  });

  it("a compositor death is 'died' with its signal, whatever the clients saw", () => {
    const spec = makeSpec({ policy: "none", ...plan });
    const { record } = runModelWithFacts(spec);
    const obs = observationOf(record, plan, "unchecked");
    obs.compositor = { alive: false, exit: { code: null, signal: "SIGBUS" } };
    expect(verdictOf(factsOfObservation(obs, null))).toEqual({
      verdict: "died",
      cell: "DIED SIGBUS",
    });
  });

  it("a SIGBUS the compositor survived (strace's count) makes a silent attack 'tolerated'", () => {
    const { record } = runModelWithFacts(makeSpec({ policy: "wlroots", ...plan }));
    const obs = observationOf(record, plan, "unchecked");
    expect(verdictOf(maskPixels(factsOfObservation(obs, 1))).verdict).toBe("tolerated");
    expect(verdictOf(maskPixels(factsOfObservation(obs, 0))).verdict).toBe("undetected");
  });

  it("errors are named as the model names them (wl_buffer's code 2 is wl_shm.invalid_fd)", () => {
    const e = {
      interface: "wl_buffer",
      error: "2",
      code: 2,
      objectId: 9,
      message: "error accessing SHM buffer",
    };
    expect(realErrorName(e)).toBe("wl_shm.invalid_fd");
    expect(realErrorName({ ...e, interface: "wl_shm_pool", code: 1 })).toBe(
      "wl_shm.invalid_stride",
    );
    expect(realErrorName({ ...e, interface: "x11", error: "BadValue", code: 2 })).toBe(
      "x11.BadValue",
    );
  });

  it("unchecked pixels mask the model's pixel facts too, and only then", async () => {
    const spec = makeSpec({ policy: "wlroots", ...plan });
    const { facts } = runModelWithFacts(spec);
    const unchecked = await runReal(fakeInstance(), mirrorDriver("wlroots", "unchecked"), plan);
    const seen = await runReal(fakeInstance(), mirrorDriver("wlroots", "model"), plan);
    const a = pairVerdicts(facts, unchecked);
    const b = pairVerdicts(facts, seen);
    expect(a.masked).toBe(true);
    expect(b.masked).toBe(false);
    expect(a.agree && b.agree).toBe(true);
    // Masked, the tolerated cell cannot name the zeros it did not see.
    expect(a.model.cell).toBe("survived, not shown, no error");
    expect(b.model.cell).toBe("zeros, no error");
  });
  it("the model's survived faults are masked only where the real facts cannot count them", () => {
    const spec = makeSpec({ policy: "xorg-mit-shm", ...plan, behaviour: "truncate-during-read" });
    const { facts } = runModelWithFacts(spec);
    // The model survives the fault, frees the segment, and answers later puts BadShmSeg.
    expect(facts.compositor.faultsHandled).toBeGreaterThan(0);
    expect(facts.clients.at(-1)?.xErrors?.[0]).toBe("BadShmSeg");
    const real = (faultsSeen: boolean) => ({
      ...verdictOf(facts),
      observation: {} as RealRunObservation,
      facts,
      pixelsUnchecked: false,
      sigbus: null,
      faultNoted: null,
      faultsSeen,
    });
    // Real facts that count faults (Xvfb's busfault log) are compared with the model's count.
    const seen = pairVerdicts(facts, real(true));
    expect(seen.agree).toBe(true);
    expect(seen.model.cell).toBe("zeros, no error");
    // Where they cannot, the model's count goes too: its verdict then rests on the X error.
    const unseen = pairVerdicts(facts, real(false));
    expect(unseen.model.cell).toBe("BadShmSeg (kept)");
    expect(unseen.agree).toBe(false);
  });

  it("faults are observed on Xvfb without strace (its log), elsewhere only with it", () => {
    const obs = (kind: "xvfb" | "weston") =>
      ({ target: { kind, version: "" } }) as unknown as RealRunObservation;
    expect(faultsObserved(obs("xvfb"), null)).toBe(true);
    expect(faultsObserved(obs("weston"), null)).toBe(false);
    expect(faultsObserved(obs("weston"), 0)).toBe(true);
  });
});

describe("conformance against real compositors", () => {
  const fakeWeston = (driver: RealDriver): { comp: RealCompositorLike; driver: RealDriver } => ({
    comp: {
      protocol: "wayland",
      probe: () => ({ available: true, version: WESTON_121, binary: "/fake/weston" }),
      start: async () => fakeInstance(),
    },
    driver,
  });

  it("each installed version has the policies that follow it, and only those", () => {
    expect(policiesFollowing("weston", WESTON_121).matching).toEqual(["weston-10"]);
    expect(
      policiesFollowing("weston", "weston 14.0.1 / libwayland-server 1.24.0").matching,
    ).toEqual(["libwayland"]);
    expect(
      policiesFollowing("sway", "sway 1.7 / wlroots 0.15.1 / libwayland-server 1.21.0").matching,
    ).toEqual(["wlroots-0.15"]);
    expect(policiesFollowing("sway", "sway 1.10 / wlroots 0.18.2").matching).toEqual(["wlroots"]);
    expect(policiesFollowing("xvfb", "Xvfb 21.1.7").matching).toEqual(["xorg-mit-shm"]);
    expect(getPolicy("libwayland-1.21").versionOf).toBe("libwayland");
  });

  const behaviours = [
    "honest-renderer",
    "truncate-after-commit",
    "stride-overflow",
    "resize-pool-smaller",
    "pool-larger-than-file",
  ];

  it("a driver reporting exactly what the model did agrees on every cell", async () => {
    const { comp } = fakeWeston(mirrorDriver("weston-10"));
    const { setDriver } = await import("../lab/real-drivers.ts");
    setDriver("wayland", mirrorDriver("weston-10"));
    try {
      const r = await runRealConformance({
        compositors: ["weston"],
        behaviours,
        seed: 3,
        frames: 8,
        honest: 1,
        compositorOf: () => comp,
      });
      expect(r.targets[0]).toMatchObject({ version: WESTON_121, policies: ["weston-10"] });
      expect(r.cells).toHaveLength(behaviours.length);
      expect(r.disagreements).toBe(0);
      expect(r.cells.every((c) => c.agree && c.masked)).toBe(true);
    } finally {
      setDriver("wayland", null);
    }
  });

  it("a real cell that disagrees runs again: a flip is reported as such, a steady disagreement stays one", async () => {
    // A "real" weston that loses a race on its first run of each behaviour (behaves like
    // `none`) and not on the next: the rerun agrees, and the cell says it flipped.
    const calls = new Map<string, number>();
    const flaky: RealDriver = {
      endpointKind: "wayland",
      async run(instance, p) {
        const n = calls.get(p.behaviour) ?? 0;
        calls.set(p.behaviour, n + 1);
        return mirrorDriver(n === 0 ? "none" : "weston-10").run(instance, p);
      },
    };
    const { comp } = fakeWeston(flaky);
    const { setDriver } = await import("../lab/real-drivers.ts");
    setDriver("wayland", flaky);
    const opts = {
      compositors: ["weston" as const],
      behaviours: ["truncate-after-commit", "honest-renderer"],
      seed: 3,
      frames: 8,
      honest: 1,
      compositorOf: () => comp,
    };
    try {
      const again = await runRealConformance(opts);
      const t = again.cells.find((c) => c.behaviour === "truncate-after-commit")!;
      expect(t).toMatchObject({ agree: true, flipped: true });
      expect(t.realRuns?.map((v) => v?.verdict)).toEqual(["died", t.model.verdict]);
      // A cell that agreed at once ran once and carries no reruns.
      const h = again.cells.find((c) => c.behaviour === "honest-renderer")!;
      expect(h.realRuns).toBeUndefined();
      expect(again.disagreements).toBe(0);
      calls.clear();
      const once = await runRealConformance({ ...opts, retries: 0 });
      expect(once.disagreements).toBe(1);
      expect(once.cells.find((c) => c.behaviour === "truncate-after-commit")!.flipped).toBe(
        undefined,
      );
    } finally {
      setDriver("wayland", null);
    }
  });

  it("a compositor that behaves like another policy is caught, cell by cell", async () => {
    // The "real" weston here is really the no-protection model: it dies where libwayland lives.
    const { comp } = fakeWeston(mirrorDriver("none"));
    const { setDriver } = await import("../lab/real-drivers.ts");
    setDriver("wayland", mirrorDriver("none"));
    try {
      const r = await runRealConformance({
        compositors: ["weston"],
        behaviours,
        seed: 3,
        frames: 8,
        honest: 1,
        compositorOf: () => comp,
      });
      const bad = r.cells.filter((c) => !c.agree).map((c) => c.behaviour);
      expect(bad).toContain("truncate-after-commit");
      expect(bad).not.toContain("honest-renderer");
      expect(r.disagreements).toBe(bad.length);
      const t = r.cells.find((c) => c.behaviour === "truncate-after-commit")!;
      expect(t.real?.verdict).toBe("died");
      expect(t.model.verdict).not.toBe("died");
    } finally {
      setDriver("wayland", null);
    }
  });

  it("a compositor that is not installed is a one-line skip, not a failure", async () => {
    const r = await runRealConformance({
      compositors: ["weston"],
      behaviours,
      seed: 1,
      frames: 4,
      honest: 1,
      compositorOf: () => ({
        protocol: "wayland",
        probe: () => ({ available: false, why: "weston is not installed" }),
        start: async () => {
          throw new Error("must not start");
        },
      }),
    });
    expect(r.targets[0]).toMatchObject({ available: false, skipped: "weston is not installed" });
    expect(r.cells).toEqual([]);
  });
});
