/**
 * real/x11-driver.ts: what a run makes of a script's failure, and a wrong instance.
 * The failure cases run one real helper against Xvfb (skipped with a note where Xvfb or a
 * C compiler is missing); a script is swapped for one that fails, then restored.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RealInstance, RealRunPlan } from "../real/target.ts";
import { X11_SCRIPTS, type XScript } from "../real/x11-behaviours.ts";
import { X11NoEndpoint, x11Driver } from "../real/x11-driver.ts";
import { SyscallError, x11HelperAvailability } from "../real/x11-native.ts";
import { xvfb as xvfbServer } from "../real/xvfb.ts";

const helper = await x11HelperAvailability();
const probe = xvfbServer.probe();
const missing = !probe.available ? probe.why : !helper.available ? helper.why : null;
if (missing) console.log(`x11-driver: Xvfb cases skipped (${missing})`);

const plan: RealRunPlan = {
  behaviour: "truncate-after-commit",
  honest: 0,
  seed: 1,
  frames: 1,
  params: {},
  timeoutMs: 10_000,
};

describe("x11Driver", () => {
  it("an instance without an X11 endpoint is a typed error", async () => {
    const wayland = {
      kind: "weston",
      version: "test",
      pid: 1,
      endpoint: { kind: "wayland", socket: "/nonexistent" },
      logPath: "/nonexistent",
      exited: () => null,
      stop: async () => ({ code: 0, signal: null }),
    } as RealInstance;
    await expect(x11Driver.run(wayland, plan)).rejects.toMatchObject({
      code: "SHM_ERR_X11_NO_ENDPOINT",
    });
    await expect(x11Driver.run(wayland, plan)).rejects.toBeInstanceOf(X11NoEndpoint);
  });
});

describe.skipIf(missing !== null)("x11Driver on Xvfb: a script that fails", () => {
  let xvfb: RealInstance;
  const original = X11_SCRIPTS[plan.behaviour];
  beforeAll(async () => {
    xvfb = await xvfbServer.start();
  });
  afterAll(async () => {
    X11_SCRIPTS[plan.behaviour] = original;
    await xvfb?.stop();
  });

  async function runWith(script: XScript) {
    X11_SCRIPTS[plan.behaviour] = script;
    try {
      return await x11Driver.run(xvfb, plan);
    } finally {
      X11_SCRIPTS[plan.behaviour] = original;
    }
  }

  it("a helper's syscall failure is an observation, kept as a note", async () => {
    const o = await runWith(async () => {
      throw new SyscallError("ENOSPC", "memfd");
    });
    expect(o.clients[0].notes).toContain("script stopped: memfd: ENOSPC");
  });

  it("any other error is a bug and fails the run, even one with a code", async () => {
    const bug = Object.assign(new Error("a script bug"), { code: "ERR_SOMETHING" });
    await expect(
      runWith(async () => {
        throw bug;
      }),
    ).rejects.toBe(bug);
  });
});
