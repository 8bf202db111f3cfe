/**
 * A resize deferred while a destroyed buffer is kept, on the real compositors: a claim of the
 * model that no catalogue behaviour exercised. wlroots 0.15 keeps a destroyed wl_buffer that
 * is still on screen with `wl_shm_buffer_ref_pool` (shm_client_buffer_resource_handle_destroy),
 * and so does KWin 5.27 (ShmClientBufferPrivate::buffer_destroy_callback); in libwayland 1.21
 * that is an external reference, and `shm_pool_resize` defers ("if (pool->external_refcount
 * == 0) shm_pool_finish_resize(pool)"). Until the resize finishes, `shm_pool_create_buffer`
 * checks the old `pool->size`: a buffer placed in the grown part is
 * `wl_shm.invalid_stride "invalid width, height or stride"`. weston 10 keeps nothing of a
 * destroyed buffer, so the same program gets no error. A protocol answer, no pixel and no
 * timing: every request is dispatched in order, and the reference is taken when the destroy
 * is (the buffer was committed before it).
 *
 * Measured: sway 4 of 4, cage 2 of 2, kwin 6 of 6 invalid_stride; weston 2 of 2 none;
 * without the destroy, no error on sway or kwin (docs/real-compositors.md). The model's
 * `wlroots-0.15` agrees, and so does `kwin-5.27` since compositor/pools.ts takes the external
 * reference for a destroyed buffer kept as `savedData` too (it first did not: this test found
 * it).
 */
import { describe, expect, it } from "vitest";
import type { RealFuzzCase } from "../lab/fuzz/real.ts";
import { getReal } from "../real/index.ts";
import { resizeWhileKept } from "./claim-programs.ts";
import { runOnInstalled, waylandSkipReason } from "./real-helpers.ts";

const CASE: RealFuzzCase = {
  seed: 6,
  frames: 4,
  honest: 1,
  timeoutMs: 6000,
  actions: resizeWhileKept(true),
};

const onReal = (kind: "sway" | "weston" | "kwin") => runOnInstalled(kind, CASE);

const skips = {
  sway: await waylandSkipReason(getReal("sway"), "deferred resize on sway"),
  weston: await waylandSkipReason(getReal("weston"), "deferred resize on weston"),
  kwin: await waylandSkipReason(getReal("kwin"), "deferred resize on kwin"),
};

describe("a resize while a destroyed buffer is kept", () => {
  it.skipIf(skips.sway !== "")(
    "sway 1.7 (wlroots 0.15) defers it: the grown part is refused, as the model says",
    async () => {
      const { policy, r } = await onReal("sway");
      expect(policy).toBe("wlroots-0.15");
      expect(r.real.cell).toBe("invalid_stride");
      const hostile = r.observation.clients.at(-1)!;
      expect(hostile.protocolError?.message).toBe("invalid width, height or stride (48x48, 192)");
      expect(r.model.cell).toBe("invalid_stride");
    },
  );

  it.skipIf(skips.weston !== "")(
    "weston 10 keeps nothing of a destroyed buffer: no deferral, no error, as the model says",
    async () => {
      const { r } = await onReal("weston");
      expect(r.real.cell).toBe("no effect seen");
      expect(r.model.cell).toBe("no effect seen");
    },
  );

  it.skipIf(skips.kwin !== "")(
    "kwin 5.27 defers it too (wl_shm_buffer_ref_pool in buffer_destroy_callback)",
    async () => {
      const { r } = await onReal("kwin");
      expect(r.real.cell).toBe("invalid_stride");
      expect(r.model.cell).toBe("invalid_stride");
      expect(r.observation.clients.at(-1)!.protocolError?.message).toBe(
        "invalid width, height or stride (48x48, 192)",
      );
    },
  );
});
