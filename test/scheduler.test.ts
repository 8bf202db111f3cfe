/**
 * lab/scheduler.ts: SeededScheduler.quietFor must say true only where point() is a no-op,
 * since a user access then skips its per-page points (shm/process.ts): a point that could
 * run a client step, or draw from the run's random stream, must never be skipped.
 */
import { describe, expect, it } from "vitest";
import { Rng } from "../lab/rng.ts";
import { type Actor, SeededScheduler } from "../lab/scheduler.ts";
import { Kernel } from "../shm/kernel.ts";

function rig(seed: number) {
  const rng = new Rng(seed);
  const sched = new SeededScheduler(rng, { preemptProbability: 1 });
  const k = new Kernel({ scheduler: sched });
  const comp = k.spawn("compositor");
  const client = k.spawn("client");
  sched.compositorPid = comp.pid;
  let steps = 0;
  const actor: Actor = { name: "client", runnable: () => true, run: () => ++steps > 0 };
  sched.nestable = [actor];
  sched.all = [actor];
  return { rng, sched, comp, client, steps: () => steps };
}

describe("SeededScheduler.quietFor", () => {
  it("is true for every process but the compositor, whose points can run client steps", () => {
    const { sched, comp, client } = rig(1);
    expect(sched.quietFor(client)).toBe(true);
    expect(sched.quietFor(comp)).toBe(false);
  });

  it("where it is true, point draws nothing and runs nothing; where false, it does", () => {
    const a = rig(7);
    const b = rig(7);
    for (let i = 0; i < 100; i++) a.sched.point(a.client, "load");
    expect(a.steps()).toBe(0);
    expect(a.rng.u32()).toBe(b.rng.u32()); // the same stream: nothing was drawn
    for (let i = 0; i < 100; i++) b.sched.point(b.comp, "load");
    expect(b.steps()).toBeGreaterThan(0);
  });
});
