/**
 * An honest client that redraws and damages only part of its window: a 16x16 "cursor"
 * moves over a still background. Its first frame is drawn and damaged whole; after that
 * each frame's buffer holds the background (pattern frame 0) with the cursor (pattern
 * frame k) at its new place, and the commit damages only the cursor's old and new
 * rectangles — exactly what changed on screen, as wl_surface.damage_buffer asks. Every
 * pixel is checkable: the commit records the cursor as a later-frame inset
 * (Client.drawPatternRect), so the lab expects frame 0 around it and frame k inside.
 *
 * A compositor that uploads damage only (wlroots, KWin) reads the two small rectangles
 * instead of the buffer and must still show exactly these pixels; one that applied the
 * damage to a stale texture would show stale pixels, which the lab reports as harm.
 *
 *   npx shmlab compare --behaviours ./examples/behaviours/honest-partial-damage.ts
 *
 * Kept out of the catalogue (loaded by path): the real compositors' screen capture does not
 * know insets yet, so `conformance --compositors` would misjudge its pixels.
 * Params: width, height (64), frames (8; 0 = until stopped, as the lab runs it), cursor (16).
 */
import type { Behaviour } from "../../client/behaviour.ts";
import { num, scene, settle, show } from "../../client/behaviours/common.ts";

const behaviour: Behaviour = {
  name: "honest-partial-damage",
  description: "double-buffered; a 16x16 cursor moves, only its old and new rectangles damaged",
  honest: true,
  source:
    "wayland.xml wl_surface.damage_buffer ('the compositor ignores the parts of the damage that fall outside of the buffer'; damage tells what changed); a cursor or caret blinking is the everyday partial redraw",
  *run(c, ctx) {
    const frames = num(ctx, "frames", 8);
    const size = num(ctx, "cursor", 16);
    const s = yield* scene(c, ctx, { buffers: 2 });
    const at = (k: number) => ({
      x: ((k * 13) % Math.max(1, s.width - size)) | 0,
      y: ((k * 7) % Math.max(1, s.height - size)) | 0,
      width: size,
      height: size,
    });
    const first = show(c, ctx, s, s.buffers[0], 0);
    yield c.untilDone(first);
    for (let k = 1; frames === 0 || k < frames; k++) {
      const b = s.buffers[k % 2];
      yield c.untilReleased(b);
      // The whole buffer made current (background + the new cursor), the damage only what
      // changed since the last commit: the old cursor's rectangle and the new one's.
      c.drawPattern(s.base, b, ctx.seed, ctx.index, 0);
      const cur = at(k);
      c.drawPatternRect(s.base, b, ctx.seed, ctx.index, k, cur);
      const old = k === 1 ? cur : at(k - 1);
      c.attach(s.surface, b);
      c.damageBuffer(s.surface, old.x, old.y, old.width, old.height);
      c.damageBuffer(s.surface, cur.x, cur.y, cur.width, cur.height);
      const cb = c.frame(s.surface);
      c.commit(s.surface, b);
      yield c.untilDone(cb);
    }
    yield* settle(c);
  },
};
export default behaviour;
