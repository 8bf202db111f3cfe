/**
 * Every fuzz invariant and every verdict class is live: for each, a deliberately broken
 * policy or client (test/fixtures/, never shipped) that must trip it. If an invariant or a
 * verdict rule is weakened (honest-pixels accepting "stale", foreign-pixels firing only
 * above half the region, "must be told" excused by any disconnect...), one of these fails.
 */
import { describe, expect, it } from "vitest";
import { libwayland } from "../compositor/policies/libwayland.ts";
import type { Policy } from "../compositor/policy.ts";
import type { Action } from "../lab/fuzz/actions.ts";
import { CASE_DEFAULTS, runCase } from "../lab/fuzz/case.ts";
import {
  Checker,
  INVARIANTS,
  type InvariantName,
  InvariantViolation,
  promiseOf,
} from "../lab/fuzz/invariants.ts";
import type { Verdict } from "../lab/record.ts";
import { makeSpec, runOne } from "../lab/run.ts";
import { hiddenPool } from "./fixtures/behaviours/hidden-pool.ts";
import {
  dropsSilently,
  ignoresHostile,
  leaksMemory,
  leaksToHostile,
  panicOnRead,
  readsOnce,
  throwOnRead,
} from "./fixtures/policies/broken.ts";
import { refuseEveryPool } from "./fixtures/policies/refuse-every-pool.ts";

/** A hostile client that draws its own pattern, commits it three times, then truncates. */
const DRAW_COMMIT_TRUNCATE: Action[] = [
  { k: "memfd", size: 4 * 4096, sealing: false },
  { k: "surface" },
  { k: "create-pool", f: 0, size: "file" },
  { k: "create-buffer", p: 0, offset: 0, width: 32, height: 32, stride: 128, format: 1 },
  { k: "draw", f: 0, b: 0, frame: 0 },
  { k: "attach", s: 0, b: 0, commit: true },
  { k: "yield", n: 60 },
  { k: "attach", s: 0, b: 0, commit: true },
  { k: "yield", n: 60 },
  { k: "attach", s: 0, b: 0, commit: true },
  { k: "truncate", f: 0, size: 0 },
];

/** The same client without the truncation, committing its frame again and again. */
const DRAW_COMMIT_REPEAT: Action[] = [
  ...DRAW_COMMIT_TRUNCATE.slice(0, 5),
  ...Array.from({ length: 8 }, (): Action[] => [
    { k: "attach", s: 0, b: 0, commit: true },
    { k: "yield", n: 60 },
  ]).flat(),
];

const fuzzCase = (policy: Policy, actions: Action[] = DRAW_COMMIT_TRUNCATE) =>
  runCase(
    { ...CASE_DEFAULTS, seed: 3, policy: policy.name, program: { clients: [actions] } },
    policy,
  );

/** Each invariant, and the fixture that must break it (with the place it breaks at). */
const TRIPS: Record<
  Exclude<InvariantName, "pool-bound">,
  { policy: Policy; place: string | RegExp; actions?: Action[] }
> = {
  "compositor-alive": { policy: panicOnRead, place: "SIGABRT (abort)" },
  "internal-error": { policy: throwOnRead, place: /^TypeError in / },
  "honest-connected": {
    policy: refuseEveryPool,
    place: "honest client refused by the compositor",
  },
  "honest-pixels": { policy: readsOnce, place: "honest region shows stale" },
  "foreign-pixels": {
    policy: leaksToHostile,
    place: "hostile region",
    actions: DRAW_COMMIT_REPEAT,
  },
  "hostile-promise": {
    policy: dropsSilently,
    place: "fault tolerated silently (promised wl_shm.invalid_fd)",
  },
  "memory-bound": { policy: leaksMemory, place: "frames in use" },
};

