/**
 * The page fault's rules that the scenario files cannot reach (device memory and the
 * proposals are model-only) or reach only through the counters the lab reports: what a fault
 * maps, what it counts, and what unmapping a device mapping must leave alone. Each expectation
 * is the Linux function's behaviour, quoted; the fault-around window itself is pinned by the
 * host-checked scenarios in scenarios/fault-around/ and scenarios/faults/.
 */
import { describe, expect, it } from "vitest";
import { deviceBuffer, mapDeviceBuffer, readDeviceBuffer } from "../shm/device.ts";
import { Deadlock, type SigInfo } from "../shm/errors.ts";
import { Kernel } from "../shm/kernel.ts";
import { MAP, PROT, UFFD } from "../shm/uapi.ts";
import { PG, RW, setup, sharedPool } from "./helpers.ts";

const ANON = MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS;

/** A handler that abandons the access (a siglongjmp out of it): the test sees the signal. */
class Caught extends Error {
  constructor(readonly info: SigInfo) {
    super(info.signo);
  }
}

function caught(fn: () => unknown): SigInfo | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (e instanceof Caught) return e.info;
    throw e;
  }
}

describe("device memory (VM_PFNMAP, remap_pfn_range)", () => {
  it("a shared writable device mapping's entry is writable once present: a store after a load takes no fault", () => {
    // remap_pfn_range installs entries with vma->vm_page_prot, writable for a shared
    // writable mapping: no write fault ever follows.
    const k = new Kernel();
    const a = k.spawn("a");
    const dev = deviceBuffer(k, "vram", 2 * PG, 0x5a);
    const s = mapDeviceBuffer(a, dev, 2 * PG, RW, MAP.MAP_SHARED);
    expect(a.load(s + PG, 1)[0]).toBe(0x5a);
    const faults = a.counters.minorFaults;
    a.fill(s + PG, 4, 0x66);
    expect(a.counters.minorFaults).toBe(faults);
    expect(readDeviceBuffer(k, dev, PG, 4)).toEqual(new Uint8Array(4).fill(0x66));
    // A store as the first access takes at most the fault that maps the entry, never a
    // second write-protect fault after it (Linux takes none: remap_pfn_range fills the
    // entries at mmap time, where the model maps them on first touch).
    const first = a.counters.minorFaults;
    a.fill(s, 1, 0x67);
    expect(a.counters.minorFaults - first).toBeLessThanOrEqual(1);
    expect(readDeviceBuffer(k, dev, 0, 1)[0]).toBe(0x67);
  });

  it("a private device mapping maps the device frame itself on a read: it shows the device's later writes until the process writes", () => {
    // LINUX.md rule 18: only a write copies (wp_page_copy, vm_normal_page NULL for a raw pfn).
    const k = new Kernel();
    const a = k.spawn("a");
    const dev = deviceBuffer(k, "vram", PG, 1);
    const s = mapDeviceBuffer(a, dev, PG, RW, MAP.MAP_SHARED);
    const q = mapDeviceBuffer(a, dev, PG, RW, MAP.MAP_PRIVATE);
    const inUse = k.frames.getStats().inUse;
    expect(a.load(q, 1)[0]).toBe(1);
    expect(k.frames.getStats().inUse).toBe(inUse); // a read copies nothing
    a.fill(s, 1, 2);
    expect(a.load(q, 1)[0]).toBe(2);
    a.fill(q, 1, 3); // the copy
    expect(k.frames.getStats().inUse).toBe(inUse + 1);
    a.fill(s, 1, 4);
    expect(a.load(q, 1)[0]).toBe(3);
    expect(readDeviceBuffer(k, dev, 0, 1)[0]).toBe(4);
  });

  it("only a private device page's copy is the obsolete feature: ordinary copy-on-write is not counted", () => {
    // LINUX.md rule 18 names wp_page_copy of a raw pfn (vm_normal_page NULL); copying an
    // anonymous or page-cache page is the ordinary COW every private mapping does.
    const k = new Kernel();
    const a = k.spawn("a");
    const m = a.mmap(0, PG, RW, ANON);
    a.fill(m, 1, 1);
    a.fork("b");
    a.fill(m, 1, 2); // shared with the child: copied
    const fd = a.memfdCreate("x");
    a.ftruncate(fd, PG);
    const q = a.mmap(0, PG, RW, MAP.MAP_PRIVATE, fd, 0);
    a.load(q, 1);
    a.fill(q, 1, 3); // a page-cache page: copied
    expect(a.counters.cowCopies).toBe(2);
    expect(k.obsoleteFeatureUses.size).toBe(0);
  });

  it("unmapping present device entries drops no reference: the device keeps its frames and bytes", () => {
    // zap_pte_range: vm_normal_page() is NULL for a raw pfn of a VM_PFNMAP VMA, so there is no
    // page to put; the driver owns the memory.
    const k = new Kernel();
    const a = k.spawn("a");
    const dev = deviceBuffer(k, "vram", 2 * PG, 9);
    const inUse = k.frames.getStats().inUse;
    for (const flags of [MAP.MAP_SHARED, MAP.MAP_PRIVATE]) {
      const m = mapDeviceBuffer(a, dev, 2 * PG, PROT.PROT_READ, flags);
      expect(a.load(m, 1)[0]).toBe(9);
      expect(a.load(m + PG, 1)[0]).toBe(9);
      a.munmap(m, 2 * PG);
    }
    expect(k.frames.refs(dev.frames[0])).toBe(1);
    expect(k.frames.refs(dev.frames[1])).toBe(1);
    expect(k.frames.getStats().inUse).toBe(inUse);
    expect(readDeviceBuffer(k, dev, 0, 2 * PG)).toEqual(new Uint8Array(2 * PG).fill(9));
  });
});

