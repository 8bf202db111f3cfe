/**
 * A client thread that calls process.exit() mid-session (in a worker thread this ends the
 * thread, not Node). On the main thread (lab runs) that would end everything, so there it
 * exits its simulated process instead and throws.
 */
import { isMainThread } from "node:worker_threads";
import type { Behaviour } from "../behaviour.ts";
import { scene, show } from "./common.ts";

const behaviour: Behaviour = {
  name: "worker-exits",
  description: "calls process.exit() mid-session (simulated exit on the main thread)",
  honest: false,
  source:
    "Containment requirement of issue 6: a client thread that exits must be detected and its client freed",
  *run(c, ctx) {
    const s = yield* scene(c, ctx, { buffers: 1 });
    const cb = show(c, ctx, s, s.buffers[0], 0);
    yield { what: "frame 0", ready: () => cb.done || c.closed };
    if (!isMainThread) process.exit(3);
    c.process.exit();
    throw new Error("worker-exits: process exited");
  },
};
export default behaviour;
