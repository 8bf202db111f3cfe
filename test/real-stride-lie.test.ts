/**
 * Fuzz finding 4 (docs/fuzz.md) on the installed weston: a stride lie (`create_buffer(0, 64,
 * 32, 128, XRGB8888)` on a one-page pool; libwayland checks `stride < width`, pixels against
 * bytes) makes weston's pixman renderer read the last row 128 bytes past the pool.
 *
 * In CI: the liar alone. Its window must be found on weston's screen by its zeros, the 32
 * pixels of its last row that lie past the pool must be checked, and what weston maps just
 * above the pool must be named — the machinery `shmlab replay --real weston` uses to say
 * whether the liar shows another client's pixels. Nothing here depends on timing: the
 * screenshot comes after the run's bound, and a lone window is never covered.
 *
 * By hand (`SHMLAB_REAL_LAYOUT=1 npx vitest run test/real-stride-lie.test.ts`): the liar
 * creates its pool only once weston has mapped the honest client's, so top-down placement
 * puts it directly below, and the leak must be that client's first 32 pixels. It depends on
 * weston's address-space layout (the hole below weston-desktop-shell's background pool),
 * which no CI test should: measured in docs/real-compositors.md. So does the second hand-run
 * case: the liar kills weston by destroying a pool of its own mapped just above its page.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Behaviour } from "../client/behaviour.ts";
import type { Action } from "../lab/fuzz/actions.ts";
import { actionBehaviour } from "../lab/fuzz/behaviour.ts";
import { getReal } from "../real/index.ts";
import { WaylandDriver } from "../real/wayland-driver.ts";
import { waylandPlan, waylandSkipReason } from "./real-helpers.ts";

const weston = getReal("weston");
const skip = await waylandSkipReason(weston, "real stride lie (finding 4) on weston");
const HAND = process.env.SHMLAB_REAL_LAYOUT === "1";
if (!skip && !HAND)
  console.log(
    "finding 4's leak on weston's screen is run by hand: SHMLAB_REAL_LAYOUT=1 (it depends on weston's address-space layout)",
  );

/** Finding 4's program (seed 6 in docs/fuzz.md). */
const LIE: Action[] = [
  { k: "memfd", size: 4096, sealing: true },
  { k: "surface" },
  { k: "create-pool", f: 0, size: "file" },
  { k: "create-buffer", p: 0, offset: 0, width: 64, height: 32, stride: 128, format: 1 },
  { k: "attach", s: 0, b: 0, commit: true },
];

/**
 * The same lie on a page the client mapped just below a pool of its own, which it then
 * destroys: the last row reads into the hole left behind (SIGSEGV, which libwayland's SIGBUS
 * handler never claims). The model (weston-10, libwayland, wlroots-0.15) dies too; kwin-5.27
 * never reads a stride liar's buffer (Qt's null QImage), as the real KWin 5.27.
 */
const SELF_KILL: Action[] = [
  { k: "memfd", size: 16384, sealing: false },
  { k: "memfd", size: 4096, sealing: false },
  { k: "surface" },
  { k: "create-pool", f: 0, size: "file" },
  { k: "create-pool", f: 1, size: "file" },
  { k: "create-buffer", p: 1, offset: 0, width: 64, height: 32, stride: 128, format: 1 },
  { k: "destroy-pool", p: 0 },
  { k: "roundtrip" },
  { k: "attach", s: 0, b: 0, commit: true },
];

const plan = (honest: number) =>
  waylandPlan("fuzz-actions", { honest, seed: 6, frames: 1, timeoutMs: 5000 });

describe.skipIf(skip !== "")("finding 4's liar on the real weston", () => {
  it("is found by its zeros, its 32 pixels past the pool are checked, and the mapping above is named", async () => {
    const inst = await weston.start();
    try {
      const obs = await new WaylandDriver().run(inst, plan(0), { behaviour: actionBehaviour(LIE) });
      expect(obs.compositor.alive).toBe(true);
      const w = obs.clients[0].window;
      expect(w, obs.clients[0].notes.join("\n")).toBeDefined();
      expect(w!.at, w!.why).not.toBeNull();
      expect([w!.width, w!.height]).toEqual([64, 32]);
      expect(w!.checked).toBe(2048);
      expect(w!.pastPool).toMatchObject({ pixels: 32, checked: 32 });
      // no other shmlab client: nothing can carry another client's tag
      expect(w!.foreign).toBe(0);
      expect(w!.poolNeighbour).toMatch(/^fuzz-actions#0's pool at 0x[0-9a-f]+-0x[0-9a-f]+; /);
    } finally {
      await inst.stop();
    }
  });

  it.skipIf(!HAND)(
    "shows the honest client's first 32 pixels when its pool was mapped just before the liar's (by hand)",
    async () => {
      const inst = await weston.start();
      const inner = actionBehaviour(LIE);
      const honestMapped = () =>
        readFileSync(`/proc/${inst.pid}/maps`, "utf8").includes("memfd:shmlab-pool");
      const liar: Behaviour = {
        ...inner,
        *run(c, ctx) {
          while (!honestMapped()) yield c.roundtrip();
          yield* inner.run(c, ctx);
        },
      };
      try {
        const obs = await new WaylandDriver().run(inst, plan(1), { behaviour: liar });
        const w = obs.clients[1].window!;
        expect(w.poolNeighbour).toMatch(/directly above: honest-renderer#0's memfd/);
        expect(w.foreign).toBe(32);
        expect(w.foreignExact).toBe(32);
        expect(w.firstCopy).toEqual({ bx: 32, by: 31, client: 0, frame: 0, x: 0, y: 0 });
      } finally {
        await inst.stop();
      }
    },
  );
  it.skipIf(!HAND)(
    "kills weston (SIGSEGV) when the liar destroys its own pool mapped just above (by hand)",
    async () => {
      const inst = await weston.start();
      try {
        const obs = await new WaylandDriver({ pixels: false }).run(inst, plan(0), {
          behaviour: actionBehaviour(SELF_KILL),
        });
        expect(obs.compositor.exit?.signal).toBe("SIGSEGV");
      } finally {
        await inst.stop();
      }
    },
  );
});
