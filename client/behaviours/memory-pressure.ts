/**
 * Memory pressure after a bad commit: show two good frames, shrink the pool under the
 * committed buffer and commit again (the compositor's next read faults), then the machine
 * comes under memory pressure and the client commits once more. It tells apart what a
 * policy shows for a broken client before and after the kernel reclaims memory: with
 * `droppable-cache` the window first freezes on its last good frame, kept in MAP_DROPPABLE
 * memory, then turns black once reclaim has discarded those pages (LINUX.md rule 17: they
 * read back as zero, with no signal); every other policy shows the same before and after.
 *
 * The pressure stands for the rest of the system, so it is the run's event, not the
 * client's: the scenario marks when it comes (`ctx.system.memoryPressure()`), and the lab's
 * run makes the kernel reclaim, as kswapd would, dropping every droppable page of every
 * process that is not pinned (shm/reclaim.ts), and records it on the timeline. A client
 * run without a lab around it (a worker, a remote client) only truncates.
 *
 * Params: width, height (64).
 */
import type { Behaviour } from "../behaviour.ts";
import { scene, settle, show } from "./common.ts";

const behaviour: Behaviour = {
  name: "memory-pressure",
  description: "two good frames, shrink the pool and commit, then memory pressure, commit again",
  honest: false,
  source:
    "LINUX.md rule 17: MAP_DROPPABLE (Jason A. Donenfeld, Linux 6.11, for vgetrandom state) is reclaimed even when dirty and reads back as zero; a cache kept there is gone without notice",
  *run(c, ctx) {
    const s = yield* scene(c, ctx, { buffers: 1, keepFd: true });
    for (let f = 0; f < 2; f++) {
      yield c.untilReleased(s.buffers[0]);
      const cb = show(c, ctx, s, s.buffers[0], f);
      yield c.untilDone(cb);
    }
    yield c.untilReleased(s.buffers[0]);
    c.process.ftruncate(s.memfd.fd, 0);
    c.notes.push("pool file truncated to 0 under the committed buffer");
    const commit = () => {
      c.attach(s.surface, s.buffers[0]);
      c.damageBuffer(s.surface, 0, 0, s.width, s.height);
      const cb = c.frame(s.surface);
      c.commit(s.surface, s.buffers[0]);
      return cb;
    };
    const cb1 = commit();
    yield { what: "frame after truncation or disconnect", ready: () => cb1.done || c.closed };
    if (ctx.system && !c.closed) {
      const pages = ctx.system.memoryPressure();
      c.notes.push(`memory pressure: ${pages} droppable page(s) reclaimed system-wide`);
    }
    if (!c.closed) {
      const cb2 = commit();
      yield {
        what: "frame after memory pressure or disconnect",
        ready: () => cb2.done || c.closed,
      };
    }
    yield* settle(c);
  },
};
export default behaviour;
