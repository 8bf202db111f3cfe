/**
 * A memfd sealed against writing (F_SEAL_WRITE): its content can never change, which is
 * what a compositor might want — but a writable shared mapping of it is refused with EPERM
 * (LINUX.md rule 10), and libwayland maps pools PROT_READ|PROT_WRITE, MAP_SHARED.
 *
 * Params: width, height (64).
 */
import { SEAL } from "../../shm/uapi.ts";
import type { Behaviour } from "../behaviour.ts";
import { frameBytes } from "../pattern.ts";
import { commitOnce, num, settle } from "./common.ts";

const behaviour: Behaviour = {
  name: "write-sealed-fd",
  description: "create_pool with a memfd sealed F_SEAL_WRITE (content written first)",
  honest: false,
  source:
    "LINUX.md rule 10; libwayland wayland-shm.c shm_create_pool mmap(PROT_READ|PROT_WRITE, MAP_SHARED) → 'failed mmap fd' invalid_fd (docs/policy-sources.md §1)",
  *run(c, ctx) {
    yield c.setup();
    const w = num(ctx, "width", 64);
    const h = num(ctx, "height", 64);
    const m = c.createMemfd(w * h * 4, { allowSealing: true });
    c.process.pwrite(m.fd, frameBytes(ctx.seed, ctx.index, 0, w, h), 0);
    c.process.addSeals(m.fd, SEAL.F_SEAL_WRITE | SEAL.F_SEAL_SHRINK | SEAL.F_SEAL_GROW);
    const surface = c.createSurface();
    const pool = c.createPool(m.fd, m.size);
    const b = c.createBuffer(pool, 0, w, h, w * 4);
    b.frame = 0;
    c.process.close(m.fd);
    yield* commitOnce(c, surface, b);
    yield* settle(c);
  },
};
export default behaviour;
