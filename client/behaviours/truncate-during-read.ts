/**
 * The race: commit, then truncate in a tight loop of tiny steps, so that under the lab's
 * seeded scheduler the truncation lands between two pages of the compositor's read of the
 * buffer (the step runs at one of the kernel's preemption points inside that read). Then
 * regrow, redraw and go again, `rounds` times.
 *
 * Params: width, height (64), rounds (8), spin (4: the most idle steps before truncating,
 * drawn from the seed), after (-1; when >= 0, exactly this many idle steps).
 */
import type { Behaviour } from "../behaviour.ts";
import { num, scene, settle, show } from "./common.ts";

const behaviour: Behaviour = {
  name: "truncate-during-read",
  description: "truncates the pool file while the compositor is reading the committed buffer",
  honest: false,
  source:
    "DESIGN.md: 'a client's ftruncate can land between two pages of the compositor's read'; the window libwayland's wl_shm_buffer_begin_access/end_access brackets (wayland-shm.c); Mir PR #2645 ('a client that submits a bad buffer ... crash Mir')",
  *run(c, ctx) {
    const s = yield* scene(c, ctx, { buffers: 1, keepFd: true });
    // Let the compositor accept the pool and buffer first (a roundtrip), so the truncation
    // races the read of a committed buffer, not create_pool's validation of a short file.
    yield* settle(c);
    const sys = c.process;
    const size = s.bufferSize;
    const rounds = num(ctx, "rounds", 8);
    const spin = num(ctx, "spin", 4);
    for (let r = 0; r < rounds && !c.closed; r++) {
      sys.ftruncate(s.memfd.fd, size);
      const cb = show(c, ctx, s, s.buffers[0], r);
      const after = num(ctx, "after", -1);
      const idle = after >= 0 ? after : Math.floor(ctx.random() * (spin + 1));
      yield; // the commit is out; every step from here may run inside the compositor's read
      for (let i = 0; i < idle; i++) yield;
      sys.ftruncate(s.memfd.fd, 0);
      yield;
      yield { what: `frame ${r} or disconnect`, ready: () => cb.done || c.closed };
    }
    yield* settle(c);
  },
};
export default behaviour;
