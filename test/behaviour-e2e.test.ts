/**
 * Every behaviour end to end against the `libwayland` policy, beside an honest client whose
 * every pixel is checked, with the effect the attack has on libwayland asserted. Expected
 * outcomes follow wayland src/wayland-shm.c as docs/policy-sources.md §1 and §6 transcribe
 * it (WLCS and weston expectations named per case).
 */
import { describe, expect, it } from "vitest";
import { behaviourNames, getBehaviour } from "../client/behaviours/index.ts";
import { GARBAGE_KINDS } from "../client/behaviours/protocol-garbage.ts";
import { checkHonest, connectLocalClient, type LocalClient, runLocal } from "../client/local.ts";
import { allCorrect } from "../client/pattern.ts";
import { Compositor } from "../compositor/compositor.ts";
import { DISPLAY_ERROR, SHM_ERROR } from "../protocol/schema.ts";
import type { Scheduler } from "../shm/kernel.ts";
import { Kernel } from "../shm/kernel.ts";
import type { Process } from "../shm/process.ts";

interface Outcome {
  comp: Compositor;
  honest: LocalClient;
  bad: LocalClient;
}

async function run(
  name: string,
  params: Record<string, number | string | boolean> = {},
  opts: { maxTicks?: number; kernel?: Kernel; seed?: number } = {},
): Promise<Outcome> {
  const comp = new Compositor({
    kernel: opts.kernel ?? new Kernel(),
    policy: "libwayland",
    width: 256,
    height: 256,
  });
  const seed = opts.seed ?? 17;
  const honest = connectLocalClient(comp, getBehaviour("honest-renderer"), {
    seed,
    index: 0,
    params: { frames: 6 },
  });
  const bad = connectLocalClient(comp, getBehaviour(name), { seed, index: 1, params });
  await runLocal(comp, [honest, bad], { maxTicks: opts.maxTicks ?? 200 });
  return { comp, honest, bad };
}

/** The compositor lives on and the honest client saw exactly its last frame. */
function assertContained(o: Outcome, lastFrame = 5): void {
  expect(o.comp.alive).toBe(true);
  expect(o.honest.runtime.report()).toMatchObject({ protocolError: null });
  expect(o.honest.runtime.state).not.toBe("dead");
  const h = checkHonest(o.comp, o.honest, [1]);
  if (lastFrame >= 0) expect(h.frame).toBe(lastFrame);
  expect(h.counts && allCorrect(h.counts)).toBe(true);
}

function errorOf(o: Outcome) {
  return o.bad.runtime.report().protocolError;
}

function bufferError(o: Outcome): void {
  // wl_shm_buffer_end_access: wl_resource_post_error(buffer->resource, WL_SHM_ERROR_INVALID_FD,
  // "error accessing SHM buffer") after the handler mapped zeros over the pool.
  const e = errorOf(o)!;
  expect(e).toMatchObject({ code: SHM_ERROR.invalid_fd, message: "error accessing SHM buffer" });
  expect(o.bad.client.buffers.has(e.objectId)).toBe(true);
  expect(o.comp.stats().sigbus).toBeGreaterThanOrEqual(1);
}

function iface(o: Outcome, objectId: number): string | undefined {
  return o.bad.client.proto.objects.lookup(objectId)?.interface;
}

