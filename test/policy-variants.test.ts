/**
 * The constructs that isolate one design choice (compositor/policies/own-handler.ts,
 * render-thread.ts) and the behaviours that reach them (truncate-outside-damage,
 * shown-then-truncated): each verdict is what the simulation did, pinned against the
 * policy it differs from, so removing the rule turns this red.
 */
import { describe, expect, it } from "vitest";
import { defaultPolicies } from "../lab/compare.ts";
import { makeSpec, runOne } from "../lab/run.ts";

const run = (policy: string, behaviour: string) =>
  runOne(makeSpec({ policy, behaviour, seed: 1, frames: 8, honest: 1 }));

describe("a compositor SIGBUS handler installed over libwayland's (WLCS #30)", () => {
  it("not chaining: the truncation libwayland would rescue kills the compositor", () => {
    const r = run("libwayland-own-handler", "shown-then-truncated");
    expect(r.verdict).toBe("died");
    expect(r.compositor.death?.signal).toBe("SIGBUS");
  });
  it("chaining to the action sigaction returned: libwayland's rescue runs, invalid_fd", () => {
    expect(run("libwayland-chained-handler", "shown-then-truncated").verdict).toBe(
      "error-to-client",
    );
    expect(run("libwayland", "shown-then-truncated").verdict).toBe("error-to-client");
  });
});

describe("a render thread (the fault lands on the thread that reads)", () => {
  it("libwayland's per-thread data: the render thread's has no pool, re-raised, dies", () => {
    const r = run("render-thread-libwayland", "truncate-after-commit");
    expect(r.verdict).toBe("died");
    expect(r.compositor.death?.signal).toBe("SIGBUS");
  });
  it("wlroots' process-wide access list finds the fault whoever made it: zeros", () => {
    expect(run("render-thread-wlroots", "truncate-after-commit").verdict).toBe("tolerated");
  });
  it("honest clients are unharmed on either", () => {
    for (const p of ["render-thread-libwayland", "render-thread-wlroots"])
      expect(run(p, "honest-renderer").verdict).toBe("ok");
  });
});

describe("truncation outside the damaged rectangle", () => {
  it("damage-only uploads (wlroots, kwin) never read the truncated rows", () => {
    for (const p of ["wlroots", "kwin"]) {
      const r = run(p, "truncate-outside-damage");
      expect(r.verdict, p).toBe("undetected");
      expect(r.cost.signals, p).toBe(0);
    }
  });
  it("full reads fault on them (libwayland: invalid_fd)", () => {
    expect(run("libwayland", "truncate-outside-damage").verdict).toBe("error-to-client");
  });
});

describe("variants stay out of the default comparison", () => {
  it("they run when named", () => {
    for (const p of [
      "libwayland-own-handler",
      "libwayland-chained-handler",
      "render-thread-libwayland",
      "render-thread-wlroots",
    ])
      expect(defaultPolicies()).not.toContain(p);
  });
});
