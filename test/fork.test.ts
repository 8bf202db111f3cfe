import { describe, expect, it } from "vitest";
import { deviceBuffer, mapDeviceBuffer } from "../shm/device.ts";
import { ProcessKilled } from "../shm/errors.ts";
import { MADV, MAP } from "../shm/uapi.ts";
import { errnoOf, PG, RW, setup, sharedPool } from "./helpers.ts";

const ANON = MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS;

describe("fork (rule 14)", () => {
  it("MAP_SHARED stays shared between parent and child", () => {
    const { a } = setup();
    const [, m] = sharedPool(a, PG);
    const c = a.fork("c");
    c.fill(m, 1, 6);
    expect(a.load(m, 1)[0]).toBe(6);
  });

  it("MAP_PRIVATE becomes copy-on-write in both", () => {
    const { a } = setup();
    const m = a.mmap(0, PG, RW, ANON);
    a.fill(m, 1, 1);
    const c = a.fork("c");
    c.fill(m, 1, 2);
    a.fill(m, 1, 3);
    expect(c.load(m, 1)[0]).toBe(2);
    expect(a.load(m, 1)[0]).toBe(3);
    expect(a.counters.cowCopies + c.counters.cowCopies).toBe(1); // the last holder reuses its page
  });

  it("WIPEONFORK reads zero in the child; DONTFORK is absent there (SIGSEGV)", () => {
    const { a } = setup();
    const w = a.mmap(0, PG, RW, ANON);
    const d = a.mmap(0, PG, RW, ANON);
    a.fill(w, 1, 1);
    a.fill(d, 1, 1);
    a.madvise(w, PG, MADV.MADV_WIPEONFORK);
    a.madvise(d, PG, MADV.MADV_DONTFORK);
    const c = a.fork("c");
    expect(c.load(w, 1)[0]).toBe(0);
    expect(a.load(w, 1)[0]).toBe(1);
    expect(() => c.load(d, 1)).toThrow(ProcessKilled);
    expect(c.killedBy?.info?.signo).toBe("SIGSEGV");
  });

  it("the child's fds are the parent's, number for number; a child's truncate hits the parent", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, 2 * PG);
    const c = a.fork("c");
    c.ftruncate(fd, 0);
    expect(() => a.load(m, 1)).toThrow(ProcessKilled);
    expect(errnoOf(() => c.close(fd))).toBe("ok");
  });

  it("a private file mapping's COW copy, shared after fork, is zapped in both by truncation", () => {
    const { a } = setup();
    const [fd] = sharedPool(a, PG);
    const p = a.mmap(0, PG, RW, MAP.MAP_PRIVATE, fd, 0);
    a.fill(p, 1, 9);
    const c = a.fork("c");
    a.ftruncate(fd, 0);
    expect(() => c.load(p, 1)).toThrow(ProcessKilled);
    expect(() => a.load(p, 1)).toThrow(ProcessKilled);
  });

  // mm/memory.c vma_needs_copy: copy_page_range copies a VMA's entries only for uffd-wp,
  // VM_PFNMAP/VM_MIXEDMAP, or "if (src_vma->anon_vma) return true"; the host's side of the
  // anon_vma rule is scenarios/fork/private-file-anon-vma-copies-cache-ptes.
  it("a private file mapping's page-cache entries are copied once it has an anon_vma, not before", () => {
    const { k, a } = setup();
    const [fd] = sharedPool(a, 2 * PG);
    const cowed = a.mmap(0, 2 * PG, RW, MAP.MAP_PRIVATE, fd, 0);
    const clean = a.mmap(0, 2 * PG, RW, MAP.MAP_PRIVATE, fd, 0);
    a.fill(cowed, 1, 1);
    a.load(cowed + PG, 1);
    a.load(clean + PG, 1);
    const cache = a.mm.find(clean)!.file!.pages.get(1)!;
    const refs = k.frames.refs(cache);
    const c = a.fork("c");
    expect(k.frames.refs(cache)).toBe(refs + 1); // the child's copied entry holds its own
    const before = c.counters.minorFaults;
    expect(c.load(cowed + PG, 1)[0]).toBe(0);
    expect(c.counters.minorFaults - before).toBe(0);
    c.load(clean + PG, 1);
    expect(c.counters.minorFaults - before).toBe(1);
    // anon_vma_fork gave the child's VMA an anon_vma of its own: its fork copies them too.
    const g = c.fork("g");
    expect(g.load(cowed + PG, 1)[0]).toBe(0);
    expect(g.counters.minorFaults).toBe(0);
    c.fill(cowed + PG, 1, 7); // read-only in the child: a COW fault, the file keeps its byte
    expect(a.load(cowed + PG, 1)[0]).toBe(0);
    expect(c.counters.minorFaults - before).toBe(2);
  });

  it("VM_PFNMAP entries are copied at fork, shared and private: the child reads without a fault", () => {
    const { k, a } = setup();
    const dev = deviceBuffer(k, "vram", PG, 5);
    const shared = mapDeviceBuffer(a, dev, PG, RW, MAP.MAP_SHARED);
    const priv = mapDeviceBuffer(a, dev, PG, RW, MAP.MAP_PRIVATE);
    a.load(shared, 1);
    a.load(priv, 1);
    const c = a.fork("c");
    const before = c.counters.minorFaults;
    expect(c.load(shared, 1)[0]).toBe(5);
    expect(c.load(priv, 1)[0]).toBe(5);
    expect(c.counters.minorFaults - before).toBe(0);
    c.fill(shared, 1, 6); // still writable in the child: shared, no COW
    expect(a.load(shared, 1)[0]).toBe(6);
    expect(c.counters.minorFaults - before).toBe(0);
  });
});
