/**
 * The play loop's quiescent-frame fast path (lab/run.ts, Run.rest): once every runnable
 * actor has rested since anything last changed, the frame's remaining idle steps take
 * their draws without running. Runs must be exactly those of the step-by-step loop.
 */
import { describe, expect, it } from "vitest";
import type { Behaviour } from "../client/behaviour.ts";
import { getBehaviour } from "../client/behaviours/index.ts";
import { makeSpec, type RunOptions, runOne } from "../lab/run.ts";

/** The digest and the number of afterAction calls (one per scheduler step). */
function play(spec: ReturnType<typeof makeSpec>, opts: RunOptions = {}) {
  let actions = 0;
  const r = runOne(spec, { ...opts, afterAction: () => void actions++ });
  return { digest: r.digest, actions, timeline: r.timeline };
}

describe("quiescent frames", () => {
  it("give the step-by-step run's record, draws and steps", () => {
    const cells = [
      ["libwayland", "truncate-during-read"],
      ["none", "truncate-during-read"],
      ["wlroots", "shrink-regrow"],
      ["userfaultfd", "truncate-during-read"],
      ["libwayland", "honest-renderer"],
      ["kwin", "memory-pressure"],
    ];
    for (const [policy, behaviour] of cells)
      for (const seed of [1, 2, 3]) {
        const spec = makeSpec({ policy, behaviour, seed });
        const fast = play(spec);
        const slow = play(spec, { stepByStep: true });
        expect(fast.digest, `${policy} × ${behaviour} seed ${seed}`).toBe(slow.digest);
        expect(fast.actions).toBe(slow.actions);
        expect(fast.timeline).toEqual(slow.timeline);
      }
  });

  it("skip the idle steps' work (a waiting client's ready() is asked less often)", () => {
    const honest = getBehaviour("honest-renderer");
    let asked = 0;
    // The honest client, with every Wait it yields counted when asked.
    const counted: Behaviour = {
      ...honest,
      name: "counted-honest",
      *run(c, ctx) {
        const gen = honest.run(c, ctx);
        let next = gen.next();
        while (!next.done) {
          const w = next.value;
          next = gen.next(
            yield w && {
              what: w.what,
              ready: () => {
                asked++;
                return w.ready();
              },
            },
          );
        }
      },
    };
    const spec = makeSpec({ policy: "libwayland", behaviour: "counted-honest", seed: 4 });
    asked = 0;
    const fast = play(spec, { behaviour: counted });
    const askedFast = asked;
    asked = 0;
    const slow = play(spec, { behaviour: counted, stepByStep: true });
    expect(fast.digest).toBe(slow.digest);
    expect(fast.actions).toBe(slow.actions);
    expect(askedFast).toBeLessThan(asked);
  });
});
