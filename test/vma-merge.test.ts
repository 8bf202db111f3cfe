/**
 * vma_merge for private anonymous memory (shm/syscalls/memory.ts): a new mapping joins the
 * compatible neighbours it touches, as a SIGBUS handler's page-sized zero mappings do, and
 * stays apart from incompatible ones. The common case (only the lower neighbour) is taken
 * without an insert and a remove; the result must be the same VMA set.
 */
import { describe, expect, it } from "vitest";
import { MMAP_CEILING } from "../shm/address-space.ts";
import { MAP, PROT } from "../shm/uapi.ts";
import { PG, RW, setup } from "./helpers.ts";

const FIXED_ANON = MAP.MAP_FIXED | MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS;

/**
 * [start, end) of every VMA, in order. The first private anonymous read-write mapping joins
 * the loader's rw-p one above it (shm/loader-image.ts), as on the host: the layouts below end
 * at MMAP_CEILING where that happens.
 */
const layout = (p: ReturnType<typeof setup>["a"]) => p.mm.vmas.map((v) => [v.start, v.end]);

describe("anonymous VMA merging", () => {
  it("a page mapped just above a compatible mapping extends it", () => {
    const { a } = setup();
    const m = a.mmap(0, 4 * PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.munmap(m + 2 * PG, 2 * PG);
    a.fill(m, 2 * PG, 3);
    a.mmap(m + 2 * PG, PG, RW, FIXED_ANON);
    expect(layout(a)).toEqual([
      [m, m + 3 * PG],
      [m + 4 * PG, MMAP_CEILING],
    ]);
    expect(a.load(m + PG, 1)[0]).toBe(3); // the entries stay
    expect(a.load(m + 2 * PG, 1)[0]).toBe(0);
  });

  it("a page mapped into the hole between two compatible mappings joins both", () => {
    const { a } = setup();
    const m = a.mmap(0, 3 * PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.fill(m, 3 * PG, 9);
    a.munmap(m + PG, PG);
    expect(a.mm.size).toBe(2);
    a.mmap(m + PG, PG, RW, FIXED_ANON);
    expect(layout(a)).toEqual([[m, MMAP_CEILING]]);
    expect([...a.load(m, 3 * PG)].filter((b) => b === 9).length).toBe(2 * PG);
  });

  it("a page over the head of a file mapping joins the anonymous page below, the file keeps the rest", () => {
    const { a } = setup();
    const fd = a.memfdCreate("pool");
    a.ftruncate(fd, 4 * PG);
    const m = a.mmap(0, 4 * PG, RW, MAP.MAP_SHARED, fd, 0);
    a.mmap(m, PG, RW, FIXED_ANON);
    a.mmap(m + PG, PG, RW, FIXED_ANON);
    expect(layout(a)).toEqual([
      [m, m + 2 * PG],
      [m + 2 * PG, m + 4 * PG],
      [m + 4 * PG, MMAP_CEILING],
    ]);
    expect(a.mm.find(m + 2 * PG)?.pgoff).toBe(2);
    expect(a.mm.treeProblem()).toBeUndefined();
  });

  it("neighbours with another protection stay apart", () => {
    const { a } = setup();
    const m = a.mmap(0, 3 * PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.munmap(m + PG, PG);
    a.mmap(m + PG, PG, PROT.PROT_READ, FIXED_ANON);
    expect(layout(a)).toEqual([
      [m, m + PG],
      [m + PG, m + 2 * PG],
      [m + 2 * PG, MMAP_CEILING],
    ]);
  });
});
