import { describe, expect, it } from "vitest";
import { ProcessKilled } from "../shm/errors.ts";
import { MADV, MAP, PROT } from "../shm/uapi.ts";
import { errnoOf, PG, RW, setup, sharedPool } from "./helpers.ts";

describe("MAP_NOFAULT (Torvalds, 2021)", () => {
  it("is ignored like any unknown flag when the kernel lacks it, and refused for MAP_SHARED when it has it", () => {
    const off = setup();
    const fd0 = off.a.memfdCreate("x");
    const m0 = off.a.mmap(0, PG, PROT.PROT_READ, MAP.MAP_PRIVATE | MAP.MAP_NOFAULT, fd0, 0);
    expect(() => off.a.load(m0, 1)).toThrow(ProcessKilled); // a plain private map: SIGBUS

    const { a } = setup({ features: ["map-nofault"] });
    const fd = a.memfdCreate("x");
    expect(
      errnoOf(() => a.mmap(0, PG, PROT.PROT_READ, MAP.MAP_SHARED | MAP.MAP_NOFAULT, fd, 0)),
    ).toBe("EINVAL");
  });

  it("needs a file only when asked for: an anonymous mapping without it (or without the feature) is made", () => {
    // The flag's value is one Linux does not define, so a kernel without the proposal ignores
    // it (do_mmap checks unknown flags only for MAP_SHARED_VALIDATE); with the proposal, only
    // an anonymous MAP_NOFAULT mapping is refused (there is no file to fault beyond).
    const off = setup();
    const m0 = off.a.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS | MAP.MAP_NOFAULT);
    off.a.fill(m0, 1, 2);
    expect(off.a.load(m0, 1)[0]).toBe(2);
    const { a } = setup({ features: ["map-nofault"] });
    expect(errnoOf(() => a.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS))).toBe("ok");
    expect(
      errnoOf(() => a.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS | MAP.MAP_NOFAULT)),
    ).toBe("EINVAL");
  });

  it("a read fault beyond EOF maps an anonymous zero page instead of SIGBUS", () => {
    const { a } = setup({ features: ["map-nofault"] });
    const [fd, m] = sharedPool(a, 2 * PG);
    const nf = a.mmap(0, 2 * PG, PROT.PROT_READ, MAP.MAP_PRIVATE | MAP.MAP_NOFAULT, fd, 0);
    a.fill(m + PG, 1, 3);
    expect(a.load(nf + PG, 1)[0]).toBe(3);
    a.ftruncate(fd, PG);
    expect(a.load(nf + PG, 1)[0]).toBe(0);
    expect(a.counters.sigbus).toBe(0);
    expect(() => a.load(m + PG, 1)).toThrow(ProcessKilled); // the shared map still faults
  });

  it("the zero page does not follow the file when it grows back, until something zaps it", () => {
    const { a } = setup({ features: ["map-nofault"] });
    const fd = a.memfdCreate("x");
    a.ftruncate(fd, PG);
    const nf = a.mmap(0, 2 * PG, PROT.PROT_READ, MAP.MAP_PRIVATE | MAP.MAP_NOFAULT, fd, 0);
    expect(a.load(nf + PG, 1)[0]).toBe(0);
    a.ftruncate(fd, 2 * PG);
    a.pwrite(fd, new Uint8Array([8]), PG);
    expect(a.load(nf + PG, 1)[0]).toBe(0);
    a.madvise(nf + PG, PG, MADV.MADV_DONTNEED);
    expect(a.load(nf + PG, 1)[0]).toBe(8);
  });
});

