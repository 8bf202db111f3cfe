/**
 * wl_shm_pool.resize to a smaller size: forbidden by wayland.xml ("can only be used to make
 * the pool bigger"); libwayland answers wl_shm.invalid_fd "shrinking pool invalid".
 *
 * Params: width, height (64).
 */
import type { Behaviour } from "../behaviour.ts";
import { scene, settle, show } from "./common.ts";

const behaviour: Behaviour = {
  name: "resize-pool-smaller",
  description: "wl_shm_pool.resize to half the pool's size after committing from it",
  honest: false,
  source:
    "wayland.xml wl_shm_pool.resize; libwayland wayland-shm.c shm_pool_resize 'shrinking pool invalid' (docs/policy-sources.md §1)",
  *run(c, ctx) {
    const s = yield* scene(c, ctx, { buffers: 2 });
    show(c, ctx, s, s.buffers[0], 0);
    c.resizePool(s.pool, s.bufferSize);
    yield;
    yield* settle(c);
  },
};
export default behaviour;
