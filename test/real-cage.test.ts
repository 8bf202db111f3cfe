/**
 * The Wayland driver against a real cage started by real/cage.ts (cage 0.1.4 on wlroots
 * 0.15, headless, pixman). Skips with a note where cage or the native client helper is
 * missing.
 *
 * cage is a kiosk: every parentless toplevel is maximized at the output's origin
 * (view.c view_position → view_maximize), so two windows lie one over the other and only
 * the top one can be seen. wlroots 0.15 reads an shm buffer through libwayland 1.21's
 * begin/end_access: a truncated pool is invalid_fd on the wl_buffer, as on sway 1.7.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cage } from "../real/cage.ts";
import type { LaunchedInstance } from "../real/instance.ts";
import { waylandDriver } from "../real/wayland-driver.ts";
import { waylandPlan, waylandSkipReason } from "./real-helpers.ts";

const why = await waylandSkipReason(cage, "real cage tests");

const plan = waylandPlan;

describe.skipIf(why !== "")("Wayland driver on a real cage", () => {
  let instance: LaunchedInstance | undefined;
  beforeAll(async () => {
    instance = await cage.start();
  });
  afterAll(async () => {
    await instance?.stop();
  });

  it("says which cage and wlroots it is", () => {
    expect(instance!.version).toMatch(/^cage 0\.1\.\d+ \/ wlroots 0\.15\.\d+/);
  });

  it("honest-renderer: frames and releases; the top window is exact, the one under it unchecked", async () => {
    const obs = await waylandDriver.run(instance!, plan("honest-renderer"));
    expect(obs.compositor.alive).toBe(true);
    for (const c of obs.clients) {
      expect(c.protocolError).toBeNull();
      expect(c.framesDone).toBe(4);
      expect(c.releases).toBe(3);
    }
    // wlr-screencopy shows one window whole at 0,0; the other is under it, not "never shown"
    expect(obs.clients.map((c) => c.pixels).sort()).toEqual(["correct", "unchecked"]);
    const hidden = obs.clients.find((c) => c.pixels === "unchecked")!;
    expect(hidden.notes.join("\n")).toMatch(/stacks every window at the output's origin/);
  });

  it("truncate-after-commit: cage survives and posts wl_shm.invalid_fd on the wl_buffer", async () => {
    const obs = await waylandDriver.run(instance!, plan("truncate-after-commit"));
    expect(obs.compositor.alive).toBe(true);
    const [bystander, attacker] = obs.clients;
    expect(attacker.protocolError).toMatchObject({
      interface: "wl_buffer",
      error: "invalid_fd",
      code: 2,
    });
    expect(bystander.protocolError).toBeNull();
    expect(bystander.framesDone).toBe(4);
  });
});
