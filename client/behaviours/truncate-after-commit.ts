/**
 * weston's test_truncated_shm_file: a 200x200 buffer in a pool that is destroyed, the file
 * truncated to 12 bytes, then attach + damage + frame + commit. The compositor's next read
 * of the buffer is beyond EOF. (Here: commit first, truncate right after, which is the
 * same read after the same truncation, and also how wleird's `sigbus` client does it.)
 *
 * Params: width, height (64), size (12: the length the file is cut to).
 */
import type { Behaviour } from "../behaviour.ts";
import { num, scene, settle, show } from "./common.ts";

const behaviour: Behaviour = {
  name: "truncate-after-commit",
  description: "attach + commit a buffer, then ftruncate the pool file to 12 bytes",
  honest: false,
  source:
    "weston tests/bad-buffer-test.c test_truncated_shm_file; WLCS tests/wl_shm.cpp truncated_shm_file_is_an_error; wleird `sigbus` client; Hyprland issue #7518 (any client can crash it this way)",
  *run(c, ctx) {
    const s = yield* scene(c, ctx, { buffers: 1, keepFd: true });
    c.destroyPool(s.pool);
    const cb = show(c, ctx, s, s.buffers[0], 0);
    c.process.ftruncate(s.memfd.fd, num(ctx, "size", 12));
    c.process.close(s.memfd.fd);
    // Until the compositor has composited (and so read) the buffer, or dropped us.
    yield { what: "frame done or disconnect", ready: () => cb.done || c.closed };
    yield* settle(c);
  },
};
export default behaviour;
