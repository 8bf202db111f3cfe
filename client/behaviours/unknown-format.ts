/**
 * A format the compositor never advertised (0xDEADBEEF, as WLCS sends). The client library
 * refuses to marshal a value outside wl_shm.format, so the request goes out raw.
 *
 * Params: format (0xdeadbeef).
 */
import { requestOpcode } from "../../protocol/schema.ts";
import type { Behaviour } from "../behaviour.ts";
import { num, scene, settle } from "./common.ts";

const behaviour: Behaviour = {
  name: "unknown-format",
  description: "create_buffer with format 0xDEADBEEF (sent raw)",
  honest: false,
  source: "WLCS tests/wl_shm.cpp create_buffer_with_unknown_format_is_an_error",
  *run(c, ctx) {
    const s = yield* scene(c, ctx, { buffers: 1 });
    const op = requestOpcode(c.schema, "wl_shm_pool", "create_buffer");
    const id = c.raw(
      s.pool.id,
      op,
      [0, 0, s.width, s.height, s.stride, num(ctx, "format", 0xdeadbeef)],
      {
        newObject: { index: 0, interface: "wl_buffer", version: 1 },
      },
    );
    c.notes.push(`raw create_buffer wl_buffer@${id}`);
    yield;
    yield* settle(c);
  },
};
export default behaviour;