describe("every behaviour against libwayland", () => {
  it("covers every built-in behaviour in this file", () => {
    const tested = new Set(TESTED);
    expect(behaviourNames().filter((n) => !tested.has(n))).toEqual([]);
  });

  it("honest-renderer: every frame of two honest clients lands exactly", async () => {
    const comp = new Compositor({
      kernel: new Kernel(),
      policy: "libwayland",
      width: 256,
      height: 256,
    });
    const a = connectLocalClient(comp, getBehaviour("honest-renderer"), {
      seed: 3,
      index: 0,
      params: { frames: 0 },
    });
    const b = connectLocalClient(comp, getBehaviour("honest-renderer"), {
      seed: 3,
      index: 1,
      params: { frames: 0, seal: true, width: 48, height: 40 },
    });
    let checked = 0;
    await runLocal(comp, [a, b], {
      maxTicks: 30,
      afterFrame: () => {
        for (const [c, other] of [
          [a, 1],
          [b, 0],
        ] as const) {
          const h = checkHonest(comp, c, [other]);
          if (!h.counts) continue;
          expect(h.counts.correct).toBe(h.counts.total);
          checked++;
        }
      },
    });
    expect(checked).toBeGreaterThan(40);
    expect(a.client.commitCount).toBeGreaterThan(20);
    expect(comp.stats().sigbus).toBe(0);
  });

  it("truncate-after-commit: invalid_fd on the wl_buffer (weston bad-buffer-test, WLCS)", async () => {
    const o = await run("truncate-after-commit");
    assertContained(o);
    bufferError(o);
    expect(iface(o, errorOf(o)!.objectId)).toBe("wl_buffer");
  });

  it("truncate-outside-damage: libwayland reads whole buffers, so the truncated rows fault: invalid_fd", async () => {
    const o = await run("truncate-outside-damage");
    assertContained(o);
    bufferError(o);
  });

  it("shown-then-truncated: the first frame is shown, the second read faults: invalid_fd", async () => {
    const o = await run("shown-then-truncated");
    assertContained(o);
    bufferError(o);
    expect(o.bad.client.commitCount).toBe(2);
  });

  it("pool-larger-than-file: the read past EOF is caught, invalid_fd on the wl_buffer", async () => {
    const o = await run("pool-larger-than-file");
    assertContained(o);
    bufferError(o);
  });

  it("zero-length-file: invalid_fd on the wl_buffer (no panic as in Smithay #834)", async () => {
    const o = await run("zero-length-file");
    assertContained(o);
    bufferError(o);
  });

  it("huge-pool: INT32_MAX pool on one page, the read is caught", async () => {
    const o = await run("huge-pool");
    assertContained(o);
    bufferError(o);
  });

  it("fork-child-truncates: the child's truncation is caught on the parent's buffer", async () => {
    const o = await run("fork-child-truncates");
    assertContained(o);
    bufferError(o);
  });

  it("destroy-buffer-then-shrink: the destroyed buffer is never read, nothing faults", async () => {
    const o = await run("destroy-buffer-then-shrink");
    assertContained(o);
    expect(errorOf(o)).toBeNull();
    expect(o.comp.stats().sigbus).toBe(0);
    expect(o.comp.placements().some((p) => p.clientId === o.bad.remote.id)).toBe(false);
  });

  it("shrink-regrow: with every regrowth redrawn before the read, the last frame shows", async () => {
    const o = await run("shrink-regrow");
    assertContained(o);
    expect(errorOf(o)).toBeNull();
    const h = checkHonest(o.comp, o.bad, [0]);
    expect(h.frame).toBe(5);
    expect(h.counts && allCorrect(h.counts)).toBe(true);
  });

  it("memory-pressure: the truncated commit gets invalid_fd on the wl_buffer; no lab, no pressure", async () => {
    const o = await run("memory-pressure");
    assertContained(o);
    const e = errorOf(o)!;
    expect(e).toMatchObject({ code: SHM_ERROR.invalid_fd, message: "error accessing SHM buffer" });
    expect(iface(o, e.objectId)).toBe("wl_buffer");
    // Memory pressure is the run's event (lab/run.ts); a client run on its own has none.
    expect(o.bad.client.notes).toEqual(["pool file truncated to 0 under the committed buffer"]);
  });

  it("punch-holes: no signal, no error, and the punched pages show as zeros", async () => {
    const o = await run("punch-holes");
    assertContained(o);
    expect(errorOf(o)).toBeNull();
    expect(o.comp.stats().sigbus).toBe(0);
    const h = checkHonest(o.comp, o.bad, [0]);
    // 64x64 XRGB: 4 pages; pages 1 and 2 punched = 2048 pixels of zeros.
    expect(h.counts).toMatchObject({ zero: 2048, correct: 2048 });
  });

  it("seal-then-play: shrinking is EPERM after the seal, growing works, resize smaller is refused", async () => {
    const o = await run("seal-then-play");
    assertContained(o);
    expect(o.bad.client.notes).toEqual(["ftruncate:EPERM", "ftruncate:EPERM", "ftruncate:ok"]);
    const e = errorOf(o)!;
    expect(e).toMatchObject({ code: SHM_ERROR.invalid_fd, message: "shrinking pool invalid" });
    expect(iface(o, e.objectId)).toBe("wl_shm_pool");
    expect(o.comp.stats().sigbus).toBe(0);
  });

  it("seal-then-play (grow and resize only): the frame in the grown part is correct", async () => {
    const o = await run("seal-then-play", { order: "seal-grow-resize" });
    assertContained(o);
    expect(errorOf(o)).toBeNull();
    const h = checkHonest(o.comp, o.bad, [0]);
    expect(h.counts && allCorrect(h.counts)).toBe(true);
  });

  it("resize-pool-smaller: wl_shm.invalid_fd 'shrinking pool invalid' on the pool", async () => {
    const o = await run("resize-pool-smaller");
    assertContained(o);
    const e = errorOf(o)!;
    expect(e).toMatchObject({ code: SHM_ERROR.invalid_fd, message: "shrinking pool invalid" });
    expect(iface(o, e.objectId)).toBe("wl_shm_pool");
  });

  it("stride-in-pixels: accepted by libwayland (WLCS client_lies_about_buffer_size), garbage shown", async () => {
    const o = await run("stride-in-pixels");
    assertContained(o);
    expect(errorOf(o)).toBeNull();
    const h = checkHonest(o.comp, o.bad, [0]);
    expect(h.counts!.other).toBeGreaterThan(0);
    expect(allCorrect(h.counts!)).toBe(false);
  });

  it("stride-overflow: invalid_stride on the pool", async () => {
    const o = await run("stride-overflow");
    assertContained(o);
    expect(errorOf(o)).toMatchObject({ code: SHM_ERROR.invalid_stride });
    expect(iface(o, errorOf(o)!.objectId)).toBe("wl_shm_pool");
  });

  it("offset-past-end: invalid_stride on the pool (WLCS create_buffer_exceeding_pool_size)", async () => {
    const o = await run("offset-past-end");
    assertContained(o);
    expect(errorOf(o)).toMatchObject({ code: SHM_ERROR.invalid_stride });
    expect(iface(o, errorOf(o)!.objectId)).toBe("wl_shm_pool");
  });

  it("negative-size: create_pool(-1) is invalid_stride on wl_shm (WLCS); a negative width too", async () => {
    const o = await run("negative-size");
    assertContained(o);
    expect(errorOf(o)).toMatchObject({
      code: SHM_ERROR.invalid_stride,
      message: "invalid size (-1)",
    });
    expect(iface(o, errorOf(o)!.objectId)).toBe("wl_shm");
    const w = await run("negative-size", { what: "width" });
    assertContained(w);
    expect(errorOf(w)).toMatchObject({ code: SHM_ERROR.invalid_stride });
  });

  it("unknown-format: invalid_format on the pool (WLCS create_buffer_with_unknown_format)", async () => {
    const o = await run("unknown-format");
    assertContained(o);
    expect(errorOf(o)).toMatchObject({ code: SHM_ERROR.invalid_format });
    expect(iface(o, errorOf(o)!.objectId)).toBe("wl_shm_pool");
  });

  it("pipe-fd: invalid_fd on wl_shm (WLCS create_pool_with_invalid_fd)", async () => {
    const o = await run("pipe-fd");
    assertContained(o);
    expect(errorOf(o)).toMatchObject({ code: SHM_ERROR.invalid_fd });
    expect(iface(o, errorOf(o)!.objectId)).toBe("wl_shm");
  });

  it("write-sealed-fd: the writable shared mmap is EPERM → invalid_fd on wl_shm", async () => {
    const o = await run("write-sealed-fd");
    assertContained(o);
    expect(errorOf(o)).toMatchObject({ code: SHM_ERROR.invalid_fd });
    expect(errorOf(o)!.message).toMatch(/failed mmap/);
  });

  it("flood-pools: 2000 pools are held, and all freed when the client goes", async () => {
    const o = await run("flood-pools");
    assertContained(o);
    expect(o.bad.client.notes).toEqual(["pools sent: 2000"]);
    expect(o.comp.poolCount).toBe(2001);
    o.bad.runtime.stop();
    await new Promise((r) => setTimeout(r, 5));
    expect(o.comp.poolCount).toBe(1);
  });

  it("flood-buffers: the per-client object limit ends it with no_memory", async () => {
    const o = await run("flood-buffers", {}, { maxTicks: 300 });
    assertContained(o);
    expect(errorOf(o)).toMatchObject({ code: DISPLAY_ERROR.no_memory });
    expect(o.bad.client.closed).toBe(true);
  });

  it("protocol-garbage (malformed-bytes): a cut message waits for its rest: no error, the client's later requests unanswered", async () => {
    // On a stream socket a cut message is one still arriving (libwayland waits for `size`
    // bytes): the real weston and sway post nothing (docs/real-compositors.md).
    const o = await run("protocol-garbage", { kind: "malformed-bytes" });
    assertContained(o);
    expect(errorOf(o)).toBeNull();
    expect(o.bad.remote.closed).toBe(false);
    expect(o.bad.runtime.report().waitingFor).toMatch(/sync|roundtrip|callback/);
  });

  for (const kind of GARBAGE_KINDS.filter((k) => k !== "malformed-bytes")) {
    it(`protocol-garbage (${kind}): one wl_display error, only for that client`, async () => {
      const o = await run("protocol-garbage", { kind });
      assertContained(o);
      const e = errorOf(o)!;
      expect(e.objectId).toBe(1);
      expect(e.code).toBe(
        kind === "dead-object" || kind === "destroyed-object"
          ? DISPLAY_ERROR.invalid_object
          : DISPLAY_ERROR.invalid_method,
      );
    });
  }

  for (const mode of ["after-commit", "half-frame", "exit"]) {
    it(`disconnect-mid-request (${mode}): the client's pools are freed, others go on`, async () => {
      const o = await run("disconnect-mid-request", { mode });
      assertContained(o);
      expect(o.bad.client.closed).toBe(true);
      expect(o.bad.remote.closed).toBe(true);
      expect(o.comp.poolCount).toBe(1);
    });
  }

  it("worker-throws (on the lab's thread): dead with the reason, its client freed", async () => {
    const o = await run("worker-throws");
    assertContained(o);
    expect(o.bad.runtime.report()).toMatchObject({ state: "dead" });
    expect(o.bad.runtime.reason).toMatch(/deliberate crash/);
    expect(o.bad.remote.closed).toBe(true);
    expect(o.comp.poolCount).toBe(1);
    expect(o.bad.client.process.alive).toBe(false);
  });

  it("worker-exits (on the lab's thread): the simulated process exits, the client is freed", async () => {
    const o = await run("worker-exits");
    assertContained(o);
    expect(o.bad.runtime.state).toBe("dead");
    expect(o.bad.remote.closed).toBe(true);
    expect(o.comp.poolCount).toBe(1);
  });

  it("worker-hangs (on the lab's thread): waits forever without blocking anyone; stop() frees it", async () => {
    const o = await run("worker-hangs", {}, { maxTicks: 40 });
    assertContained(o);
    expect(o.bad.runtime.report()).toMatchObject({ state: "waiting", waitingFor: "forever" });
    expect(o.comp.poolCount).toBe(2);
    o.bad.runtime.stop("hung");
    await new Promise((r) => setTimeout(r, 5));
    expect(o.bad.remote.closed).toBe(true);
    expect(o.comp.poolCount).toBe(1);
  });

  it("resize-during-read: grows under the reader, frames stay correct, no error", async () => {
    const o = await runMidRead("resize-during-read", {});
    assertContained(o, -1);
    expect(errorOf(o)).toBeNull();
    expect(o.stepsInRead).toBeGreaterThan(0);
    const h = checkHonest(o.comp, o.bad, [0]);
    expect(h.counts && allCorrect(h.counts)).toBe(true);
  });

  it("truncate-during-read: the truncation lands between two pages of the compositor's read", async () => {
    const o = await runMidRead("truncate-during-read", { after: 2, rounds: 1 });
    assertContained(o, -1);
    expect(o.pagesBeforeTruncate).toBeGreaterThanOrEqual(2);
    expect(o.truncatedMidRead).toBe(true);
    bufferError(o);
  });
});

