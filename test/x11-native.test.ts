/**
 * real/x11-native.ts and native/x11-client.c: the helper never outlives the Node process
 * that started it. Skipped with a note where there is no C compiler.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { liveX11Helpers, X11Helper, x11HelperAvailability } from "../real/x11-native.ts";

const a = await x11HelperAvailability();
if (!a.available) console.log(`x11-native: skipped (${a.why})`);

describe.skipIf(!a.available)("the X11 helper's lifetime", () => {
  it("a helper whose parent is not the pid it was given exits at once (parent died before prctl)", () => {
    if (!a.available) return;
    // Its parent here is spawnSync's child of us; pid 1 is never it.
    const r = spawnSync(a.binary, ["1"], { input: "", encoding: "utf8", timeout: 5000 });
    expect(r.status).toBe(3);
    const ok = spawnSync(a.binary, [String(process.pid)], { input: "", timeout: 5000 });
    expect(ok.status).toBe(0);
  });

  it("every started helper is registered until it exits", async () => {
    const before = liveX11Helpers();
    const h = await X11Helper.start();
    expect(liveX11Helpers()).toBe(before + 1);
    await h.stop();
    expect(liveX11Helpers()).toBe(before);
  });
});
