import { describe, expect, it } from "vitest";
import { MAP, PROT } from "../shm/uapi.ts";
import { PG, RW, setup } from "./helpers.ts";

describe("address space layout", () => {
  it("places mappings top-down with a guard page between them", () => {
    const { a } = setup();
    const m1 = a.mmap(0, 2 * PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    const m2 = a.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    expect(m2 + PG).toBeLessThan(m1);
    expect(a.mm.find(m2 + PG)).toBeUndefined();
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
