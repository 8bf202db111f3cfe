/**
 * Where a fatal fault's address lay, against the buffer read in progress
 * (compositor/fault-place.ts): the class is in the compositor's death record and in the
 * death's fuzz signature, and it separates causes that the signal and the kernel's reason
 * alone put together. On libwayland both a handler skipped for the pool being read
 * (sigbus_is_impossible kept after a resize: docs/fuzz.md finding 3) and a read past its
 * pool into a neighbour's truncated file (sigbus_handler re-raises an si_addr outside
 * current_pool: finding 5) die of `SIGBUS (unhandled)`; their fixes are in two different
 * functions of wayland-shm.c.
 */
import { describe, expect, it } from "vitest";
import { FAULT_PLACES, faultPlace } from "../compositor/fault-place.ts";
import { getPolicy } from "../compositor/policies/index.ts";
import { wlroots } from "../compositor/policies/wlroots.ts";
import type { Policy, ShmPool } from "../compositor/policy.ts";
import type { Action } from "../lab/fuzz/actions.ts";
import { CASE_DEFAULTS, runCase } from "../lab/fuzz/case.ts";
import { MAP, PROT } from "../shm/uapi.ts";
import { faultsWhenIdle } from "./fixtures/policies/broken.ts";

const pool = (addr: number, size: number) => ({ addr, size }) as ShmPool;

describe("faultPlace", () => {
  const read = { start: 0x7000_0000, size: 0x2000 };
  const other = pool(0x7000_2000, 0x1000);
  const cases: [string, number, ReturnType<typeof faultPlace>][] = [
    ["address 0 (a call through SIG_DFL)", 0, "null"],
    ["the last byte of the first page", 0xfff, "null"],
    ["the first byte of the pool being read", 0x7000_0000, "own-pool"],
    ["its last byte", 0x7000_1fff, "own-pool"],
    ["the first byte past it, in the next pool", 0x7000_2000, "other-pool"],
    ["the last byte of the next pool", 0x7000_2fff, "other-pool"],
    ["past every pool", 0x7000_3000, "no-pool"],
    ["just below the pool being read", 0x6fff_ffff, "no-pool"],
    ["the second page", 0x1000, "no-pool"],
  ];
  it.each(cases)("%s: %s", (_what, addr, want) => {
    expect(faultPlace(addr, read, [other])).toBe(want);
  });
  it("no read in progress: no-read, wherever the address is (NULL still NULL)", () => {
    expect(faultPlace(0x7000_0000, null, [other])).toBe("no-read");
    expect(faultPlace(0x7000_2000, null, [other])).toBe("no-read");
    expect(faultPlace(8, null, [other])).toBe("null");
  });
  it("a pool that is not mapped (address 0: a copy policy) holds no address", () => {
    expect(faultPlace(0x2000, read, [pool(0, 0x10000)])).toBe("no-pool");
  });
});

const memfd = (sealing = false): Action => ({ k: "memfd", size: 4096, sealing });
/** A stride in pixels (64 × 4 = 256 bytes a row, stride 128): the last row runs 128 bytes past. */
const strideLie = (p: number): Action => ({
  k: "create-buffer",
  p,
  offset: 0,
  width: 64,
  height: 32,
  stride: 128,
  format: 1,
});
const attach: Action = { k: "attach", s: 0, b: 0, commit: true };

const programs: Record<string, Action[]> = {
  // docs/fuzz.md finding 3: sealed, grown past its file; the read reaches the page past EOF.
  "sealed pool grown past its file": [
    memfd(true),
    { k: "seal", f: 0, seals: 0x2 | 0x4 },
    { k: "surface" },
    { k: "create-pool", f: 0, size: "file" },
    { k: "resize", p: 0, size: "pool+page" },
    { k: "create-buffer", p: 0, offset: 0, width: 48, height: 16, stride: 384, format: 1 },
    attach,
  ],
  // Finding 5: two pools, mapped top-down and adjacent; the stride lie lives in the lower
  // one and its last row runs into the upper one, whose file was truncated to 0.
  "stride lie into a truncated neighbour": [
    memfd(),
    memfd(),
    { k: "surface" },
    { k: "create-pool", f: 0, size: "file" },
    { k: "create-pool", f: 1, size: "file" },
    strideLie(1),
    { k: "truncate", f: 0, size: 0 },
    attach,
  ],
  // The same, with the upper pool destroyed (unmapped) instead: the row runs into a hole.
  "stride lie into an unmapped hole": [
    memfd(),
    memfd(),
    { k: "surface" },
    { k: "create-pool", f: 0, size: "file" },
    { k: "create-pool", f: 1, size: "file" },
    strideLie(1),
    { k: "destroy-pool", p: 0 },
    attach,
  ],
  // The classic race: the client shrinks the file of the committed buffer.
  "file truncated under the committed buffer": [
    memfd(),
    { k: "surface" },
    { k: "create-pool", f: 0, size: "file" },
    { k: "create-buffer", p: 0, offset: 0, width: 32, height: 32, stride: 128, format: 1 },
    { k: "truncate", f: 0, size: 0 },
    attach,
  ],
};

