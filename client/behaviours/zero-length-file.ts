/**
 * A zero-length file behind a pool of a whole buffer: the Smithay report, reproduced by
 * removing the client's draw() call so the memfd is never sized.
 *
 * Params: width, height (64).
 */
import type { Behaviour } from "../behaviour.ts";
import { commitOnce, num, settle } from "./common.ts";

const behaviour: Behaviour = {
  name: "zero-length-file",
  description: "create_pool on a memfd that was never sized (0 bytes)",
  honest: false,
  source:
    "Smithay issue #834: simple_window.rs without draw() 'sends a zero-length file to the compositor' and anvil/cosmic-comp panic",
  *run(c, ctx) {
    yield c.setup();
    const w = num(ctx, "width", 64);
    const h = num(ctx, "height", 64);
    const m = c.createMemfd(0);
    const surface = c.createSurface();
    const pool = c.createPool(m.fd, w * h * 4);
    const b = c.createBuffer(pool, 0, w, h, w * 4);
    c.process.close(m.fd);
    yield* commitOnce(c, surface, b);
    yield* settle(c);
  },
};
export default behaviour;
