/**
 * A pool declared larger than its file: create_pool(fd, size) where the file holds one
 * page. mmap does not check the size (LINUX.md rule 3); the compositor's read of the
 * buffer's later pages is beyond EOF.
 *
 * Params: width, height (64), fileSize (4096).
 */
import type { Behaviour } from "../behaviour.ts";
import { frameBytes } from "../pattern.ts";
import { commitOnce, num, settle } from "./common.ts";

const behaviour: Behaviour = {
  name: "pool-larger-than-file",
  description: "create_pool with a size larger than the file behind the fd",
  honest: false,
  source:
    "wleird issue #12 ('Client generates SIGBUS by claiming buffer is larger than it is'); Smithay issue #834 ('Compositor crashes if mapped shm buffer doesn't have expected size')",
  *run(c, ctx) {
    yield c.setup();
    const w = num(ctx, "width", 64);
    const h = num(ctx, "height", 64);
    const fileSize = num(ctx, "fileSize", 4096);
    const sys = c.process;
    const m = c.createMemfd(fileSize);
    const px = frameBytes(ctx.seed, ctx.index, 0, w, h);
    if (fileSize > 0) sys.pwrite(m.fd, px.subarray(0, Math.min(fileSize, px.length)), 0);
    const surface = c.createSurface();
    const pool = c.createPool(m.fd, w * h * 4);
    const b = c.createBuffer(pool, 0, w, h, w * 4);
    b.frame = 0;
    sys.close(m.fd);
    yield* commitOnce(c, surface, b);
    yield* settle(c);
  },
};
export default behaviour;