function death(policy: Policy, program: Action[]) {
  const r = runCase(
    {
      ...CASE_DEFAULTS,
      seed: 6,
      policy: policy.name,
      frames: 2,
      honest: 0,
      program: { clients: [program] },
    },
    policy,
  );
  return { death: r.record?.compositor.death ?? null, place: r.failure?.place };
}

describe("the compositor's death record names where the fault lay", () => {
  const table: [string, string, string, string][] = [
    [
      "libwayland",
      "sealed pool grown past its file",
      "own-pool",
      "SIGBUS (unhandled) in the pool being read",
    ],
    [
      "libwayland",
      "stride lie into a truncated neighbour",
      "other-pool",
      "SIGBUS (unhandled) in another pool",
    ],
    [
      "libwayland",
      "stride lie into an unmapped hole",
      "no-pool",
      "SIGSEGV (unhandled) outside every pool",
    ],
    [
      "none",
      "file truncated under the committed buffer",
      "own-pool",
      "SIGBUS (unhandled) in the pool being read",
    ],
    [
      "none",
      "stride lie into a truncated neighbour",
      "other-pool",
      "SIGBUS (unhandled) in another pool",
    ],
    // KWin's handler finds no access covering the address and calls the previous handler,
    // SIG_DFL: a jump to address 0 (common.ts callPrevious).
    ["kwin", "stride lie into a truncated neighbour", "null", "SIGSEGV (unhandled) at NULL"],
  ];
  it.each(table)("%s, %s: %s", (policy, program, fault, place) => {
    const d = death(getPolicy(policy), programs[program]);
    expect(d.death?.fault).toBe(fault);
    expect(d.place).toBe(place);
  });

  it("libwayland's two SIGBUS deaths, one signal and reason, two signatures", () => {
    const a = death(getPolicy("libwayland"), programs["sealed pool grown past its file"]);
    const b = death(getPolicy("libwayland"), programs["stride lie into a truncated neighbour"]);
    expect([a.death?.signal, a.death?.reason]).toEqual([b.death?.signal, b.death?.reason]);
    expect(a.place).not.toBe(b.place);
  });

  it("the pool being read is the mapping the read reads from, not the pool's mapping now", () => {
    // Reads through a mapping of its own per access, with no handler: the fault's address
    // is in that mapping, not at pool.addr (as wlroots and KWin keep reading an old mapping
    // after a resize maps a new one).
    const mapsPerAccess: Policy = {
      ...wlroots,
      name: "test-maps-per-access",
      create(proc, env) {
        const inst = wlroots.create(proc, env);
        return {
          ...inst,
          beginAccess(b) {
            const at = proc.mmap(0, b.pool.size, PROT.PROT_READ, MAP.MAP_SHARED, b.pool.fd, 0);
            return { buffer: b, base: at + b.offset, state: at };
          },
          endAccess(a) {
            proc.munmap(a.state as number, a.buffer.pool.size);
            return undefined;
          },
        };
      },
    };
    const d = death(mapsPerAccess, programs["file truncated under the committed buffer"]);
    expect(d.death?.fault).toBe("own-pool");
  });

  it("a fault with no read in progress (a policy's main-loop work): no-read", () => {
    const d = death(faultsWhenIdle, [memfd(), { k: "surface" }]);
    expect(d.death?.fault).toBe("no-read");
    expect(d.place).toBe("SIGSEGV (unhandled) outside a read");
  });

  it("a death with no fault address (an abort) has no class, and its place is unchanged", () => {
    const d = death(getPolicy("smithay"), [
      memfd(),
      { k: "create-pool", f: 0, size: "file" },
      { k: "resize", p: 0, size: 0 },
    ]);
    expect(d.death?.signal).toBe("SIGABRT");
    expect(d.death?.fault).toBeNull();
    expect(d.place).toBe("SIGABRT (abort)");
  });

  it("every class is reached by one of the programs above", () => {
    const seen = new Set(
      table.map(([policy, program]) => death(getPolicy(policy), programs[program]).death?.fault),
    );
    seen.add(death(faultsWhenIdle, [memfd(), { k: "surface" }]).death?.fault);
    expect([...seen].sort()).toEqual([...FAULT_PLACES].sort());
  });
});
