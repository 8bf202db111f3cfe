/**
 * Shrink the file to nothing and grow it back, again and again, drawing a new frame after
 * each regrowth and committing it. The compositor may see zeros, SIGBUS, or (with a kernel
 * that maps zero pages beyond EOF and forgets them on growth) stale zeros over new content.
 *
 * Params: width, height (64), rounds (6).
 */
import type { Behaviour } from "../behaviour.ts";
import { num, scene, settle, show } from "./common.ts";

const behaviour: Behaviour = {
  name: "shrink-regrow",
  description: "ftruncate to 0 and back repeatedly, new content after each regrowth",
  honest: false,
  source:
    "Hugh Dickins, LKML 2021-05-29, on zero pages beyond EOF: 'what happens to the zero page ... when later a page for that offset is created' (LINUX.md, proposals); wleird `sigbus`",
  *run(c, ctx) {
    const s = yield* scene(c, ctx, { buffers: 1, keepFd: true });
    const sys = c.process;
    for (let r = 0; r < num(ctx, "rounds", 6) && !c.closed; r++) {
      sys.ftruncate(s.memfd.fd, 0);
      yield;
      sys.ftruncate(s.memfd.fd, s.bufferSize);
      const cb = show(c, ctx, s, s.buffers[0], r);
      yield { what: `frame ${r} or disconnect`, ready: () => cb.done || c.closed };
    }
    yield* settle(c);
  },
};
export default behaviour;
