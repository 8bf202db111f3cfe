/**
 * Punch holes in the middle of a committed buffer (fallocate PUNCH_HOLE|KEEP_SIZE): the
 * size does not change, so no SIGBUS; the compositor reads zeros where the pages were
 * (LINUX.md rule 4). A compositor that only guards against shrinking shows zero pixels.
 *
 * Params: width, height (64).
 */
import { FALLOC, PAGE_SIZE } from "../../shm/uapi.ts";
import type { Behaviour } from "../behaviour.ts";
import { scene, settle, show } from "./common.ts";

const behaviour: Behaviour = {
  name: "punch-holes",
  description: "commit, then fallocate(PUNCH_HOLE) over the buffer's middle pages",
  honest: false,
  source:
    "LINUX.md rule 4 (holes read as zero, size unchanged): a hazard no SIGBUS handler sees; memfd F_SEAL_WRITE is the only seal that forbids it (memfd_create(2), fcntl(2) F_ADD_SEALS)",
  *run(c, ctx) {
    const s = yield* scene(c, ctx, { buffers: 1, keepFd: true });
    const cb = show(c, ctx, s, s.buffers[0], 0);
    const from = PAGE_SIZE;
    const len = Math.max(PAGE_SIZE, s.bufferSize - 2 * PAGE_SIZE);
    c.process.fallocate(
      s.memfd.fd,
      FALLOC.FALLOC_FL_PUNCH_HOLE | FALLOC.FALLOC_FL_KEEP_SIZE,
      from,
      len,
    );
    c.notes.push(`punched ${len} bytes at ${from}`);
    yield { what: "frame or disconnect", ready: () => cb.done || c.closed };
    yield* settle(c);
  },
};
export default behaviour;
