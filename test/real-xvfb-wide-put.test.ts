/**
 * A wl_shm geometry wider or taller than ShmPutImage's CARD16 fields, on a real Xvfb beside
 * the model policy xorg-mit-shm (fuzz programs reach it: the generator's strides include
 * 0x7fffffff, 0x40000000 and -4). The server does not refuse the request for its size: the
 * fields arrive truncated and ProcShmPutImage checks what arrived (Xext/shm.c, xserver
 * 21.1.7). The model used to draw nothing for all of them; Xvfb answered BadValue for two.
 * Skips with a note without Xvfb or a C compiler.
 */
import { describe, expect, it } from "vitest";
import type { Action } from "../lab/fuzz/actions.ts";
import { runRealCase } from "../lab/fuzz/real.ts";
import { driverFor } from "../lab/real-drivers.ts";
import { getReal } from "../real/index.ts";
import { x11HelperAvailability } from "../real/x11-native.ts";

const helper = await x11HelperAvailability();
const probe = getReal("xvfb").probe();
const missing = !probe.available ? probe.why : !helper.available ? helper.why : null;
if (missing) console.log(`real-xvfb wide put: skipped (${missing})`);

const put = (width: number, height: number, stride: number) =>
  [
    { k: "memfd", size: 1024, sealing: false },
    { k: "surface" },
    { k: "create-pool", f: 0, size: "file" },
    { k: "create-buffer", p: 0, offset: 0, width, height, stride, format: 1 },
    { k: "attach", s: 0, b: 0, commit: true },
  ] as Action[];

describe.skipIf(missing !== null)("ShmPutImage's 16-bit fields on a real Xvfb", () => {
  it.each([
    // totalWidth 0x10000 & 0xffff = 0 < srcWidth 16
    ["stride 0x40000", 16, 16, 0x40000, "BadValue (kept)"],
    // totalHeight 0 (no length check), srcWidth 16 > totalWidth 1
    ["height 0x10000", 16, 0x10000, 4, "BadValue (kept)"],
    // totalWidth 16: the put fits the 1024-byte segment and draws
    ["stride 0x40040", 16, 16, 0x40040, "no effect seen"],
  ])(
    "%s: the model and Xvfb give the same cell",
    async (_n, w, h, s, cell) => {
      const driver = await driverFor("x11");
      if (!("run" in driver)) throw new Error(driver.why);
      const r = await runRealCase(getReal("xvfb"), driver, "xorg-mit-shm", {
        seed: 1,
        frames: 4,
        honest: 1,
        timeoutMs: 2500,
        actions: put(w, h, s),
      });
      expect(r.real.cell).toBe(cell);
      expect(r.model.cell).toBe(cell);
      expect(r.kind).toBeNull();
    },
    30_000,
  );
});
