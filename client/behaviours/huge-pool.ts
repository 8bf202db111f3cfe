/**
 * A pool of INT32_MAX bytes on a one-page file, and a buffer near its end: the compositor
 * maps 2 GiB of address space for nothing and its read of the buffer is beyond EOF.
 *
 * Params: width, height (64).
 */
import type { Behaviour } from "../behaviour.ts";
import { commitOnce, num, settle } from "./common.ts";

const behaviour: Behaviour = {
  name: "huge-pool",
  description: "create_pool(INT32_MAX) on a 4 KiB file, buffer near the end",
  honest: false,
  source:
    "wleird `resource-thief` (memory); lvgl issue #8766 (a real client growing its pool to 2145763328 bytes)",
  *run(c, ctx) {
    yield c.setup();
    const w = num(ctx, "width", 64);
    const h = num(ctx, "height", 64);
    const m = c.createMemfd(4096);
    const surface = c.createSurface();
    const size = 0x7fffffff;
    const pool = c.createPool(m.fd, size);
    const b = c.createBuffer(pool, size - w * h * 4 - 4096, w, h, w * 4);
    c.process.close(m.fd);
    yield* commitOnce(c, surface, b);
    yield* settle(c);
  },
};
export default behaviour;
