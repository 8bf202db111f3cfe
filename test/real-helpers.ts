/**
 * Shared by the suites that drive a real Wayland compositor through the native client
 * helper (real-wayland-driver, real-desktop-ready, real-kwin, real-cage): why such a suite
 * skips, and the run plan they all start from.
 */
import { wlClientAvailability } from "../native/wl-client.ts";
import type { RealCompositor } from "../real/compositor.ts";
import type { RealRunPlan } from "../real/target.ts";

/** "" when `c` and the native client helper are both here, else why not (printed once). */
export async function waylandSkipReason(c: RealCompositor, suite: string): Promise<string> {
  const probe = c.probe();
  const native = await wlClientAvailability();
  const why = !probe.available ? probe.why : !native.available ? native.reason : "";
  if (why) console.log(`${suite} skipped: ${why}`);
  return why;
}

/** One honest bystander, seed 7, 4 frames, 8 s: the plan every Wayland suite starts from. */
export const waylandPlan = (behaviour: string, extra: Partial<RealRunPlan> = {}): RealRunPlan => ({
  behaviour,
  honest: 1,
  seed: 7,
  frames: 4,
  params: {},
  timeoutMs: 8000,
  ...extra,
});