describe("what a fault counts (ru_minflt, and the lab's anonymous and zero-page costs)", () => {
  it("private anonymous memory: a read maps the zero page, a write allocates one anonymous page", () => {
    // do_anonymous_page: a read maps my_zero_pfn (no page, no MM_ANONPAGES); a write
    // allocates and inc_mm_counter(MM_ANONPAGES); wp_page_copy of the zero page likewise.
    const { a } = setup();
    const m = a.mmap(0, 4 * PG, RW, ANON);
    const c0 = { ...a.counters };
    a.load(m, 1);
    a.load(m + PG, 1);
    expect(a.counters.zeroPageMaps - c0.zeroPageMaps).toBe(2);
    expect(a.counters.minorFaults - c0.minorFaults).toBe(2);
    expect(a.counters.anonPages - c0.anonPages).toBe(0);
    a.fill(m + 2 * PG, 1, 1); // write first: one fault, one page
    expect(a.counters.anonPages - c0.anonPages).toBe(1);
    expect(a.counters.minorFaults - c0.minorFaults).toBe(3);
    a.fill(m, 1, 1); // the zero page copied
    expect(a.counters.anonPages - c0.anonPages).toBe(2);
    expect(a.counters.zeroPageMaps - c0.zeroPageMaps).toBe(2);
  });

  it("a private file mapping's write copies the page cache page into one anonymous page", () => {
    // do_cow_fault (write first) and do_wp_page → wp_page_copy (read, then write): each
    // allocates one anonymous page, and the file is not written.
    const { a } = setup();
    const [fd] = sharedPool(a, 2 * PG);
    a.pwrite(fd, new Uint8Array([7, 7]), 0);
    const q = a.mmap(0, 2 * PG, RW, MAP.MAP_PRIVATE, fd, 0);
    const before = a.counters.anonPages;
    a.fill(q + PG, 1, 1);
    expect(a.counters.anonPages).toBe(before + 1);
    expect(a.load(q, 1)[0]).toBe(7);
    a.fill(q, 1, 2);
    expect(a.counters.anonPages).toBe(before + 2);
    expect(a.pread(fd, 2, 0)).toEqual(new Uint8Array([7, 7]));
  });
});

