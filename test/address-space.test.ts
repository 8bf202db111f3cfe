import { describe, expect, it } from "vitest";
import { LOADER_DATA_SIZE, LOADER_DATA_START } from "../shm/loader-image.ts";
import { MAP, PROT } from "../shm/uapi.ts";
import { errnoOf, PG, RW, setup } from "./helpers.ts";

describe("address space layout", () => {
  // unmapped_area_topdown keeps no distance from an ordinary neighbour (stack_guard_gap is
  // for VM_GROWSDOWN/VM_GROWSUP only): scenarios/placement/consecutive-mmaps-adjacent.
  it("places mappings top-down, each ending where the one mapped before it starts", () => {
    const { a } = setup();
    const s1 = a.mmap(0, 2 * PG, RW, MAP.MAP_SHARED | MAP.MAP_ANONYMOUS);
    const s2 = a.mmap(0, PG, RW, MAP.MAP_SHARED | MAP.MAP_ANONYMOUS);
    expect(s2 + PG).toBe(s1);
    expect(a.mm.find(s2 + PG)?.start).toBe(s1);
    a.fill(s1, 1, 9);
    expect(a.load(s2 + PG - 1, 2)).toEqual(new Uint8Array([0, 9]));
  });

  it("joins a private anonymous mapping to the compatible one just above it", () => {
    const { a } = setup();
    const m1 = a.mmap(0, 2 * PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    const m2 = a.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    expect(m2 + PG).toBe(m1);
    // vma_merge_new_range: same flags, no anon_vma yet, pgoffs in line. m1 also joined the
    // loader's rw-p anonymous mapping directly above it (shm/loader-image.ts), as the host's
    // first private anonymous read-write mmap does: one VMA from m2 to the loader's end.
    expect(m1 + 2 * PG).toBe(LOADER_DATA_START);
    expect(a.mm.vmas.map((v) => [v.start, v.end])).toEqual([
      [m2, LOADER_DATA_START + LOADER_DATA_SIZE],
    ]);
  });

  it("splits a VMA when the middle is unmapped, keeping the outer entries", () => {
    const { a } = setup();
    const m = a.mmap(0, 3 * PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.fill(m, 3 * PG, 7);
    a.munmap(m + PG, PG);
    expect(a.mm.vmas.length).toBe(2);
    expect(a.load(m, 1)[0]).toBe(7);
    expect(a.load(m + 2 * PG, 1)[0]).toBe(7);
    expect(a.mm.fullyMapped(m, m + 3 * PG)).toBe(false);
  });

  it("reuses the gap left by an unmapped mapping", () => {
    const { a } = setup();
    const m1 = a.mmap(0, PG, PROT.PROT_READ, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.munmap(m1, PG);
    expect(a.mmap(0, PG, PROT.PROT_READ, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS)).toBe(m1);
  });
});

/**
 * vm.max_map_count. Each expectation is what the host kernel (6.18, max_map_count 65530)
 * did for the same calls, from a C program that mmapped 3-page anonymous mappings of
 * alternating protection (so that none merge) until mmap failed: do_mmap refuses only when
 * map_count > max (the count reaches max + 1); split_vma refuses at >= max; munmap refuses
 * only an unmap that would leave one more VMA, and mprotect fails after its first split.
 */
describe("vm.max_map_count", () => {
  it("mmap, munmap and mprotect at the limit, as on the host", () => {
    const { a } = setup();
    const v: number[] = [];
    for (;;) {
      const prot = v.length % 2 ? PROT.PROT_READ : PROT.PROT_NONE;
      try {
        v.push(a.mmap(0, 3 * PG, prot, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS));
      } catch (e) {
        expect(
          errnoOf(() => {
            throw e;
          }),
        ).toBe("ENOMEM");
        break;
      }
    }
    expect(a.mm.size).toBe(65531);
    const last = v[v.length - 1];
    const b = v[v.length - 3];
    const c = v[v.length - 5];
    expect(errnoOf(() => a.munmap(last + PG, PG))).toBe("ENOMEM");
    expect(errnoOf(() => a.mprotect(last + PG, PG, RW))).toBe("ENOMEM");
    a.munmap(last + 2 * PG, PG); // the end of a VMA: no more VMAs after
    a.munmap(b, PG); // its start: idem
    expect(a.mm.size).toBe(65531);
    a.munmap(v[0], 3 * PG);
    expect(a.mm.size).toBe(65530);
    expect(errnoOf(() => a.munmap(c + PG, PG))).toBe("ENOMEM");
    expect(errnoOf(() => a.mprotect(c + PG, PG, RW))).toBe("ENOMEM");
    a.munmap(v[2], 3 * PG);
    expect(a.mm.size).toBe(65529);
    // Two splits needed: the first is made, the second refused.
    expect(errnoOf(() => a.mprotect(c + PG, PG, RW))).toBe("ENOMEM");
    expect(a.mm.size).toBe(65530);
    a.munmap(c + PG, PG);
    expect(a.mm.size).toBe(65530);
    a.mmap(0, PG, PROT.PROT_READ, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    expect(a.mm.size).toBe(65531);
    expect(errnoOf(() => a.mmap(0, PG, PROT.PROT_NONE, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS))).toBe(
      "ENOMEM",
    );
  });

  it("is a kernel option (sysctl)", () => {
    const { a } = setup({ maxMapCount: 4 });
    // The loader's mapping (shm/loader-image.ts) counts, as a process's own VMAs do on Linux:
    // four mmaps take map_count to the limit plus one.
    for (let i = 0; i < 4; i++) a.mmap(0, PG, PROT.PROT_READ, MAP.MAP_SHARED | MAP.MAP_ANONYMOUS);
    expect(a.mm.size).toBe(5);
    expect(errnoOf(() => a.mmap(0, PG, PROT.PROT_READ, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS))).toBe(
      "ENOMEM",
    );
  });
});

describe("address space search tree", () => {
  it("places, finds and frees like a list scanned top-down would, over a random history", () => {
    const { a } = setup();
    let x = 12345;
    const rnd = (n: number) => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return x % n;
    };
    const live: [number, number][] = [];
    for (let step = 0; step < 3000; step++) {
      if (live.length === 0 || rnd(3) > 0) {
        const len = (1 + rnd(4)) * PG;
        // The reference: the top of the highest gap that fits (no guard pages), found by
        // scanning every live mapping.
        const sorted = [...live].sort((p, q) => p[0] - q[0]);
        let expectAt: number | undefined;
        let top = 0x7f00_0000_0000;
        for (let i = sorted.length - 1; i >= 0 && expectAt === undefined; i--) {
          if (top - len >= sorted[i][0] + sorted[i][1]) expectAt = top - len;
          else top = sorted[i][0];
        }
        expectAt ??= top - len;
        const m = a.mmap(0, len, PROT.PROT_READ, MAP.MAP_SHARED | MAP.MAP_ANONYMOUS);
        expect(m).toBe(expectAt);
        live.push([m, len]);
      } else {
        const [m, len] = live.splice(rnd(live.length), 1)[0];
        a.munmap(m, len);
      }
      if (step % 100 === 0) {
        const probe = live[rnd(live.length)];
        if (probe) expect(a.mm.find(probe[0] + probe[1] - 1)?.start).toBe(probe[0]);
      }
    }
    // The loader's mapping above MMAP_BASE (shm/loader-image.ts) is one VMA more.
    expect(a.mm.size).toBe(live.length + 1);
  });
});
