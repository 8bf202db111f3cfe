/**
 * docs/fuzz.md finding 5: a stride lie whose last row runs into a neighbouring pool with a
 * truncated file kills a libwayland compositor with SIGBUS — the same signal and reason as
 * finding 3 (a sealed pool grown past its file), another cause and another fix. Here the
 * fault is in *another* pool's mapping: libwayland's sigbus_handler re-raises ("if (...
 * (char *) info->si_addr < pool->data || (char *) info->si_addr >= pool->data +
 * pool->size) reraise_sigbus();", wayland src/wayland-shm.c), and the fix would be
 * shm_pool_create_buffer's stride check (it compares the stride with the width in pixels,
 * "if (... stride < width ...)", not with width × bytes per pixel).
 *
 * Linux maps the two pools adjacent and top-down (unmapped_area_topdown): the pool created
 * first lies just above the one created second, so the liar's buffer lives in the second.
 * On the installed weston 10 the two 4 KiB pools land in one hole of its address space,
 * the first just above the second (/proc/<pid>/maps, docs/fuzz.md finding 5).
 */
import { describe, expect, it } from "vitest";
import { getPolicy } from "../compositor/policies/index.ts";
import type { Action } from "../lab/fuzz/actions.ts";
import { CASE_DEFAULTS, runCase } from "../lab/fuzz/case.ts";
import { getReal } from "../real/index.ts";
import { runOnWeston, waylandSkipReason } from "./real-helpers.ts";

/** Two pools of 4 KiB; the buffer in the second has a stride in pixels; `cut` is truncated. */
const program = (cut: number | null): Action[] => [
  { k: "memfd", size: 4096, sealing: false },
  { k: "memfd", size: 4096, sealing: false },
  { k: "surface" },
  { k: "create-pool", f: 0, size: "file" },
  { k: "create-pool", f: 1, size: "file" },
  { k: "create-buffer", p: 1, offset: 0, width: 64, height: 32, stride: 128, format: 1 },
  ...(cut === null ? [] : [{ k: "truncate", f: cut, size: 0 } as Action]),
  { k: "attach", s: 0, b: 0, commit: true },
];

const model = (policy: string, cut: number | null, honest = 0) =>
  runCase(
    {
      ...CASE_DEFAULTS,
      seed: 6,
      policy,
      frames: 2,
      honest,
      program: { clients: [program(cut)] },
    },
    getPolicy(policy),
  );

describe("a stride lie into a neighbour's truncated pool", () => {
  for (const policy of ["libwayland", "libwayland-1.21", "weston-10"])
    it(`${policy}: dies of SIGBUS in another pool (the handler re-raises)`, () => {
      const r = model(policy, 0);
      expect(r.failure?.invariant).toBe("compositor-alive");
      expect(r.failure?.place).toBe("SIGBUS (unhandled) in another pool");
    });

  it("beside the default honest bystanders too", () => {
    expect(model("libwayland", 0, 2).failure?.place).toBe("SIGBUS (unhandled) in another pool");
  });

  it("the neighbour untruncated: the overread reads its bytes, nobody dies", () => {
    const r = model("libwayland", null);
    expect(r.record?.compositor.alive).toBe(true);
  });

  it("the liar's own file truncated instead: the fault is in the pool being read, caught", () => {
    const r = model("libwayland", 1);
    expect(r.record?.compositor.alive).toBe(true);
    // libwayland's handler zero-fills the pool; end_access posts invalid_fd.
    expect(r.record?.clients.find((c) => !c.honest)?.protocolError?.error).toBe(
      "wl_shm.invalid_fd",
    );
  });

  it("wlroots checks the stride against width × 4 and refuses the buffer", () => {
    const r = model("wlroots", 0);
    expect(r.record?.compositor.alive).toBe(true);
    const liar = r.record?.clients.find((c) => !c.honest);
    expect(liar?.protocolError?.error).toBe("wl_shm.invalid_stride");
  });
});

const skip = await waylandSkipReason(getReal("weston"), "stride-lie neighbour on the real weston");

describe.skipIf(skip !== "")("the real weston (libwayland's wl_shm)", () => {
  it("dies of SIGBUS on the same program, as its model does", async () => {
    const r = await runOnWeston({
      seed: 6,
      frames: 2,
      honest: 0,
      timeoutMs: 3000,
      actions: program(0),
    });
    expect(r.model.verdict).toBe("died");
    expect(r.real.verdict).toBe("died");
    expect(r.real.cell).toBe("DIED SIGBUS");
  });
});