describe("the proposals' zero pages beyond EOF are faults like any other", () => {
  it("MAP_NOFAULT: the read beyond EOF is one minor fault that maps the zero page", () => {
    const { a } = setup({ features: ["map-nofault"] });
    const fd = a.memfdCreate("x");
    a.ftruncate(fd, PG);
    const nf = a.mmap(0, 2 * PG, PROT.PROT_READ, MAP.MAP_PRIVATE | MAP.MAP_NOFAULT, fd, 0);
    const c0 = { ...a.counters };
    expect(a.load(nf + PG, 1)[0]).toBe(0);
    expect(a.counters.minorFaults - c0.minorFaults).toBe(1);
    expect(a.counters.zeroPageMaps - c0.zeroPageMaps).toBe(1);
    a.load(nf + PG, 1); // mapped: no second fault
    expect(a.counters.minorFaults - c0.minorFaults).toBe(1);
  });

  it("zero-beyond-EOF: a read maps the zero page with one fault; a write there is SIGBUS and keeps that entry", () => {
    // Shutemov's zero page stands for a page beyond i_size: a write still needs the page, which
    // shmem_get_folio refuses beyond EOF (SIGBUS); the read-only entry is not touched.
    const { a } = setup({ features: ["zero-beyond-eof"] });
    const [fd, m] = sharedPool(a, 2 * PG);
    a.setZeroBeyondEof(fd);
    a.ftruncate(fd, PG);
    a.sigaction("SIGBUS", {
      handler: (info) => {
        throw new Caught(info);
      },
    });
    const c0 = { ...a.counters };
    expect(a.load(m + PG, 1)[0]).toBe(0);
    expect(a.counters.minorFaults - c0.minorFaults).toBe(1);
    expect(a.counters.zeroPageMaps - c0.zeroPageMaps).toBe(1);
    const info = caught(() => a.fill(m + PG + 8, 1, 5));
    expect(info).toMatchObject({ signo: "SIGBUS", code: "BUS_ADRERR", addr: m + PG + 8 });
    const after = a.counters.minorFaults;
    expect(a.load(m + PG, 1)[0]).toBe(0);
    expect(a.counters.minorFaults).toBe(after); // the zero-page entry stayed
    expect(a.counters.zeroPageMaps - c0.zeroPageMaps).toBe(1);
    expect(a.fstatSize(fd)).toBe(PG);
  });
});

describe("copy-on-write reuse", () => {
  it("5.9-5.18 (gup-pre-5.19): a page whose only reference is this mapping is reused, not copied", () => {
    // do_wp_page before 5.19: "if (page_count(page) != 1) goto copy;" else reuse — no page
    // is allocated once the child that shared it has exited.
    const { k, a } = setup({ features: ["gup-pre-5.19"] });
    const m = a.mmap(0, PG, RW, ANON);
    a.fill(m, 1, 1);
    a.fork("b").exit();
    const allocated = k.frames.getStats().allocated;
    a.fill(m, 1, 2);
    expect(k.frames.getStats().allocated).toBe(allocated);
    expect(a.load(m, 1)[0]).toBe(2);
    // Shared with a live child: copied (refcount 2).
    const c = a.fork("c");
    a.fill(m, 1, 3);
    expect(k.frames.getStats().allocated).toBe(allocated + 1);
    expect(c.load(m, 1)[0]).toBe(2);
  });
});