describe("every fuzz invariant has a fixture that trips it", () => {
  it("the table covers every invariant (pool-bound below)", () => {
    expect([...Object.keys(TRIPS), "pool-bound"].sort()).toEqual([...INVARIANTS].sort());
  });

  for (const [invariant, t] of Object.entries(TRIPS)) {
    it(`${invariant}: ${t.policy.summary}`, () => {
      const r = fuzzCase(t.policy, t.actions);
      expect(r.failure, "the broken policy went unnoticed").not.toBeNull();
      expect(r.failure!.invariant, r.failure!.detail).toBe(invariant);
      if (typeof t.place === "string") expect(r.failure!.place).toBe(t.place);
      else expect(r.failure!.place).toMatch(t.place);
    });
  }

  it("the same program breaks nothing under libwayland itself", () => {
    // So each failure above is the fixture's doing, not the program's.
    expect(fuzzCase(libwayland).failure).toBeNull();
    expect(fuzzCase(libwayland, DRAW_COMMIT_REPEAT).failure).toBeNull();
  });

  it("foreign-pixels fires on a quarter of the region, not only on most of it", () => {
    const r = fuzzCase(leaksToHostile, DRAW_COMMIT_REPEAT);
    const m = /^(\d+)\/(\d+) pixels/.exec(r.failure!.detail);
    expect(m, r.failure!.detail).not.toBeNull();
    expect(Number(m![1]) / Number(m![2])).toBeLessThanOrEqual(0.25);
  });

  it("pool-bound: a client whose pool the compositor holds beyond what was asked for", () => {
    const checker = new Checker(promiseOf(libwayland), 1, new Map());
    let caught: unknown;
    try {
      runOne(makeSpec({ policy: libwayland.name, behaviour: hiddenPool.name, frames: 6 }), {
        policy: libwayland,
        behaviour: hiddenPool,
        afterAction: (v) => checker.afterAction(v),
        afterFrame: (v) => checker.afterFrame(v),
      });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(InvariantViolation);
    expect((caught as InvariantViolation).invariant).toBe("pool-bound");
    expect((caught as InvariantViolation).detail).toMatch(/holds 3 pools; .* asked for 2$/);
  });
});

/** Each verdict class, and a broken policy that must produce it. */
const VERDICTS: {
  verdict: Verdict;
  policy: Policy;
  behaviour: string;
  honest?: number;
  cell: string;
}[] = [
  { verdict: "died", policy: panicOnRead, behaviour: "honest-renderer", cell: "DIED SIGABRT" },
  {
    verdict: "honest-harmed",
    policy: readsOnce,
    behaviour: "honest-renderer",
    cell: "harmed: stale/stale/stale",
  },
  {
    verdict: "honest-harmed",
    policy: refuseEveryPool,
    behaviour: "truncate-after-commit",
    cell: "refused: invalid_fd",
  },
  {
    verdict: "undetected",
    policy: ignoresHostile,
    behaviour: "truncate-after-commit",
    cell: "no effect seen",
  },
  {
    verdict: "tolerated",
    policy: dropsSilently,
    behaviour: "truncate-during-read",
    cell: "disconnected, no error",
  },
  {
    verdict: "error-to-client",
    policy: refuseEveryPool,
    behaviour: "truncate-after-commit",
    honest: 0,
    cell: "invalid_fd",
  },
  { verdict: "ok", policy: ignoresHostile, behaviour: "honest-renderer", cell: "ok" },
];

describe("every verdict class has a broken policy that produces it", () => {
  it("the table covers every verdict class", () => {
    const all: Verdict[] = [
      "died",
      "honest-harmed",
      "undetected",
      "tolerated",
      "error-to-client",
      "ok",
    ];
    expect([...new Set(VERDICTS.map((v) => v.verdict))].sort()).toEqual(all.sort());
  });

  for (const t of VERDICTS) {
    it(`${t.verdict}: ${t.policy.name} × ${t.behaviour}`, () => {
      const rec = runOne(
        makeSpec({
          policy: t.policy.name,
          behaviour: t.behaviour,
          frames: 12,
          honest: t.honest ?? 2,
        }),
        { policy: t.policy },
      );
      expect(rec.verdict, rec.cell).toBe(t.verdict);
      expect(rec.cell).toBe(t.cell);
    });
  }
});
