/**
 * The honest client that damages only part of its window (examples/behaviours/
 * honest-partial-damage.ts): every pixel checked against the frame each part should hold,
 * under whole-buffer readers and damage-only uploaders alike — and the check can fail: a
 * compositor that applies damage to a texture that is not the surface's current content
 * shows stale pixels, reported as harm.
 */
import { describe, expect, it } from "vitest";
import { loadBehaviour } from "../client/behaviours/index.ts";
import { getPolicy } from "../compositor/policies/index.ts";
import type { Policy } from "../compositor/policy.ts";
import { makeSpec, runOne } from "../lab/run.ts";

const behaviour = await loadBehaviour("./examples/behaviours/honest-partial-damage.ts");
const run = (policy: string | Policy) => {
  const p = typeof policy === "string" ? getPolicy(policy) : policy;
  return runOne(
    makeSpec({ policy: p.name, behaviour: behaviour.name, seed: 1, frames: 16, honest: 1 }),
    {
      policy: p,
      behaviour,
    },
  );
};

describe("an honest client that damages only what changed", () => {
  for (const p of ["libwayland", "wlroots", "kwin", "hyprland", "wlroots-0.15", "kwin-5.27"])
    it(`${p}: every pixel is the frame it should be`, () => {
      const r = run(p);
      expect(r.verdict).toBe("ok");
      const me = r.clients[r.clients.length - 1];
      expect(me.honestResult?.pixels).toBe("correct");
      expect(me.honestResult?.framesChecked).toBeGreaterThan(8);
    });

  it("damage-only uploads copy a fraction of what whole reads copy", () => {
    // Both runs carry the same honest bystander (whole frames); the difference is the
    // partial client's frames after its first: 16 KiB each read whole, ~2 KiB as damage.
    const whole = run("libwayland").cost.bytesCopied;
    const damaged = run("wlroots").cost.bytesCopied;
    expect(whole - damaged).toBeGreaterThan(5 * 64 * 64 * 4);
  });

  it("damage applied to a per-buffer texture (not the surface's content) is caught as harm", () => {
    // Hyprland's texture: "buffer" with damage-only updates, which Hyprland itself does not
    // do (it re-uploads whole): the other buffer's texture is stale outside the damage.
    const hypr = getPolicy("hyprland");
    const stale: Policy = {
      ...hypr,
      name: "per-buffer-damage",
      reads: { ...hypr.reads, damage: "damage" },
    };
    const r = run(stale);
    expect(r.verdict).toBe("honest-harmed");
  });
});
