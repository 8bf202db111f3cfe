/**
 * fork(): the child inherits the memfd and truncates it while the parent keeps committing
 * frames from it. The parent writes with pwrite (a kernel access, no SIGBUS for itself)
 * after regrowing the file; the compositor cannot tell which process shrank it — the
 * client that owns the connection is not the one that truncates.
 *
 * Params: width, height (64), rounds (6).
 */
import type { Behaviour } from "../behaviour.ts";
import { frameBytes } from "../pattern.ts";
import { num, scene, settle } from "./common.ts";

const behaviour: Behaviour = {
  name: "fork-child-truncates",
  description: "a forked child truncates the shared pool file while the parent commits",
  honest: false,
  source:
    "LINUX.md rule 14 (MAP_SHARED stays shared across fork) and rule 1 (truncation zaps every process's mappings); any process holding the fd can shrink it — why F_SEAL_SHRINK, not trust in the client, is the only sender-side guarantee (memfd_create(2))",
  *run(c, ctx) {
    const s = yield* scene(c, ctx, { buffers: 1, keepFd: true });
    const parent = c.process;
    const child = parent.fork(`${c.label}-child`);
    c.notes.push(`forked pid ${child.pid}`);
    const b = s.buffers[0];
    for (let r = 0; r < num(ctx, "rounds", 6) && !c.closed; r++) {
      parent.ftruncate(s.memfd.fd, s.bufferSize);
      parent.pwrite(s.memfd.fd, frameBytes(ctx.seed, ctx.index, r, s.width, s.height), 0);
      b.frame = r;
      c.attach(s.surface, b);
      c.damageBuffer(s.surface, 0, 0, s.width, s.height);
      const cb = c.frame(s.surface);
      c.commit(s.surface, b);
      yield;
      child.ftruncate(s.memfd.fd, 0);
      yield { what: `frame ${r} or disconnect`, ready: () => cb.done || c.closed };
    }
    if (child.alive) child.exit();
    yield* settle(c);
  },
};
export default behaviour;
