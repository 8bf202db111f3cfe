/**
 * Thousands of wl_buffers in one pool (objects, not fds): the per-client object limit is
 * what should stop it. Bounded by params.count.
 *
 * Params: count (5000, past the 4096-object limit), burst (100).
 */
import type { Behaviour } from "../behaviour.ts";
import { num, scene, settle } from "./common.ts";

const behaviour: Behaviour = {
  name: "flood-buffers",
  description: "creates thousands of wl_buffers in one pool",
  honest: false,
  source:
    "wleird `resource-thief` (resource exhaustion); libwayland WL_MAP_MAX_OBJECTS / per-client object limits",
  *run(c, ctx) {
    const s = yield* scene(c, ctx, { buffers: 1 });
    const count = num(ctx, "count", 5000);
    const burst = num(ctx, "burst", 100);
    let sent = 0;
    for (; sent < count && !c.closed; sent++) {
      c.createBuffer(s.pool, 0, 1, 1, 4);
      if (sent % burst === burst - 1) yield* settle(c);
    }
    c.notes.push(`buffers sent: ${sent}`);
    yield* settle(c);
  },
};
export default behaviour;
