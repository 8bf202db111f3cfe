/**
 * `kwin-5.27` (KWin 5.27's KWaylandServer ShmClientBuffer over libwayland 1.21's wl_shm):
 * two rules measured on kwin_wayland 5.27.5 (test/real-deferred-resize.test.ts,
 * test/real-kwin-stride-lie.test.ts), run here on the model with the same programs.
 *
 * - ShmClientBufferPrivate::buffer_destroy_callback keeps the pool with
 *   `wl_shm_buffer_ref_pool`, an external reference in libwayland 1.21, so
 *   `shm_pool_resize` defers ("if (pool->external_refcount == 0)
 *   shm_pool_finish_resize(pool)") and `shm_pool_create_buffer` checks the old size until
 *   the surface moves on (compositor/pools.ts keepsByRefPool).
 * - ShmClientBuffer::data() sets `s_accessedBuffer`, counts and begins an access, then
 *   returns a QImage that Qt refuses when bytesPerLine < width × 4 (a null image): the
 *   buffer is never read, the cleanup that would end the access never runs, and every other
 *   buffer's data() is `QImage()` from then on (compositor/policies/kwin-5-27.ts).
 */
import { describe, expect, it } from "vitest";
import { behaviourNames, registerBehaviour } from "../client/behaviours/index.ts";
import type { Action } from "../lab/fuzz/actions.ts";
import { actionBehaviour, FUZZ_BEHAVIOUR_NAME } from "../lab/fuzz/behaviour.ts";
import { runModelWithFacts } from "../lab/real-run.ts";
import { makeSpec } from "../lab/run.ts";
import { resizeWhileKept, strideThenCutBuffer } from "./claim-programs.ts";

if (!behaviourNames().includes(FUZZ_BEHAVIOUR_NAME)) registerBehaviour(actionBehaviour(undefined));

function run(policy: string, actions: Action[], frames: number, honest: number) {
  const spec = makeSpec({
    policy,
    behaviour: FUZZ_BEHAVIOUR_NAME,
    seed: 6,
    frames,
    honest,
    params: { actions: JSON.stringify(actions) },
  });
  const { record, facts } = runModelWithFacts(spec);
  return { record, facts, hostile: record.clients[record.clients.length - 1] };
}

const REFUSED = "invalid width, height or stride (48x48, 192)";

describe("kwin-5.27: a destroyed buffer kept on screen holds its pool (wl_shm_buffer_ref_pool)", () => {
  it("the resize waits: a buffer in the grown part is invalid_stride (kwin_wayland 5.27.5: 6 of 6)", () => {
    const { hostile } = run("kwin-5.27", resizeWhileKept(true), 4, 1);
    expect(hostile.protocolError).toMatchObject({
      error: "wl_shm.invalid_stride",
      message: REFUSED,
    });
  });

  it("control: without the destroy the live buffer holds no external reference, no error", () => {
    const { hostile } = run("kwin-5.27", resizeWhileKept(false), 4, 1);
    expect(hostile.protocolError).toBeNull();
  });

  it("the reference ends when the surface moves on: a new buffer shown, then the grown part is accepted (real: 2 of 2)", () => {
    const movedOn: Action[] = [
      { k: "create-buffer", p: 0, offset: 0, width: 48, height: 48, stride: 192, format: 1 },
      { k: "attach", s: 0, b: 1, commit: true },
      { k: "frame", s: 0 },
      { k: "frame", s: 0 },
      { k: "roundtrip" },
    ];
    const program = resizeWhileKept(true, movedOn).map((a) =>
      a.k === "attach" && a.s === 1 ? { ...a, b: 2 } : a,
    );
    const { hostile } = run("kwin-5.27", program, 8, 1);
    expect(hostile.protocolError).toBeNull();
    expect(hostile.closedBy).toBeNull();
  });

  it("the other keepers over libwayland agree with their real compositors", () => {
    // wlroots 0.15 (sway 4 of 4, cage 2 of 2) refs the pool too; weston 10 keeps nothing
    // (2 of 2); libwayland >= 1.24's wl_shm_buffer_ref counts the buffer, not the pool
    // (9367c4d), and KWin 6's own wl_shm defers nothing.
    expect(run("wlroots-0.15", resizeWhileKept(true), 4, 1).hostile.protocolError).toMatchObject({
      error: "wl_shm.invalid_stride",
      message: REFUSED,
    });
    for (const p of ["weston-10", "libwayland-kept-buffer", "kwin", "libwayland-1.21"])
      expect(run(p, resizeWhileKept(true), 4, 1).hostile.protocolError, p).toBeNull();
  });
});

describe("kwin-5.27: a stride below width × 4 is a null QImage, and its access is never ended", () => {
  it("control: after an honest buffer (stride 256) the cut buffer is read: invalid_fd (real 6 of 6)", () => {
    const { hostile } = run("kwin-5.27", strideThenCutBuffer(256), 8, 0);
    expect(hostile.protocolError).toMatchObject({ error: "wl_shm.invalid_fd" });
  });

  it("after a stride liar (128 < 64 × 4) the cut buffer is never read: no error, compositor alive (real 6 of 6)", () => {
    const { record, hostile } = run("kwin-5.27", strideThenCutBuffer(128), 8, 0);
    expect(record.compositor.alive).toBe(true);
    expect(hostile.protocolError).toBeNull();
    expect(hostile.commits).toBe(2);
    expect(record.cell).toBe("no effect seen");
  });

  it("libwayland 1.21 alone (no Qt image) reads both: invalid_fd after the liar too", () => {
    expect(
      run("libwayland-1.21", strideThenCutBuffer(128), 8, 0).hostile.protocolError,
    ).toMatchObject({
      error: "wl_shm.invalid_fd",
    });
  });

  it("a liar destroyed before its first read is savedData's null image with no access: later buffers are read", () => {
    const { hostile } = run("kwin-5.27", strideThenCutBuffer(128, true), 8, 0);
    expect(hostile.protocolError).toMatchObject({ error: "wl_shm.invalid_fd" });
  });
});

/** Surface 0 shows an honest buffer for two frames, then a buffer at `stride`. */
const liarLater = (stride: number): Action[] => [
  { k: "memfd", size: 16384, sealing: false },
  { k: "surface" },
  { k: "create-pool", f: 0, size: "file" },
  { k: "create-buffer", p: 0, offset: 0, width: 64, height: 16, stride: 256, format: 1 },
  { k: "attach", s: 0, b: 0, commit: true },
  { k: "frame", s: 0 },
  { k: "frame", s: 0 },
  { k: "create-buffer", p: 0, offset: 4096, width: 64, height: 16, stride, format: 1 },
  { k: "attach", s: 0, b: 1, commit: true },
  { k: "frame", s: 0 },
];

describe("kwin-5.27: after a stride lie no shm window of any client is updated", () => {
  it("the honest bystanders' later frames are never uploaded: they show stale frames", () => {
    const { record, facts } = run("kwin-5.27", liarLater(128), 12, 2);
    const honest = facts.clients.filter((c) => c.honest);
    expect(honest).toHaveLength(2);
    for (const c of honest) expect(c.pixels, c.label).toBe("stale");
    expect(record.verdict).toBe("honest-harmed");
  });

  it("control: the same program with an honest second buffer leaves them correct", () => {
    const { facts } = run("kwin-5.27", liarLater(256), 12, 2);
    for (const c of facts.clients.filter((c) => c.honest))
      expect(c.pixels, c.label).toBe("correct");
  });
});
