/**
 * A buffer whose offset puts it past the end of the pool (WLCS: offset = stride in a pool
 * exactly one buffer large), or far past it (params.offset).
 */
import type { Behaviour } from "../behaviour.ts";
import { num, scene, settle } from "./common.ts";

const behaviour: Behaviour = {
  name: "offset-past-end",
  description: "create_buffer with an offset that puts the buffer past the pool's end",
  honest: false,
  source: "WLCS tests/wl_shm.cpp create_buffer_exceeding_pool_size_is_an_error (offset = stride)",
  *run(c, ctx) {
    const s = yield* scene(c, ctx, { buffers: 1 });
    const b = c.createBuffer(s.pool, num(ctx, "offset", s.stride), s.width, s.height, s.stride);
    c.attach(s.surface, b);
    c.commit(s.surface, b);
    yield;
    yield* settle(c);
  },
};
export default behaviour;
