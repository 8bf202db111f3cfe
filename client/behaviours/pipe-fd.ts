/**
 * An fd that is not a memfd at all: the read end of a pipe. mmap fails (ENODEV) and the
 * compositor must say so rather than crash.
 */
import type { Behaviour } from "../behaviour.ts";
import { settle } from "./common.ts";

const behaviour: Behaviour = {
  name: "pipe-fd",
  description: "create_pool with the read end of a pipe",
  honest: false,
  source:
    "WLCS tests/wl_shm.cpp create_pool_with_invalid_fd_is_an_error (pipe(), create_pool(shm, pipe_fds[0], 4))",
  *run(c) {
    yield c.setup();
    const [r, w] = c.process.pipe();
    c.createPool(r, 4096);
    c.process.close(r);
    c.process.close(w);
    yield;
    yield* settle(c);
  },
};
export default behaviour;
