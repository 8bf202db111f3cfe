/**
 * A user access (Process.loadInto / store / fill) copies a physically contiguous present run
 * at once where the scheduler says its points are no-ops for the process (quietFor), and page
 * by page, a preemption point each, everywhere else. Both must give the same bytes, faults,
 * signals, counters and events: the fast path is a cost, never a behaviour.
 */
import { describe, expect, it } from "vitest";
import { Kernel, NO_PREEMPTION, type Scheduler } from "../shm/kernel.ts";
import type { Process } from "../shm/process.ts";
import { MAP, PROT } from "../shm/uapi.ts";
import { PG, RW, zeroPageHandler } from "./helpers.ts";

const PAGES = 12;

/** A scheduler without quietFor that records every point: the page-by-page path. */
function recording(): Scheduler & { points: string[] } {
  const points: string[] = [];
  return { points, point: (_p, site) => points.push(site), block: NO_PREEMPTION.block };
}

/**
 * A pool whose present pages are not physically in order: pages faulted in a scattered
 * order, some never touched, the last three beyond EOF after a shrink, a SIGBUS handler
 * that maps zeros there, and a private COW mapping of the same file beside it.
 */
function scene(scheduler: Scheduler): { k: Kernel; p: Process; shared: number; priv: number } {
  const k = new Kernel({ scheduler, trace: true });
  const p = k.spawn("reader");
  const fd = p.memfdCreate("pool");
  p.ftruncate(fd, PAGES * PG);
  const bytes = new Uint8Array(PAGES * PG);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 12)) & 0xff;
  p.pwrite(fd, bytes, 0);
  const shared = p.mmap(0, PAGES * PG, RW, MAP.MAP_SHARED, fd, 0);
  const priv = p.mmap(0, PAGES * PG, RW, MAP.MAP_PRIVATE, fd, 0);
  for (const i of [5, 2, 3, 0, 7, 1]) p.load(shared + i * PG, 1);
  p.store(priv + 4 * PG, new Uint8Array([1, 2, 3])); // one private copy in the middle
  p.ftruncate(fd, (PAGES - 3) * PG);
  zeroPageHandler(p);
  return { k, p, shared, priv };
}

/** Everything observable after `run` in a scene under `scheduler`. */
function observe(scheduler: Scheduler, run: (s: ReturnType<typeof scene>) => Uint8Array[]) {
  const s = scene(scheduler);
  const out = run(s);
  return {
    out,
    // (A hex string compares much faster than a typed array in toEqual.)
    hex: out.map((b) => Buffer.from(b).toString("hex")),
    counters: { ...s.p.counters, syscalls: { ...s.p.counters.syscalls } },
    events: s.k.events,
    frames: s.k.frames.getStats(),
  };
}

/** Quiet: a user access must not call its points (syscall entries still do). */
const quiet: Scheduler = {
  point(_p, site) {
    if (site === "load" || site === "store") throw new Error(`a quiet ${site} point was called`);
  },
  quietFor: () => true,
  block: NO_PREEMPTION.block,
};

describe("user access: contiguous runs where the scheduler is quiet", () => {
  const loads = (s: ReturnType<typeof scene>) => {
    const a = new Uint8Array(PAGES * PG - 300);
    s.p.loadInto(s.shared + 100, a); // unaligned, across faults, a SIGBUS and zero pages
    const b = s.p.load(s.priv + 3 * PG - 5, 3 * PG + 10);
    return [a, b];
  };

  it("a load gives the same bytes, faults, signals, counters and events as page by page", () => {
    const slow = recording();
    const fast = observe(quiet, loads);
    const paged = observe(slow, loads);
    expect(fast.hex).toEqual(paged.hex);
    expect(fast.counters).toEqual(paged.counters);
    expect(fast.events).toEqual(paged.events);
    expect(fast.frames).toEqual(paged.frames);
    // The beyond-EOF pages read as the handler's zeros, the rest as the file.
    expect(fast.out[0][PAGES * PG - 301]).toBe(0);
    expect(fast.out[0][0]).toBe((100 * 7) & 0xff);
    expect(fast.counters.sigbus).toBe(3);
  });

  it("page by page, every page touched is one preemption point", () => {
    const slow = recording();
    observe(slow, loads);
    const loadPoints = slow.points.filter((s) => s === "load").length;
    // scene: 6 one-byte loads; then 12 pages (100 bytes in, 200 short of the end) and 5
    // (5 bytes of page 2, pages 3-5, 5 bytes of page 6).
    expect(loadPoints).toBe(6 + 12 + 5);
  });

  it("stores and fills give the same memory and counts as page by page", () => {
    const stores = (s: ReturnType<typeof scene>) => {
      const src = new Uint8Array(5 * PG).map((_, i) => (i * 13) & 0xff);
      s.p.store(s.priv + PG + 17, src); // COW copies and present private pages mixed
      // Present but write-protected entries in physical order: each write must fault.
      s.p.mprotect(s.shared, PAGES * PG, PROT.PROT_READ);
      s.p.mprotect(s.shared, PAGES * PG, RW);
      s.p.store(s.shared + 2 * PG - 9, src.subarray(0, 4 * PG));
      s.p.fill(s.shared + 5 * PG - 9, 3 * PG, 0xa5);
      s.p.store(s.shared + 8 * PG, src.subarray(0, 2 * PG)); // into beyond-EOF zero pages
      return [s.p.load(s.priv, PAGES * PG), s.p.load(s.shared, PAGES * PG)];
    };
    const fast = observe(quiet, stores);
    const paged = observe(recording(), stores);
    expect(fast.hex).toEqual(paged.hex);
    expect(fast.counters).toEqual(paged.counters);
    expect(fast.events).toEqual(paged.events);
    expect(fast.frames).toEqual(paged.frames);
  });

  it("a handler that kills midway leaves the same partial copy either way", () => {
    const dies = (s: ReturnType<typeof scene>) => {
      s.p.sigaction("SIGBUS", { handler: "default" });
      const a = new Uint8Array(PAGES * PG).fill(0xee);
      try {
        s.p.loadInto(s.shared, a);
      } catch (e) {
        if ((e as { name?: string }).name !== "ProcessKilled") throw e;
      }
      return [a];
    };
    const fast = observe(quiet, dies);
    const paged = observe(recording(), dies);
    expect(fast.hex).toEqual(paged.hex);
    expect(fast.out[0][(PAGES - 3) * PG - 1]).not.toBe(0xee); // copied up to the fault
    expect(fast.out[0][(PAGES - 3) * PG]).toBe(0xee); // and not beyond it
    expect(fast.events).toEqual(paged.events);
  });
});

