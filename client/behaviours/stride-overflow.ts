/**
 * stride * height beyond INT32_MAX (65536 * 32768 = 2^31): a compositor computing the size
 * in int32 wraps to a negative or small number and lets the buffer through.
 * libwayland: "INT32_MAX / stride <= height" → invalid_stride.
 */
import type { Behaviour } from "../behaviour.ts";
import { scene, settle } from "./common.ts";

const behaviour: Behaviour = {
  name: "stride-overflow",
  description: "create_buffer whose stride*height overflows int32",
  honest: false,
  source:
    "libwayland wayland-shm.c shm_pool_create_buffer overflow check 'INT32_MAX / stride <= height' (docs/policy-sources.md §1)",
  *run(c, ctx) {
    const s = yield* scene(c, ctx, { buffers: 1 });
    const b = c.createBuffer(s.pool, 0, 1, 0x8000, 0x10000);
    c.attach(s.surface, b);
    c.commit(s.surface, b);
    yield;
    yield* settle(c);
  },
};
export default behaviour;
