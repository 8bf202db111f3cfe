/**
 * Behaves for one frame (an unsealed pool, a buffer shown and read, so the compositor has
 * met it and libwayland's SIGBUS handler is installed), then truncates the file to 12
 * bytes and commits the same buffer again. What is on top of SIGBUS by then decides:
 * libwayland's handler posts invalid_fd; a compositor handler installed over it that does
 * not chain (WLCS issue #30, the warning in wl_shm_buffer_begin_access's documentation)
 * lets the compositor die; a renderer that re-reads at every repaint (wlroots 0.15, weston
 * 10) meets the truncation at the next repaint even without the second commit (sway 1.7,
 * fuzz seed 102, docs/real-compositors.md).
 *
 * Params: width, height (64), size (12).
 */
import type { Behaviour } from "../behaviour.ts";
import { num, scene, settle, show } from "./common.ts";

const behaviour: Behaviour = {
  name: "shown-then-truncated",
  description: "show a frame and wait for it, then ftruncate the file to 12 bytes and commit again",
  honest: false,
  source:
    "WLCS issue #30 (a compositor SIGBUS handler installed over libwayland's); shmlab fuzz --real sway seed 102 (truncation after the first show, caught at a later repaint)",
  *run(c, ctx) {
    const s = yield* scene(c, ctx, { buffers: 1, keepFd: true });
    const first = show(c, ctx, s, s.buffers[0], 0);
    yield { what: "frame done or disconnect", ready: () => first.done || c.closed };
    c.process.ftruncate(s.memfd.fd, num(ctx, "size", 12));
    c.attach(s.surface, s.buffers[0]);
    c.damageBuffer(s.surface, 0, 0, s.width, s.height);
    const cb = c.frame(s.surface);
    c.commit(s.surface, s.buffers[0]);
    yield { what: "frame done or disconnect", ready: () => cb.done || c.closed };
    yield* settle(c);
  },
};
export default behaviour;