describe("user access: a small load inside one page", () => {
  it("gives the same bytes, faults, signals, counters and events as page by page", () => {
    // Loads of 1-16 bytes at every kind of page of the scene (present in order and not,
    // absent, private copy, beyond EOF under the zero-page handler) and across page ends.
    const small = (s: ReturnType<typeof scene>) => {
      const out: Uint8Array[] = [];
      for (const base of [s.shared, s.priv])
        for (let i = 0; i < PAGES; i++)
          for (const [off, n] of [
            [0, 1],
            [37, 16],
            [PG - 16, 16],
            [PG - 3, 8], // crosses into the next page: the general path
          ]) {
            if (i === PAGES - 1 && off + n > PG) continue;
            out.push(s.p.load(base + i * PG + off, n));
          }
      return out;
    };
    const fast = observe(quiet, small);
    const paged = observe(recording(), small);
    expect(fast.hex).toEqual(paged.hex);
    expect(fast.counters).toEqual(paged.counters);
    expect(fast.events).toEqual(paged.events);
    expect(fast.frames).toEqual(paged.frames);
    expect(fast.counters.sigbus).toBe(6); // the 3 pages beyond EOF, in each mapping
  });

  it("is the same more than 2 and 4 GiB into a large mapping (the offset is no int32)", () => {
    // The small path splits the offset into the VMA with int32 masks and shifts; where it
    // is not an int32 the load takes the general path. Pages 2, 4 and 5 GiB into a 6 GiB
    // shared mapping (only the touched pages take memory), each at 0 and near its end.
    const far = (s: ReturnType<typeof scene>) => {
      const fd = s.p.memfdCreate("big");
      s.p.ftruncate(fd, 6 * 1024 * 1024 * 1024);
      const m = s.p.mmap(0, 6 * 1024 * 1024 * 1024, RW, MAP.MAP_SHARED, fd, 0);
      const out: Uint8Array[] = [];
      for (const gib of [0, 2, 4, 5]) {
        const at = m + gib * 1024 * 1024 * 1024 + 3 * PG;
        s.p.store(at, new Uint8Array([gib + 1, 0x5a]));
        s.p.store(at + PG - 2, new Uint8Array([0xc3, gib + 9]));
        out.push(s.p.load(at, 2), s.p.load(at + PG - 2, 2), s.p.load(at + PG - 1, 1));
      }
      return out;
    };
    const fast = observe(quiet, far);
    const paged = observe(recording(), far);
    expect(fast.hex).toEqual(paged.hex);
    expect(fast.counters).toEqual(paged.counters);
    expect(fast.hex.slice(3, 6)).toEqual(["035a", "c30b", "0b"]);
    expect(fast.hex.slice(9, 12)).toEqual(["065a", "c30e", "0e"]);
  });

  it("reads a page whose frame lies beyond the memory this process last looked at", () => {
    // Process a's view of physical memory is made at its first access. Memory then grows
    // (another process allocates), and MAP_POPULATE maps a page whose frame is above a's
    // old view without an access: the small load must not read it through the stale view.
    const k = new Kernel();
    const a = k.spawn("a");
    const b = k.spawn("b");
    const fd = a.memfdCreate("pool");
    a.ftruncate(fd, 16 * PG);
    a.pwrite(fd, new Uint8Array([7]), 0);
    const m1 = a.mmap(0, 16 * PG, PROT.PROT_READ, MAP.MAP_SHARED, fd, 0);
    expect(a.load(m1, 1)[0]).toBe(7); // a's view: the first 4 MiB
    const anon = b.mmap(0, 1200 * PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    b.fill(anon, 1200 * PG, 1); // memory grows past 4 MiB
    a.pwrite(fd, new Uint8Array([42]), 5 * PG); // cached in a frame above a's view
    a.munmap(m1, 16 * PG);
    const m2 = a.mmap(0, 16 * PG, PROT.PROT_READ, MAP.MAP_SHARED | MAP.MAP_POPULATE, fd, 0);
    const faults = a.counters.minorFaults;
    expect(a.load(m2 + 5 * PG, 1)[0]).toBe(42);
    expect(a.counters.minorFaults).toBe(faults); // present already: no fault
  });
});
