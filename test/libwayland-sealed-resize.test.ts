/**
 * A one-client crash of every compositor on libwayland's wl_shm, found by the blind fuzzer
 * (issue 15, libwayland, seed 1, case 36,318) and confirmed on the installed weston:
 *
 *   memfd (4 KiB, MFD_ALLOW_SEALING) → F_SEAL_SHRINK|F_SEAL_GROW → create_pool(4096) →
 *   resize(8192) → create_buffer reaching into the second page → attach, commit.
 *
 * wayland src/wayland-shm.c shm_create_pool decides once, "if ((seals & F_SEAL_SHRINK) &&
 * fstat(fd, &statbuf) >= 0) pool->sigbus_is_impossible = statbuf.st_size >= size;" and
 * shm_pool_resize never revisits it (1.21.0 and the current main alike). The resized pool
 * maps a page past the file's end; wl_shm_buffer_begin_access returns early ("if
 * (pool->sigbus_is_impossible) return;"), so the read of that page raises a SIGBUS no
 * handler claims. The finding sealed right after sending create_pool, which on the real weston
 * is a race (the seal must land before weston dispatches the request: it gave invalid_fd
 * once in four runs under load); sealed first, as here, it is not.
 */
import { describe, expect, it } from "vitest";
import { getPolicy } from "../compositor/policies/index.ts";
import type { Action } from "../lab/fuzz/actions.ts";
import { CASE_DEFAULTS, runCase } from "../lab/fuzz/case.ts";
import { getReal } from "../real/index.ts";
import { runOnWeston, waylandSkipReason } from "./real-helpers.ts";

const F_SEAL_SHRINK = 0x2;
const F_SEAL_GROW = 0x4;

const program = (seals: number): Action[] => [
  { k: "memfd", size: 4096, sealing: true },
  { k: "seal", f: 0, seals },
  { k: "surface" },
  { k: "create-pool", f: 0, size: "file" },
  { k: "resize", p: 0, size: "pool+page" },
  { k: "create-buffer", p: 0, offset: 0, width: 48, height: 16, stride: 384, format: 1 },
  { k: "attach", s: 0, b: 0, commit: true },
];

const model = (policy: string, seals: number) =>
  runCase(
    {
      ...CASE_DEFAULTS,
      seed: 36318,
      policy,
      frames: 1,
      honest: 0,
      program: { clients: [program(seals)] },
    },
    getPolicy(policy),
  );

describe("libwayland's sigbus_is_impossible outlives a resize", () => {
  for (const policy of ["libwayland", "libwayland-1.21", "weston-10"]) {
    it(`${policy}: sealed at create_pool, grown past the file: the compositor dies of SIGBUS`, () => {
      const r = model(policy, F_SEAL_SHRINK | F_SEAL_GROW);
      expect(r.failure?.invariant).toBe("compositor-alive");
      // The page past the file is the pool being read's own: the handler was skipped, not
      // outrun (sigbus_handler would re-raise an address outside current_pool too).
      expect(r.failure?.place).toBe("SIGBUS (unhandled) in the pool being read");
    });
  }
  it("without F_SEAL_SHRINK the handler is armed: the same read is caught, the compositor lives", () => {
    const r = model("libwayland", F_SEAL_GROW);
    expect(r.failure?.invariant).not.toBe("compositor-alive");
    expect(r.log.some((e) => e.what === "killed")).toBe(false);
  });
});

const skip = await waylandSkipReason(getReal("weston"), "sealed-resize on the real weston");

describe.skipIf(skip !== "")("the real weston (libwayland's wl_shm)", () => {
  it("dies of SIGBUS on the same program, as its model does", async () => {
    const r = await runOnWeston({
      seed: 36318,
      frames: 1,
      honest: 0,
      timeoutMs: 3000,
      actions: program(F_SEAL_SHRINK | F_SEAL_GROW),
    });
    expect(r.real.verdict).toBe("died");
    expect(r.real.cell).toBe("DIED SIGBUS");
    expect(r.model.verdict).toBe("died");
  });
});
