/**
 * Protocol garbage, one kind per run (params.kind, or one picked from the seed):
 *
 *   unknown-opcode   opcode 99 on wl_compositor             → invalid_method
 *   dead-object      a request on an id never created        → invalid_object
 *   destroyed-object a request on a destroyed wl_buffer      → invalid_object
 *   wrong-type       a string where create_surface's new_id is → invalid_method
 *   malformed-bytes  a frame cut in the middle               → nothing: a cut message waits
 *                                                              for its rest (protocol/server.ts)
 *   server-id        a new_id in the server's range          → invalid_method
 */
import { encodeMessage } from "../../protocol/codec.ts";
import type { Behaviour } from "../behaviour.ts";
import { scene, settle, str } from "./common.ts";

export const GARBAGE_KINDS = [
  "unknown-opcode",
  "dead-object",
  "destroyed-object",
  "wrong-type",
  "malformed-bytes",
  "server-id",
] as const;

const behaviour: Behaviour = {
  name: "protocol-garbage",
  description: "unknown opcodes, dead ids, wrong argument types, malformed bytes",
  honest: false,
  source:
    "libwayland wayland-server.c wl_client_connection_data ('invalid object %u', 'invalid arguments for %s#%u.%s'); fuzzing of Wayland servers (every compositor must survive it)",
  *run(c, ctx) {
    const s = yield* scene(c, ctx, { buffers: 1 });
    const picked = str(ctx, "kind", GARBAGE_KINDS[Math.floor(ctx.random() * GARBAGE_KINDS.length)]);
    c.notes.push(`kind ${picked}`);
    switch (picked) {
      case "unknown-opcode":
        c.raw(c.compositor, 99, []);
        break;
      case "dead-object":
        c.raw(5000, 0, []);
        break;
      case "destroyed-object": {
        const b = s.buffers[0];
        c.destroyBuffer(b);
        c.raw(b.id, 0, []);
        break;
      }
      case "wrong-type":
        c.raw(c.compositor, 0, ["not-an-id"]);
        break;
      case "malformed-bytes": {
        const full = encodeMessage(s.surface, 6, []);
        c.rawBytes(full.subarray(0, full.length - 1));
        break;
      }
      case "server-id":
        c.raw(c.compositor, 0, [0xff000005]);
        break;
      default:
        throw new Error(`unknown garbage kind ${picked}`);
    }
    yield;
    yield* settle(c);
  },
};
export default behaviour;
