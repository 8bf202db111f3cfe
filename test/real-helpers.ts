/**
 * Shared by the suites that drive a real Wayland compositor through the native client
 * helper (real-wayland-driver, real-desktop-ready, real-kwin, real-cage, and the findings'
 * real halves): why such a suite skips, the run plan they start from, a program on weston.
 */
import { type RealCaseResult, type RealFuzzCase, runRealCase } from "../lab/fuzz/real.ts";
import { realCompositorPolicy } from "../lab/real-conformance.ts";
import { wlClientAvailability } from "../native/wl-client.ts";
import type { RealCompositor } from "../real/compositor.ts";
import { getReal } from "../real/index.ts";
import type { RealKind, RealRunPlan } from "../real/target.ts";
import { waylandDriver } from "../real/wayland-driver.ts";

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

/**
 * One fuzz program on an installed Wayland compositor (a fresh instance) and on the model
 * policy that follows its version: the real half of a finding's or a claim's test. Call
 * only where `waylandSkipReason(getReal(kind), ...)` said "".
 */
export async function runOnInstalled(
  kind: Exclude<RealKind, "xvfb">,
  c: RealFuzzCase,
): Promise<{ policy: string; r: RealCaseResult }> {
  const comp = getReal(kind);
  const probe = comp.probe();
  if (!probe.available) throw new Error(probe.why);
  const policy = realCompositorPolicy(kind, probe.version);
  if (!policy) throw new Error(`no model policy follows ${kind} ${probe.version}`);
  return { policy, r: await runRealCase(comp, waylandDriver, policy, c) };
}

/** runOnInstalled on weston, the result alone. */
export const runOnWeston = async (c: RealFuzzCase): Promise<RealCaseResult> =>
  (await runOnInstalled("weston", c)).r;
