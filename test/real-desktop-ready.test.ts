/**
 * A real weston is "ready" only once its desktop is on screen (real/desktop-ready.ts):
 * weston-desktop-shell starts beside our clients, and its background's first commit
 * repaints the whole output. A behaviour whose point is what a damage-only repaint leaves
 * unread (truncate-outside-damage) then gets invalid_fd or "no effect" depending on which
 * came first — about half of the runs on weston 10.0.1 before the wait, the cell CI saw
 * disagree twice in a row.
 */
import { afterEach, describe, expect, it } from "vitest";
import { waitForBackground } from "../real/desktop-ready.ts";
import type { LaunchedInstance } from "../real/instance.ts";
import { waylandDriver } from "../real/wayland-driver.ts";
import { weston } from "../real/weston.ts";
import { waylandSkipReason } from "./real-helpers.ts";

const why = await waylandSkipReason(weston, "real weston readiness tests");

let instance: LaunchedInstance | undefined;
afterEach(async () => {
  await instance?.stop();
  instance = undefined;
});

describe.skipIf(why !== "")("weston readiness: the desktop is drawn before clients come", () => {
  it("a fresh weston never reads a buffer truncated outside its damage (8 fresh starts)", async () => {
    for (let run = 0; run < 8; run++) {
      instance = await weston.start();
      const obs = await waylandDriver.run(instance, {
        behaviour: "truncate-outside-damage",
        honest: 0,
        seed: run + 1,
        frames: 4,
        params: {},
        timeoutMs: 8000,
      });
      expect(obs.compositor.alive).toBe(true);
      expect(obs.clients[0].protocolError, `fresh weston, run ${run}`).toBeNull();
      await instance.stop();
      instance = undefined;
    }
  }, 60_000);

  it("waits for the colour it is given, and says what it saw instead", async () => {
    instance = await weston.start();
    // long enough for a screenshot to complete at any load: the message names the last one
    const err = await waitForBackground(instance, 0x123456, 4000).catch((e: Error) => e);
    expect(err).toMatchObject({ code: "SHMLAB_ERR_REAL_START" });
    expect(String(err)).toMatch(/never showed its background 0x123456 \(top-left pixel 0x202020\)/);
  });
});
