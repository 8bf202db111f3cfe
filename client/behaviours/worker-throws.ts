/**
 * A client whose code throws in the middle of a session, after it has a committed buffer
 * on screen. In a worker the exception ends the task; on the lab's thread the runtime
 * records it. Either way the client must be disconnected and its resources freed, and
 * nobody else may notice.
 *
 * Params: after (3: frames shown before throwing).
 */
import { isMainThread } from "node:worker_threads";
import type { Behaviour } from "../behaviour.ts";
import { num, scene, show } from "./common.ts";

const behaviour: Behaviour = {
  name: "worker-throws",
  description: "throws an exception mid-session, with a buffer committed",
  honest: false,
  source:
    "Containment requirement of issue 6: a crashing client thread must not take the compositor or other clients with it",
  *run(c, ctx) {
    const s = yield* scene(c, ctx, { buffers: 2 });
    for (let f = 0; f < num(ctx, "after", 3); f++) {
      const b = s.buffers[f % 2];
      yield c.untilReleased(b);
      const cb = show(c, ctx, s, b, f);
      yield { what: `frame ${f}`, ready: () => cb.done || c.closed };
    }
    if (!isMainThread) {
      // In a worker the exception escapes everything (an uncaught error ends the thread),
      // as a crash in a client's own event loop would.
      setImmediate(() => {
        throw new Error("worker-throws: deliberate crash");
      });
      yield { what: "the crash", ready: () => false };
    }
    throw new Error("worker-throws: deliberate crash");
  },
};
export default behaviour;