/**
 * Runs with a scheduler that steps the hostile client at every page the compositor loads
 * (a preemption point inside the compositor's read), as the lab's scheduler can. Until its
 * first commit the hostile client is stepped normally; from then on only inside reads. It
 * is connected first, so its surface is the first one read in a frame.
 */
async function runMidRead(name: string, params: Record<string, number | string | boolean>) {
  let comp: Compositor | undefined;
  let bad: LocalClient | undefined;
  let inStep = false;
  let stepsInRead = 0;
  let truncatedMidRead = false;
  let pagesBeforeTruncate = -1;
  let loadsThisFrame = 0;
  const ftruncates = (c: LocalClient) =>
    (c.client.sys as unknown as { proc: Process }).proc.counters.syscalls.ftruncate ?? 0;
  const sched: Scheduler = {
    point(p: Process, site: string) {
      if (!comp || !bad || inStep || p !== comp.proc || site !== "load") return;
      loadsThisFrame++;
      if (bad.runtime.finished || bad.client.commitCount === 0) return;
      inStep = true;
      try {
        const before = ftruncates(bad);
        bad.runtime.step();
        stepsInRead++;
        if (ftruncates(bad) > before && !truncatedMidRead) {
          truncatedMidRead = true;
          // This step ran at the point before page k of the frame's reads: k pages were read.
          pagesBeforeTruncate = loadsThisFrame - 1;
        }
      } finally {
        inStep = false;
      }
    },
    block() {},
  };
  const kernel = new Kernel({ scheduler: sched });
  comp = new Compositor({ kernel, policy: "libwayland", width: 256, height: 256 });
  bad = connectLocalClient(comp, getBehaviour(name), { seed: 17, index: 1, params });
  const honest = connectLocalClient(comp, getBehaviour("honest-renderer"), {
    seed: 17,
    index: 0,
    params: { frames: 0 },
  });
  const b = bad;
  const gated = Object.create(b.runtime) as typeof b.runtime;
  gated.step = () => (b.client.commitCount > 0 ? "waiting" : b.runtime.step());
  await runLocal(comp, [{ ...b, runtime: gated }, honest], {
    maxTicks: 40,
    stepsPerTick: 4,
    afterFrame: () => {
      loadsThisFrame = 0;
    },
  });
  return { comp, honest, bad, stepsInRead, truncatedMidRead, pagesBeforeTruncate };
}

const TESTED = [
  "honest-renderer",
  "truncate-after-commit",
  "truncate-during-read",
  "pool-larger-than-file",
  "zero-length-file",
  "destroy-buffer-then-shrink",
  "shrink-regrow",
  "memory-pressure",
  "punch-holes",
  "seal-then-play",
  "resize-pool-smaller",
  "resize-during-read",
  "stride-in-pixels",
  "stride-overflow",
  "offset-past-end",
  "negative-size",
  "unknown-format",
  "fork-child-truncates",
  "pipe-fd",
  "write-sealed-fd",
  "flood-pools",
  "flood-buffers",
  "huge-pool",
  "protocol-garbage",
  "disconnect-mid-request",
  "worker-throws",
  "worker-exits",
  "worker-hangs",
  "truncate-outside-damage",
  "shown-then-truncated",
];
