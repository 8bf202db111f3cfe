import { describe, expect, it } from "vitest";
import { ProcessKilled } from "../shm/errors.ts";
import { FALLOC, MAP, PROT } from "../shm/uapi.ts";
import { PG, RW, setup, sharedPool, zeroPageHandler } from "./helpers.ts";

describe("truncation (LINUX.md rules 1-3)", () => {
  it("shrink: every process mapping the file loses the pages beyond the new size", () => {
    const { k, a } = setup();
    const [fd, m] = sharedPool(a, 4 * PG);
    a.fill(m, 4 * PG, 0x11);
    const b = k.spawn("b");
    const bfd = a.sendFd(fd, b);
    const mb = b.mmap(0, 4 * PG, PROT.PROT_READ, MAP.MAP_SHARED, bfd, 0);
    expect(b.load(mb + 3 * PG, 1)[0]).toBe(0x11);
    a.ftruncate(fd, PG);
    expect(() => b.load(mb + 3 * PG, 1)).toThrow(ProcessKilled);
    expect(b.killedBy?.info).toEqual({ signo: "SIGBUS", code: "BUS_ADRERR", addr: mb + 3 * PG });
    expect(b.counters.pagesZapped).toBeGreaterThan(0);
  });

  it("shrink zeroes the tail of the straddling page, which stays readable", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, 2 * PG);
    a.fill(m, 2 * PG, 0xaa);
    a.ftruncate(fd, 100);
    expect(a.load(m + 98, 4)).toEqual(new Uint8Array([0xaa, 0xaa, 0, 0]));
    expect(a.load(m + PG - 1, 1)[0]).toBe(0);
  });

  it("shrink zaps private COW copies too (even_cows)", () => {
    const { a } = setup();
    const [fd] = sharedPool(a, 2 * PG);
    const priv = a.mmap(0, 2 * PG, RW, MAP.MAP_PRIVATE, fd, 0);
    a.fill(priv + PG, 4, 0x42); // a private copy of page 1
    expect(a.counters.cowCopies).toBe(1);
    a.ftruncate(fd, PG);
    const seen = zeroPageHandler(a);
    expect(a.load(priv + PG, 1)[0]).toBe(0);
    expect(seen).toEqual([priv + PG]);
  });

  it("grow only sets the size: the new range reads zero, the old SIGBUS page is readable again", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, 2 * PG);
    a.fill(m + PG, PG, 9);
    a.ftruncate(fd, PG);
    a.ftruncate(fd, 2 * PG);
    expect(a.load(m + PG, 2)).toEqual(new Uint8Array([0, 0]));
  });

  it("a zero-page handler's anonymous page never shows the file again, even after it grows back", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, 2 * PG);
    a.ftruncate(fd, PG);
    zeroPageHandler(a);
    expect(a.load(m + PG, 1)[0]).toBe(0);
    a.ftruncate(fd, 2 * PG);
    a.pwrite(fd, new Uint8Array([5]), PG);
    expect(a.load(m + PG, 1)[0]).toBe(0); // rule 15
    expect(a.pread(fd, 1, PG)[0]).toBe(5);
  });

  it("mapping past EOF is allowed; the access is what faults", () => {
    const { a } = setup();
    const fd = a.memfdCreate("empty");
    const m = a.mmap(0, PG, PROT.PROT_READ, MAP.MAP_SHARED, fd, 16 * PG);
    expect(() => a.load(m, 1)).toThrow(ProcessKilled);
  });
});

describe("hole punching (rule 4)", () => {
  it("zeroes shared and not-yet-copied private views but keeps private COW copies", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, 3 * PG);
    a.fill(m, 3 * PG, 0x33);
    const priv = a.mmap(0, 3 * PG, RW, MAP.MAP_PRIVATE, fd, 0);
    a.fill(priv + PG, 1, 0x44); // COW copy of page 1
    expect(a.load(priv + 2 * PG, 1)[0]).toBe(0x33); // page 2 mapped from the cache
    a.fallocate(fd, FALLOC.FALLOC_FL_PUNCH_HOLE | FALLOC.FALLOC_FL_KEEP_SIZE, PG, 2 * PG);
    expect(a.load(m + PG, 1)[0]).toBe(0);
    expect(a.load(priv + 2 * PG, 1)[0]).toBe(0);
    expect(a.load(priv + PG, 2)).toEqual(new Uint8Array([0x44, 0x33]));
    expect(a.fstatSize(fd)).toBe(3 * PG);
  });

  it("zeroes partial pages at the edges in place", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, PG);
    a.fill(m, PG, 1);
    a.fallocate(fd, FALLOC.FALLOC_FL_PUNCH_HOLE | FALLOC.FALLOC_FL_KEEP_SIZE, 10, 20);
    expect(a.load(m + 8, 24)).toEqual(new Uint8Array([1, 1, ...new Array(20).fill(0), 1, 1]));
  });
});

describe("unmap_mapping_range zaps the range it is given, in file pages (ru_minflt)", () => {
  it("a hole punched in one page of a mapping at a file offset refaults that page only", () => {
    // The mapping starts at file page 1 (pgoff 1): VMA index i is file page i + 1.
    const { a } = setup();
    const fd = a.memfdCreate("x");
    a.ftruncate(fd, 5 * PG);
    const m = a.mmap(0, 4 * PG, RW, MAP.MAP_SHARED, fd, PG);
    a.fill(m, 4 * PG, 0x66); // file pages 1-4 present and mapped
    const before = a.counters.minorFaults;
    a.fallocate(fd, FALLOC.FALLOC_FL_PUNCH_HOLE | FALLOC.FALLOC_FL_KEEP_SIZE, 2 * PG, PG);
    for (let i = 0; i < 4; i++) a.load(m + i * PG, 1);
    expect(a.counters.minorFaults - before).toBe(1); // file page 2 = VMA page 1
    expect(a.load(m + PG, 1)[0]).toBe(0);
    expect(a.load(m + 2 * PG, 1)[0]).toBe(0x66);
  });

  it("a shrink zaps the mapping's pages from the new EOF on, and no page below it", () => {
    const { a } = setup();
    const fd = a.memfdCreate("x");
    a.ftruncate(fd, 5 * PG);
    const m = a.mmap(0, 4 * PG, RW, MAP.MAP_SHARED, fd, PG);
    a.fill(m, 4 * PG, 0x66);
    const zapped = a.counters.pagesZapped;
    a.ftruncate(fd, 3 * PG); // file pages 3-4 go: VMA pages 2-3
    expect(a.counters.pagesZapped - zapped).toBe(2);
    const before = a.counters.minorFaults;
    a.load(m, 1);
    a.load(m + PG, 1);
    expect(a.counters.minorFaults).toBe(before); // still mapped
  });
});

describe("eviction of an unreferenced inode (iput_final → shmem_evict_inode)", () => {
  it("happens once, with the last reference, and the event log says how many pages it freed", () => {
    const { k, a } = setup({ trace: true });
    const fd = a.memfdCreate("x");
    a.pwrite(fd, new Uint8Array(2 * PG).fill(1), 0);
    const m = a.mmap(0, 2 * PG, RW, MAP.MAP_SHARED, fd, 0);
    const evictions = () => (k.events ?? []).filter((e) => e.kind === "evict-inode");
    a.close(fd);
    expect(evictions()).toEqual([]); // the mapping still holds the file
    expect(a.load(m + PG, 1)[0]).toBe(1);
    a.munmap(m, 2 * PG);
    expect(evictions().map((e) => e.detail.pages)).toEqual([2]);
    expect(typeof evictions()[0].detail.ino).toBe("number");
  });
});
