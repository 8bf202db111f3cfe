/**
 * Going away at the worst moment (params.mode):
 *
 *   after-commit   attach + commit, then close the connection in the same step: the
 *                  compositor has a committed buffer of a client that is gone
 *   half-frame     the first half of a create_pool frame (with its fd), then close
 *   exit           the process exits right after commit (fds and mappings go with it)
 */
import { encodeMessage } from "../../protocol/codec.ts";
import { requestOpcode } from "../../protocol/schema.ts";
import type { Behaviour } from "../behaviour.ts";
import { scene, show, str } from "./common.ts";

const behaviour: Behaviour = {
  name: "disconnect-mid-request",
  description: "closes the connection right after a commit, or in the middle of a frame",
  honest: false,
  source:
    "libwayland wl_client_destroy on a hung-up socket with requests half-read; Mir PR #2645 (buffer state after the client is gone)",
  *run(c, ctx) {
    const mode = str(ctx, "mode", "after-commit");
    const s = yield* scene(c, ctx, { buffers: 1, keepFd: true });
    c.notes.push(`mode ${mode}`);
    if (mode === "half-frame") {
      const op = requestOpcode(c.schema, "wl_shm", "create_pool");
      const full = encodeMessage(c.shm, op, [
        c.proto.objects.allocate({ interface: "wl_shm_pool", version: 1 }),
        0,
        4096,
      ]);
      c.rawBytes(full.subarray(0, full.length >> 1), [s.memfd.fd]);
      c.disconnect();
    } else {
      show(c, ctx, s, s.buffers[0], 0);
      if (mode === "exit") c.process.exit();
      c.disconnect();
    }
    yield;
  },
};
export default behaviour;