describe("zero page beyond EOF (Shutemov, 2021)", () => {
  it("works for MAP_SHARED on a marked inode; the entries go when the file grows (Dickins)", () => {
    const { a } = setup({ features: ["zero-beyond-eof"] });
    const [fd, m] = sharedPool(a, 2 * PG);
    a.setZeroBeyondEof(fd);
    a.ftruncate(fd, PG);
    expect(a.load(m + PG, 1)[0]).toBe(0);
    expect(a.counters.sigbus).toBe(0);
    a.ftruncate(fd, 2 * PG);
    a.pwrite(fd, new Uint8Array([4]), PG);
    expect(a.load(m + PG, 1)[0]).toBe(4);
  });

  it("growth zaps only the zero-page entries beyond the old EOF: pages inside it stay mapped", () => {
    const { a } = setup({ features: ["zero-beyond-eof"] });
    const [fd, m] = sharedPool(a, 3 * PG);
    a.setZeroBeyondEof(fd);
    a.fill(m, PG, 1); // page 0 in the file, mapped
    a.ftruncate(fd, PG);
    a.load(m + PG, 1); // zero page beyond EOF
    a.ftruncate(fd, 3 * PG);
    const before = a.counters.minorFaults;
    expect(a.load(m, 1)[0]).toBe(1);
    expect(a.counters.minorFaults).toBe(before); // page 0 kept its entry
    a.load(m + PG, 1);
    expect(a.counters.minorFaults).toBe(before + 1); // the zero page went
  });

  it("is a per-inode flag that needs the feature", () => {
    const { a } = setup();
    const fd = a.memfdCreate("x");
    expect(errnoOf(() => a.setZeroBeyondEof(fd))).toBe("EINVAL");
    const on = setup({ features: ["zero-beyond-eof"] });
    const [fd2, m] = sharedPool(on.a, 2 * PG);
    on.a.ftruncate(fd2, PG); // not marked: still SIGBUS
    expect(() => on.a.load(m + PG, 1)).toThrow(ProcessKilled);
  });

  it("a write beyond EOF is still SIGBUS", () => {
    const { a } = setup({ features: ["zero-beyond-eof"] });
    const [fd, m] = sharedPool(a, 2 * PG);
    a.setZeroBeyondEof(fd);
    a.ftruncate(fd, PG);
    a.load(m + PG, 1);
    expect(() => a.fill(m + PG, 1, 1)).toThrow(ProcessKilled);
  });

  it("mprotect giving write access back leaves the zero-page entries read-only: the write is still SIGBUS", () => {
    // A shared mapping's vm_page_prot is writable again after mprotect (change_pte_range
    // applies it to every entry), but the zero page is never mapped writable: Linux maps it
    // read-only and only into private mappings, where can_change_pte_writable leaves it so
    // and a store takes do_wp_page's copy. The proposal maps it into a shared one; the store
    // must still fault, and meets EOF.
    const { a } = setup({ features: ["zero-beyond-eof"] });
    const [fd, m] = sharedPool(a, 2 * PG);
    a.setZeroBeyondEof(fd);
    a.ftruncate(fd, PG);
    expect(a.load(m + PG, 1)[0]).toBe(0);
    a.mprotect(m, 2 * PG, PROT.PROT_READ);
    a.mprotect(m, 2 * PG, RW);
    expect(() => a.fill(m + PG, 1, 1)).toThrow(ProcessKilled);
    expect(a.killedBy?.signal).toBe("SIGBUS");
    // Nothing was written into the zero page: another process still reads zeros from it.
    const { a: b } = setup();
    const z = b.mmap(0, PG, PROT.PROT_READ, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    expect(b.load(z, 1)[0]).toBe(0);
  });
});

describe("MADV_USERFAULT (Arcangeli, 2014)", () => {
  it("a missing anonymous page raises SIGBUS with si_addr; the handler resolves it and the access retries", () => {
    const { a } = setup({ features: ["madv-userfault"] });
    const m = a.mmap(0, 2 * PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.madvise(m, 2 * PG, MADV.MADV_USERFAULT);
    const addrs: number[] = [];
    a.sigaction("SIGBUS", {
      handler: (i) => {
        addrs.push(i.addr);
        const page = i.addr - (i.addr % PG);
        // The 2014 design resolved by remapping a filled page over the hole.
        const src = a.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
        a.fill(src, PG, 0x77);
        a.mremap(src, PG, PG, 3, page);
      },
    });
    expect(a.load(m + PG + 1, 1)[0]).toBe(0x77);
    expect(addrs).toEqual([m + PG + 1]);
  });

  it("is unknown advice when the kernel lacks it", () => {
    const { a } = setup();
    const m = a.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    expect(errnoOf(() => a.madvise(m, PG, MADV.MADV_USERFAULT))).toBe("EINVAL");
  });
});
