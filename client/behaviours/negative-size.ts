/**
 * Negative sizes: create_pool with size -1 (WLCS), or a buffer with a negative width,
 * height or offset (params.what = "pool" | "width" | "height" | "offset").
 */
import type { Behaviour } from "../behaviour.ts";
import { scene, settle, str } from "./common.ts";

const behaviour: Behaviour = {
  name: "negative-size",
  description: "create_pool(size -1), or a buffer with a negative dimension or offset",
  honest: false,
  source:
    "WLCS tests/wl_shm.cpp create_pool_with_negative_size_is_an_error; libwayland 'invalid size (%d)' (docs/policy-sources.md §1)",
  *run(c, ctx) {
    const what = str(ctx, "what", "pool");
    const s = yield* scene(c, ctx, { buffers: 1, keepFd: true });
    if (what === "pool") {
      c.createPool(s.memfd.fd, -1);
    } else {
      const b = c.createBuffer(
        s.pool,
        what === "offset" ? -4096 : 0,
        what === "width" ? -s.width : s.width,
        what === "height" ? -s.height : s.height,
        s.stride,
      );
      c.attach(s.surface, b);
      c.commit(s.surface, b);
    }
    c.process.close(s.memfd.fd);
    yield;
    yield* settle(c);
  },
};
export default behaviour;
