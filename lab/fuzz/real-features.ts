/**
 * Feedback for `shmlab fuzz --real`: what the real client and the harness observed of a
 * real compositor (there is no kernel event stream to read on the host), as features in the
 * same form as features.ts: how the compositor ended (exit signal, the fault its log
 * noted), each client's protocol error and X11 errors (interface, error, message with the
 * numbers taken out), how its connection ended, its process's death, what the screen
 * capture showed, how many frames it got (AFL buckets) and what it was still waiting for,
 * and the verdict cells of the real run and of the model beside it.
 */
import type { RealRunObservation } from "../../real/target.ts";
import type { VerdictResult } from "../verdict.ts";
import { bucket, shape } from "./features.ts";

export function realFeatures(
  obs: RealRunObservation,
  real: VerdictResult,
  model: VerdictResult,
): Set<string> {
  const out = new Set<string>();
  const c = obs.compositor;
  out.add(c.alive ? "comp:alive" : `comp:died:${c.exit?.signal ?? `exit ${c.exit?.code ?? "?"}`}`);
  if (c.faultNoted) out.add(`comp:fault:${shape(c.faultNoted)}`);
  out.add(`cell:real:${real.cell}`);
  out.add(`cell:model:${model.cell}`);
  out.add(`cells:${real.cell}|${model.cell}`);
  for (const cl of obs.clients) {
    const who = cl.honest ? "honest" : "hostile";
    const errs = [...(cl.protocolError ? [cl.protocolError] : []), ...cl.errors];
    for (const e of errs) out.add(`err:${who}:${e.interface}:${e.error}:${shape(e.message)}`);
    out.add(`conn:${who}:${cl.connection}`);
    if (cl.killed) out.add(`killed:${who}:${cl.killed.signal ?? cl.killed.code}`);
    out.add(`pixels:${who}:${cl.pixels}`);
    out.add(`frames:${who}:${bucket(cl.framesDone)}`);
    out.add(`commits:${who}:${bucket(cl.commits)}`);
    if (cl.waitingFor) out.add(`waiting:${who}:${shape(cl.waitingFor)}`);
  }
  return out;
}
