/**
 * Commit a buffer, destroy the wl_buffer (legal: the compositor may keep the contents), then
 * shrink the file. A compositor that still holds the pool for the destroyed buffer reads
 * beyond EOF with no wl_buffer left to post an error on.
 *
 * Params: width, height (64).
 */
import type { Behaviour } from "../behaviour.ts";
import { scene, settle, show } from "./common.ts";

const behaviour: Behaviour = {
  name: "destroy-buffer-then-shrink",
  description: "commit, destroy the wl_buffer and the pool, then ftruncate the file to 0",
  honest: false,
  source:
    "Mir PR #2645 'Handle clients immediately destroying the buffer' (RAOF: 'a client that submits a bad buffer and then deletes it' can crash Mir; libwayland's begin/end_access 'crash in the same circumstance')",
  *run(c, ctx) {
    const s = yield* scene(c, ctx, { buffers: 1, keepFd: true });
    show(c, ctx, s, s.buffers[0], 0);
    c.destroyBuffer(s.buffers[0]);
    c.destroyPool(s.pool);
    c.process.ftruncate(s.memfd.fd, 0);
    yield;
    yield* settle(c);
    yield* settle(c);
  },
};
export default behaviour;