describe("userfaultfd on anonymous memory", () => {
  it("a missing fault at an unaligned address is reported at its page's start, and one fault maps the page", () => {
    // handle_userfault: "msg.arg.pagefault.address = ... address & PAGE_MASK" without
    // UFFD_FEATURE_EXACT_ADDRESS.
    let resolve = () => {};
    const k = new Kernel({
      scheduler: {
        point() {},
        block(_p, until) {
          if (!until()) resolve();
          if (!until()) throw new Deadlock("not resolved");
        },
      },
    });
    const a = k.spawn("a");
    const m = a.mmap(0, 3 * PG, RW, ANON);
    const u = a.userfaultfd();
    a.uffdioApi(u);
    a.uffdioRegister(u, m, 3 * PG, UFFD.UFFDIO_REGISTER_MODE_MISSING);
    const seen: number[] = [];
    resolve = () => {
      const e = a.uffdRead(u);
      seen.push(e.address);
      a.uffdioCopy(u, e.address, new Uint8Array(PG).fill(0x42));
    };
    expect(a.load(m + 2 * PG + 123, 1)[0]).toBe(0x42);
    expect(seen).toEqual([m + 2 * PG]);
  });
});

describe("fault-around over a window that straddles two page-table chunks", () => {
  // A VMA that starts 8 pages past a 64 KiB boundary: its windows (aligned on the virtual
  // address, do_fault_around) hold VMA entries 504-519 around entry 512, where the model's
  // page table changes chunk. Holes (not in the cache) and fallocated pages (not uptodate)
  // sit on both sides of it and at the window's ends; each touch is checked against
  // filemap_map_pages' rules recomputed here page by page.
  it("maps exactly the cached, uptodate, none entries of each window, chunk boundary or not", () => {
    const { a } = setup();
    const pages = 1100;
    const fd = a.memfdCreate("pool");
    a.ftruncate(fd, pages * PG);
    const holes = new Set([505, 511, 512, 519, 530, 1000]);
    const fallocated = new Set([508, 513, 514, 520]);
    for (let pg = 0; pg < pages; pg++)
      if (!holes.has(pg) && !fallocated.has(pg)) a.pwrite(fd, new Uint8Array([pg & 0xff]), pg * PG);
    for (const pg of fallocated) a.fallocate(fd, 0, pg * PG, PG);
    const base = 2 ** 40 + 8 * PG; // 8 pages past a 64 KiB (16-page) boundary
    const m = a.mmap(base, pages * PG, PROT.PROT_READ, MAP.MAP_SHARED | MAP.MAP_FIXED, fd, 0);
    const vma = a.mm.find(m)!;
    // The reference: which entries are present, and which pages the cache holds uptodate.
    const present = new Set<number>();
    const uptodate = new Set<number>();
    for (let pg = 0; pg < pages; pg++) if (!holes.has(pg) && !fallocated.has(pg)) uptodate.add(pg);
    let faults = 0;
    // Touch in an order that reaches the boundary windows from both sides.
    const order = [515, 509, ...Array.from({ length: pages }, (_, i) => i)];
    for (const i of order) {
      const before = a.counters.minorFaults;
      const wasPresent = present.has(i);
      a.load(m + i * PG, 1);
      if (!wasPresent) {
        faults++;
        const vpage = (m + i * PG) / PG;
        const pteOff = vpage % 512;
        const from = Math.max(pteOff - (pteOff % 16), pteOff - Math.min(pteOff, i));
        const to = Math.min(from + 16, 512, pteOff + pages - i);
        for (let j = i + from - pteOff; j < i + to - pteOff; j++)
          if (!present.has(j) && uptodate.has(j)) present.add(j);
        // shmem_fault: a hole is allocated, a fallocated page cleared; either is mapped.
        uptodate.add(i);
        present.add(i);
      }
      expect(a.counters.minorFaults - before, `faults of the touch of page ${i}`).toBe(
        wasPresent ? 0 : 1,
      );
      for (let j = 496; j < 536; j++)
        expect(vma.pte(j) !== 0, `entry ${j} after touching ${i}`).toBe(present.has(j));
    }
    expect(a.counters.minorFaults).toBe(faults);
  });
});
