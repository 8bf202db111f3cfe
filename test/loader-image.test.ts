/**
 * The loader's mapping every simulated process has above MMAP_BASE (shm/loader-image.ts):
 * where it lies, what a read past the topmost mapping gets, and what a process may do to
 * it. The host side is scenarios/placement/read-past-topmost-mapping (test/kernel-scenarios).
 */
import { describe, expect, it } from "vitest";
import { getPolicy } from "../compositor/policies/index.ts";
import type { FuzzCase } from "../lab/fuzz/case.ts";
import { runCase } from "../lab/fuzz/case.ts";
import { MMAP_BASE, MMAP_CEILING } from "../shm/address-space.ts";
import { LOADER_DATA_SIZE, LOADER_DATA_START } from "../shm/loader-image.ts";
import { MAP, PROT } from "../shm/uapi.ts";
import { PG, RW, setup, sharedPool } from "./helpers.ts";

describe("the loader's mapping above MMAP_BASE", () => {
  it("a fresh process has exactly it: 8 KiB of private anonymous rw-p memory at MMAP_BASE", () => {
    const { a } = setup();
    expect(a.mm.vmas.map((v) => [v.start, v.end, v.prot])).toEqual([
      [MMAP_BASE, MMAP_BASE + 2 * PG, RW],
    ]);
    expect(LOADER_DATA_START).toBe(MMAP_BASE);
    expect(LOADER_DATA_SIZE).toBe(MMAP_CEILING - MMAP_BASE);
    const v = a.mm.find(MMAP_BASE)!;
    expect(v.flags.anonymous && !v.flags.shared && v.file === undefined).toBe(true);
  });

  it("the first mmap ends where it starts, and a read past that mapping reads its zeros", () => {
    const { a } = setup();
    const [, m] = sharedPool(a, PG);
    expect(m + PG).toBe(MMAP_BASE);
    a.fill(m, PG, 0x5a);
    expect(a.load(m + PG - 2, 4)).toEqual(new Uint8Array([0x5a, 0x5a, 0, 0]));
    // Kernel accesses too: write(2) from across the end copies every byte (no EFAULT).
    const [, w] = a.pipe();
    expect(a.write(w, m + PG - 1, 1 + LOADER_DATA_SIZE)).toBe(1 + LOADER_DATA_SIZE);
    expect(a.alive).toBe(true);
  });

  it("nothing is mapped above it: a read running past MMAP_CEILING is SIGSEGV there", () => {
    const { a } = setup();
    const [, m] = sharedPool(a, PG);
    expect(() => a.load(m, PG + LOADER_DATA_SIZE + 1)).toThrow();
    expect(a.killedBy?.signal).toBe("SIGSEGV");
    expect(a.killedBy?.info).toEqual({ signo: "SIGSEGV", code: "SEGV_MAPERR", addr: MMAP_CEILING });
  });

  it("fork copies it, and a private anonymous rw mapping made below it joins it (as on the host)", () => {
    const { a } = setup();
    const child = a.fork("child");
    expect(child.mm.vmas.map((v) => [v.start, v.end])).toEqual([[MMAP_BASE, MMAP_CEILING]]);
    const m = a.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    expect(m + PG).toBe(MMAP_BASE);
    expect(a.mm.vmas.map((v) => [v.start, v.end])).toEqual([[m, MMAP_CEILING]]);
  });

  it("is an ordinary VMA: munmap frees it, and the next mmap takes the top of the freed range", () => {
    const { a } = setup();
    const [, m] = sharedPool(a, PG);
    a.munmap(LOADER_DATA_START, LOADER_DATA_SIZE);
    expect(a.mm.vmas.map((v) => v.start)).toEqual([m]);
    expect(() => a.load(m + PG, 1)).toThrow();
    expect(a.killedBy?.signal).toBe("SIGSEGV");
    const { a: b } = setup();
    b.munmap(LOADER_DATA_START, LOADER_DATA_SIZE);
    expect(b.mmap(0, PG, PROT.PROT_READ, MAP.MAP_SHARED | MAP.MAP_ANONYMOUS)).toBe(
      MMAP_CEILING - PG,
    );
    // MAP_FIXED over it replaces it, as over any mapping.
    const { a: c } = setup();
    const f = c.mmap(
      MMAP_BASE,
      PG,
      PROT.PROT_READ,
      MAP.MAP_SHARED | MAP.MAP_ANONYMOUS | MAP.MAP_FIXED,
    );
    expect(f).toBe(MMAP_BASE);
    expect(c.mm.vmas.map((v) => [v.start, v.end, v.prot])).toEqual([
      [MMAP_BASE, MMAP_BASE + PG, PROT.PROT_READ],
      [MMAP_BASE + PG, MMAP_CEILING, RW],
    ]);
  });
});

describe("what it changes for a compositor: the lone stride lie (docs/fuzz.md, finding 4)", () => {
  // create_buffer(0, 64, 32, 128, XRGB8888) on a one-page pool: libwayland checks the stride
  // against the width, not width × 4, so the last row reads 128 bytes past the pool, which is
  // the compositor's topmost mapping when no other client mapped a pool before it.
  const lone = (policy: string): FuzzCase => ({
    seed: 6,
    policy,
    variant: "standard",
    kernelFeatures: [],
    frames: 1,
    honest: 0,
    preempt: 0.3,
    program: {
      clients: [
        [
          { k: "memfd", size: 4096, sealing: true },
          { k: "surface" },
          { k: "create-pool", f: 0, size: "file" },
          { k: "create-buffer", p: 0, offset: 0, width: 64, height: 32, stride: 128, format: 1 },
          { k: "attach", s: 0, b: 0, commit: true },
        ],
      ],
    },
  });
  it.each(["libwayland", "weston-10", "kwin"])(
    "%s reads the loader's memory past the pool and lives, as real weston 10 does",
    (policy) => {
      const r = runCase(lone(policy), getPolicy(policy));
      expect(r.failure).toBeNull();
    },
  );
});
