/**
 * The honest client: double buffering, never touching a buffer the compositor has not
 * released, one frame per frame callback, every pixel from the pattern (pattern.ts), and
 * optionally a memfd sealed against shrinking (params.seal), as a careful client does today.
 *
 * Params: width, height (64), frames (8; 0 = until stopped), buffers (2), seal (false).
 */
import { SEAL } from "../../shm/uapi.ts";
import type { Behaviour } from "../behaviour.ts";
import { flag, num, scene, settle, show } from "./common.ts";

const behaviour: Behaviour = {
  name: "honest-renderer",
  description: "double-buffered pattern frames, waits for release and frame callbacks",
  honest: true,
  source:
    "The client wl_shm was designed for (wayland.xml wl_buffer.release: 'the client may reuse the buffer ... after release'); sealing per Simon Ser, 'Sealed memfd & no-fault mmap', LKML 2021-04-27",
  *run(c, ctx) {
    const frames = num(ctx, "frames", 8);
    const seal = flag(ctx, "seal", false) ? SEAL.F_SEAL_SHRINK : undefined;
    const s = yield* scene(c, ctx, { buffers: num(ctx, "buffers", 2), seal });
    for (let f = 0; frames === 0 || f < frames; f++) {
      const b = s.buffers[f % s.buffers.length];
      yield c.untilReleased(b);
      const cb = show(c, ctx, s, b, f);
      yield c.untilDone(cb);
    }
    yield* settle(c);
  },
};
export default behaviour;
