/**
 * libwayland >= 1.24's wl_shm_buffer_end_access on a wl_buffer whose resource is destroyed
 * (wayland commits 9367c4d wl_shm_buffer_ref, d2a3d33 the implementation error), shown on a
 * compositor that keeps the buffer (`libwayland-kept-buffer`), against 1.21 which has no
 * such branch. Each rule pinned here goes red when removed from libwayland.ts.
 */
import { describe, expect, it } from "vitest";
import { registerPolicy } from "../compositor/policies/index.ts";
import { DESTROYED_BUFFER_ERROR } from "../compositor/policies/libwayland.ts";
import { libwayland121 } from "../compositor/policies/libwayland-1-21.ts";
import { libwaylandKeptBuffer } from "../compositor/policies/libwayland-kept-buffer.ts";
import { defaultPolicies } from "../lab/compare.ts";
import { makeSpec, runOne } from "../lab/run.ts";

const run = (policy: string, behaviour: string) =>
  runOne(makeSpec({ policy, behaviour, seed: 1, frames: 8, honest: 1 }));

describe("libwayland-kept-buffer: destroy the committed wl_buffer, then shrink its file", () => {
  it("the repaint faults inside the access; end_access finds no resource: wl_display.error implementation", () => {
    const r = run("libwayland-kept-buffer", "destroy-buffer-then-shrink");
    expect(r.verdict).toBe("error-to-client");
    expect(r.compositor.death).toBeFalsy();
    const attacker = r.clients[r.clients.length - 1];
    expect(attacker.protocolError?.error).toBe("wl_display.implementation");
    expect(attacker.protocolError?.code).toBe(3);
    expect(attacker.protocolError?.objectId).toBe(1);
    expect(attacker.protocolError?.message).toBe(DESTROYED_BUFFER_ERROR);
    // The honest bystander is untouched.
    expect(r.verdict).not.toBe("honest-harmed");
  });
  it("a live buffer still gets wl_shm.invalid_fd on the wl_buffer (the first branch)", () => {
    const r = run("libwayland-kept-buffer", "truncate-after-commit");
    expect(r.verdict).toBe("error-to-client");
    expect(r.clients[r.clients.length - 1].protocolError?.error).toBe("wl_shm.invalid_fd");
  });
  it("plain libwayland drops the destroyed buffer: nothing is read, nothing posted", () => {
    expect(run("libwayland", "destroy-buffer-then-shrink").verdict).toBe("undetected");
  });
  it("stays out of the default comparison (a construct, run when named)", () => {
    expect(defaultPolicies()).not.toContain("libwayland-kept-buffer");
    expect(libwaylandKeptBuffer.variantOf).toBe("libwayland");
  });
});

describe("end_access's destroyed-resource branch is 1.24's, not 1.21's", () => {
  it("the same keeping compositor on 1.21's end_access posts nothing once the wl_buffer is gone", () => {
    // Registered only in this test: 1.21 had no wl_shm_buffer_ref, so no real compositor
    // keeps a 1.21 wl_shm_buffer; what is pinned is that 1.21's end_access lacks the branch.
    registerPolicy({
      ...libwaylandKeptBuffer,
      name: "test-kept-buffer-on-1.21",
      create: libwayland121.create,
    });
    const r = run("test-kept-buffer-on-1.21", "destroy-buffer-then-shrink");
    expect(r.verdict).toBe("tolerated");
    expect(r.clients[r.clients.length - 1].protocolError).toBeNull();
  });
});
