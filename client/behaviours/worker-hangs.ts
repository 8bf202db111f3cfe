/**
 * A client thread that stops answering: in a worker, a busy loop that never returns to the
 * event loop (only terminating the thread ends it); on the main thread, a Wait that never
 * holds (a hang there would stop the lab itself).
 */
import { isMainThread } from "node:worker_threads";
import type { Behaviour } from "../behaviour.ts";
import { scene, show } from "./common.ts";

const behaviour: Behaviour = {
  name: "worker-hangs",
  description:
    "spins forever mid-session without yielding (a Wait that never holds on the main thread)",
  honest: false,
  source:
    "Containment requirement of issue 6: a hanging client thread must be detected, disconnected and freed",
  *run(c, ctx) {
    const s = yield* scene(c, ctx, { buffers: 1 });
    const cb = show(c, ctx, s, s.buffers[0], 0);
    yield { what: "frame 0", ready: () => cb.done || c.closed };
    if (!isMainThread) for (;;) {}
    yield { what: "forever", ready: () => false };
  },
};
export default behaviour;
