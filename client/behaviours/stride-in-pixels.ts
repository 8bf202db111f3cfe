/**
 * A stride given in pixels instead of bytes (width, not width*4): WLCS's
 * client_lies_about_buffer_size. libwayland and KWin accept it (stride >= width); wlroots
 * and Smithay refuse it with invalid_stride. Accepted, the compositor reads rows that
 * overlap and the surface shows garbage.
 *
 * Params: width, height (64).
 */
import type { Behaviour } from "../behaviour.ts";
import { num, scene, settle } from "./common.ts";

const behaviour: Behaviour = {
  name: "stride-in-pixels",
  description: "create_buffer with stride = width (pixels) for a 4-byte format",
  honest: false,
  source:
    "WLCS tests/wl_shm.cpp client_lies_about_buffer_size (200x200, stride 200, ARGB8888); docs/policy-sources.md §6.2",
  *run(c, ctx) {
    const s = yield* scene(c, ctx, { buffers: 1 });
    const w = num(ctx, "width", 64);
    const h = num(ctx, "height", 64);
    const good = s.buffers[0];
    c.drawPattern(s.base, good, ctx.seed, ctx.index, 0);
    const bad = c.createBuffer(s.pool, 0, w, h, w);
    bad.frame = 0;
    c.attach(s.surface, bad);
    c.damageBuffer(s.surface, 0, 0, w, h);
    c.commit(s.surface, bad);
    yield;
    yield* settle(c);
  },
};
export default behaviour;
