/**
 * Fuzz finding 10 (seed 41) on the installed sway: a toplevel mapped with a buffer, then a
 * NULL attach + commit. The old transport acked every configure on arrival, including the
 * one sway sent while the NULL commit was on its way, which wlroots 0.15 had forgotten at
 * unmap_xdg_surface: xdg_wm_base.invalid_surface_state "wrong configure serial" (2 of 2
 * replays). The real client now leaves such a configure unacked and redoes the initial
 * commit (real/xdg-configure.ts). Skips with a note without sway or a C compiler.
 */
import { describe, expect, it } from "vitest";
import type { Action } from "../lab/fuzz/actions.ts";
import { runRealCase } from "../lab/fuzz/real.ts";
import { realCompositorPolicy } from "../lab/real-conformance.ts";
import { driverFor } from "../lab/real-drivers.ts";
import { wlClientAvailability } from "../native/wl-client.ts";
import { getReal } from "../real/index.ts";

const client = await wlClientAvailability();
const sway = getReal("sway").probe();
const skip = !sway.available ? sway.why : !client.available ? client.reason : null;
if (skip) console.log(`real xdg remap on sway skipped: ${skip}`);

const mapThenUnmap = [
  { k: "memfd", size: 1024, sealing: false },
  { k: "surface" },
  { k: "create-pool", f: 0, size: "file" },
  { k: "create-buffer", p: 0, offset: 0, width: 16, height: 16, stride: 64, format: 1 },
  { k: "attach", s: 0, b: 0, commit: true },
  { k: "create-pool", f: 0, size: "file" },
  { k: "attach", s: 0, b: -1, commit: true },
] as Action[];

describe.skipIf(skip !== null)("a NULL commit on a mapped toplevel, on a real sway", () => {
  it("brings no protocol error on the client (finding 10), and a later buffer waits for a configure", async () => {
    const version = (sway as { version: string }).version;
    const policy = realCompositorPolicy("sway", version)!;
    const driver = await driverFor("wayland");
    if (!("run" in driver)) throw new Error(driver.why);
    const run = (actions: Action[]) =>
      runRealCase(getReal("sway"), driver, policy, {
        seed: 41,
        frames: 12,
        honest: 2,
        timeoutMs: 2500,
        actions,
      });
    const unmap = await run(mapThenUnmap);
    const hostile = unmap.observation.clients.at(-1)!;
    expect(hostile.protocolError).toBeNull();
    expect(hostile.connection).toBe("open");
    expect(unmap.kind).toBeNull();
    expect(hostile.notes.join("\n")).toMatch(/unmapped by a NULL commit: initial commit redone/);

    // wlroots 0.15 sends no configure for the redone initial commit (toplevel->added stays
    // set), so the new buffer is held, never committed unconfigured
    const remap = await run([
      ...mapThenUnmap,
      { k: "attach", s: 0, b: 0, commit: true },
    ] as Action[]);
    const h2 = remap.observation.clients.at(-1)!;
    expect(h2.protocolError).toBeNull();
    expect(h2.notes.join("\n")).toMatch(/requests never sent: held behind a buffer attach/);
  }, 30_000);
});
