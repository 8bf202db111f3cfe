/**
 * Grow the file and resize the pool in a tight loop of tiny steps while a committed buffer
 * is being read. libwayland defers the remap (mremap) while the pool is accessed; a
 * compositor that remaps under its own reader reads a stale or unmapped address.
 * All content is honest: the frames must stay correct.
 *
 * Params: width, height (64), rounds (8).
 */
import { PAGE_SIZE } from "../../shm/uapi.ts";
import type { Behaviour } from "../behaviour.ts";
import { num, scene, settle, show } from "./common.ts";

const behaviour: Behaviour = {
  name: "resize-during-read",
  description: "grows the file and resizes the pool while buffers are being read",
  honest: false,
  source:
    "Smithay PR #1473 'pixman: re-map resized shm pool images' ('The actual mmap can change if the shm pool gets resized'); libwayland wayland-shm.c deferred resize while accessed; lvgl issue #8766 (pools resized towards 2 GiB)",
  *run(c, ctx) {
    const s = yield* scene(c, ctx, { buffers: 2, keepFd: true });
    const sys = c.process;
    let size = s.memfd.size;
    for (let r = 0; r < num(ctx, "rounds", 8) && !c.closed; r++) {
      const b = s.buffers[r % 2];
      yield c.untilReleased(b);
      const cb = show(c, ctx, s, b, r);
      for (let i = 0; i < 3; i++) {
        size += PAGE_SIZE;
        sys.ftruncate(s.memfd.fd, size);
        c.resizePool(s.pool, size);
        yield;
      }
      yield { what: `frame ${r} or disconnect`, ready: () => cb.done || c.closed };
    }
    yield* settle(c);
  },
};
export default behaviour;
