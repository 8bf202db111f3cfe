/**
 * Thousands of pools from one memfd: each create_pool passes a new fd to the compositor,
 * whose fd table (RLIMIT_NOFILE, 1024 here) runs out first. Bounded by params.count so a
 * test finishes; a yield every `burst` requests keeps steps short.
 *
 * Params: count (2000), burst (50).
 */
import type { Behaviour } from "../behaviour.ts";
import { num, settle } from "./common.ts";

const behaviour: Behaviour = {
  name: "flood-pools",
  description: "creates thousands of wl_shm_pools (one fd passed each)",
  honest: false,
  source: "wleird `resource-thief`: 'makes the compositor run out of (fd or memory) resources'",
  *run(c, ctx) {
    yield c.setup();
    const m = c.createMemfd(4096);
    const count = num(ctx, "count", 2000);
    const burst = num(ctx, "burst", 50);
    let sent = 0;
    for (; sent < count && !c.closed; sent++) {
      c.createPool(m.fd, 4096);
      if (sent % burst === burst - 1) {
        yield* settle(c);
      }
    }
    c.notes.push(`pools sent: ${sent}`);
    c.process.close(m.fd);
    yield* settle(c);
  },
};
export default behaviour;
