/**
 * The kernel's self-check (shm/self-check.ts) holds on a busy, healthy kernel, and fires —
 * with a typed error naming the rule — when the state is corrupted on purpose, one rule at
 * a time. Each corruption is what a real model bug would leave behind.
 */
import { describe, expect, it } from "vitest";
import { deviceBuffer, mapDeviceBuffer } from "../shm/device.ts";
import { activePins, pin, unpin } from "../shm/gup.ts";
import { Kernel } from "../shm/kernel.ts";
import type { Process } from "../shm/process.ts";
import {
  type CheckOptions,
  checkAfterEverySyscall,
  checkInvariants,
  KERNEL_INVARIANTS,
  type KernelInvariant,
  KernelInvariantError,
} from "../shm/self-check.ts";
import { MAP, PROT, SEAL } from "../shm/uapi.ts";
import { makePte, PTE_SPECIAL, PTE_WRITE, pteFrame, type Vma } from "../shm/vma.ts";
import { PG } from "./helpers.ts";

const RW = PROT.PROT_READ | PROT.PROT_WRITE;

/** A kernel with one of everything: shared and private file maps, anon, fork, pin, device. */
function busyKernel(): { k: Kernel; a: Process; b: Process; fd: number; shared: number } {
  const k = new Kernel();
  const a = k.spawn("a");
  const fd = a.memfdCreate("pool", 2 /* MFD_ALLOW_SEALING */);
  a.ftruncate(fd, 4 * PG);
  const shared = a.mmap(0, 4 * PG, RW, MAP.MAP_SHARED, fd, 0);
  a.fill(shared, 4 * PG, 0x11);
  const priv = a.mmap(0, 2 * PG, RW, MAP.MAP_PRIVATE, fd, 0);
  a.load(priv, 1);
  a.store(priv + PG, new Uint8Array([9])); // a private COW copy
  const anon = a.mmap(0, 2 * PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
  a.store(anon, new Uint8Array([1]));
  a.load(anon + PG, 1); // the zero page
  const b = a.fork("b");
  const bfd = a.sendFd(fd, b);
  b.mmap(0, PG, PROT.PROT_READ, MAP.MAP_SHARED, bfd, 0);
  b.load(b.mm.vmas.at(-1)!.start, 1);
  pin(a, shared, PG);
  mapDeviceBuffer(a, deviceBuffer(k, "vram", PG), PG, PROT.PROT_READ, MAP.MAP_SHARED);
  return { k, a, b, fd, shared };
}

function expectBroken(k: Kernel, invariant: KernelInvariant, opts?: CheckOptions): void {
  let caught: unknown;
  try {
    checkInvariants(k, opts);
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(KernelInvariantError);
  expect((caught as KernelInvariantError).invariant).toBe(invariant);
  expect((caught as KernelInvariantError).code).toBe(KERNEL_INVARIANTS[invariant]);
}

function vmaOf(p: Process, addr: number): Vma {
  const v = p.mm.find(addr);
  if (!v) throw new Error(`nothing mapped at ${addr}`);
  return v;
}

describe("kernel self-check", () => {
  it("holds on a busy kernel and after every process exits", () => {
    const { k, a, b } = busyKernel();
    expect(() => checkInvariants(k)).not.toThrow();
    b.exit();
    a.exit();
    expect(() => checkInvariants(k)).not.toThrow();
  });

  it("frame-refcount: a refcount bumped by one is caught", () => {
    const { k, a, shared } = busyKernel();
    const f = pteFrame(vmaOf(a, shared).pte(1));
    k.frames.refcount[f]++;
    expectBroken(k, "frame-refcount");
  });

  it("frame-refcount: a page-cache page dropped without its reference is caught", () => {
    const { k, a, fd } = busyKernel();
    const file = a.fds.get(fd, "test").inode as import("../shm/file.ts").ShmemFile;
    a.pwrite(fd, new Uint8Array([1]), 4 * PG); // page 4: in the cache, mapped by nobody
    expect(() => checkInvariants(k)).not.toThrow();
    file.pages.delete(4); // dropped from the cache without a put: its frame now leaks
    expectBroken(k, "frame-refcount");
  });

  it("pte-frame: an entry left pointing at a freed frame is caught", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const m = a.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.store(m, new Uint8Array([1]));
    const v = vmaOf(a, m);
    k.frames.put(pteFrame(v.pte(0))); // freed, entry kept: a use-after-free
    expectBroken(k, "pte-frame");
  });

  it("pte-beyond-eof: a shrink that forgot to zap a mapping is caught", () => {
    const { k, a, fd, shared } = busyKernel();
    const v = vmaOf(a, shared);
    const keep = v.pte(3);
    a.ftruncate(fd, 2 * PG);
    const file = v.file!;
    // Put back the entry and a page for it, as a truncation that skipped the rmap would.
    const f = k.frames.alloc(file.ino);
    k.frames.get(f);
    file.pages.set(3, f);
    v.setPte(3, makePte(f, keep & PTE_WRITE));
    expectBroken(k, "pte-beyond-eof");
  });

  it("pte-write: a private file mapping writing the page cache (COW skipped) is caught", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const fd = a.memfdCreate("f");
    a.ftruncate(fd, PG);
    const m = a.mmap(0, PG, RW, MAP.MAP_PRIVATE, fd, 0);
    a.load(m, 1);
    const v = vmaOf(a, m);
    v.setPte(0, v.pte(0) | PTE_WRITE);
    expectBroken(k, "pte-write");
  });

  it("pte-write: a writable entry under PROT_READ is caught", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const m = a.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.store(m, new Uint8Array([1]));
    vmaOf(a, m).prot = PROT.PROT_READ; // mprotect without change_protection
    expectBroken(k, "pte-write");
  });

  it("pte-source: a zero-beyond-EOF entry left inside i_size after growth is caught", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const fd = a.memfdCreate("f");
    a.ftruncate(fd, 2 * PG);
    const m = a.mmap(0, 2 * PG, PROT.PROT_READ, MAP.MAP_SHARED, fd, 0);
    vmaOf(a, m).setPte(1, makePte(0, PTE_SPECIAL));
    expectBroken(k, "pte-source");
  });

  it("anon-exclusive: an exclusive page shared by fork without clearing the flag is caught", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const m = a.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.store(m, new Uint8Array([1]));
    const b = a.fork("b");
    const f = pteFrame(vmaOf(b, m).pte(0));
    k.frames.flags[f] = 1; // FRAME_ANON_EXCLUSIVE, as a fork that forgot to clear it
    expectBroken(k, "anon-exclusive");
  });

  it("vma-order: overlapping VMAs are caught", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const m = a.mmap(0, 2 * PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.mmap(0, PG, RW, MAP.MAP_SHARED | MAP.MAP_ANONYMOUS);
    a.mm.vmas[0].end = m + PG; // the lower VMA now reaches into the upper one
    expectBroken(k, "vma-order");
  });

  it("pte-outside-vma: an entry left above a shrunk VMA's end is caught", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    // A read-only spacer keeps the mapping from joining the loader's rw-p one above it.
    a.mmap(0, PG, PROT.PROT_READ, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    const m = a.mmap(0, 2 * PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.store(m + PG, new Uint8Array([1]));
    const v = vmaOf(a, m);
    v.end -= PG; // shrunk without zapping page 1 (its frame stays referenced by the entry)
    expectBroken(k, "pte-outside-vma");
  });

  it("rmap: a VMA missing from its file's i_mmap is caught (truncation could not zap it)", () => {
    const { k, a, shared } = busyKernel();
    const v = vmaOf(a, shared);
    v.file!.mappings.delete(v);
    expectBroken(k, "rmap");
  });

  it("rmap: i_mmap_writable out of step with the writable shared mappings is caught", () => {
    const { k, a, shared } = busyKernel();
    vmaOf(a, shared).file!.writableMappings--; // F_SEAL_WRITE would now wrongly succeed
    expectBroken(k, "rmap");
  });

  it("file-refs: an open file's reference count off by one is caught", () => {
    const { k, a, fd } = busyKernel();
    a.fds.get(fd, "test").refs++;
    expectBroken(k, "file-refs");
  });

  it("pins: pin bookkeeping out of step with the pins held is caught", () => {
    const { k, a, shared } = busyKernel();
    const f = pteFrame(vmaOf(a, shared).pte(0));
    k.pinCounts.set(f, (k.pinCounts.get(f) ?? 0) + 1);
    expectBroken(k, "pins");
  });

  it("dead-process: a killed process that keeps a mapping is caught", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    a.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.state = "killed";
    expectBroken(k, "dead-process");
  });

  it("frame-stats: the allocator's in-use count out of step is caught", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const m = a.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.store(m, new Uint8Array([1]));
    const f = pteFrame(vmaOf(a, m).pte(0));
    a.mm.vmas[0].setPte(0, 0);
    k.frames.refcount[f] = 0; // freed behind the allocator's back
    expectBroken(k, "frame-stats");
  });

  it("orphan-file: a file whose last fd and mapping are gone but keeps a page is caught", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const fd = a.memfdCreate("f");
    a.ftruncate(fd, PG);
    const file = a.fds.get(fd, "test").inode as import("../shm/file.ts").ShmemFile;
    a.fill(a.mmap(0, PG, RW, MAP.MAP_SHARED, fd, 0), PG, 1);
    checkInvariants(k); // the check learns the file while it is reachable
    a.exit();
    expect(file.pages.size).toBe(0); // evicted with its last reference (shmem_evict_inode)
    expect(() => checkInvariants(k)).not.toThrow();
    file.pages.set(0, k.frames.alloc(file.ino)); // a page that outlived the inode
    expectBroken(k, "orphan-file");
    expect(() => checkInvariants(k, { orphanFiles: false })).not.toThrow();
  });

  it("orphan-file: an inode's count of open descriptions out of step is caught", () => {
    const { k, a, fd } = busyKernel();
    (a.fds.get(fd, "test").inode as import("../shm/file.ts").ShmemFile).openFiles++;
    expectBroken(k, "orphan-file");
  });

  it("vma-tree: a gap left stale after a VMA grew behind the tree's back is caught", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const m = a.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    vmaOf(a, m).resize(m + 2 * PG); // Vma.resize without AddressSpace.resized
    expectBroken(k, "vma-tree");
  });

  // With SHMLAB_KERNEL_CHECKS=1 the suite-wide wrap (test/setup) would rightly fail this
  // test for its deliberate corruption; the wrap is the same function, tested here alone.
  it.skipIf(["1", "all"].includes(process.env.SHMLAB_KERNEL_CHECKS ?? ""))(
    "after every syscall: a wrapped kernel reports a corruption at the next syscall, even if the caller swallows it (skipped under the suite-wide checks)",
    () => {
      const seen: KernelInvariantError[] = [];
      const undo = checkAfterEverySyscall((e) => seen.push(e));
      try {
        const k = new Kernel();
        const a = k.spawn("a");
        const fd = a.memfdCreate("f", 2);
        a.ftruncate(fd, PG);
        a.addSeals(fd, SEAL.F_SEAL_GROW);
        expect(seen).toHaveLength(0);
        a.fds.get(fd, "test").refs += 2;
        try {
          a.getSeals(fd);
        } catch (e) {
          if (!(e instanceof KernelInvariantError)) throw e; // a policy's broad catch
        }
        expect(seen.map((e) => e.invariant)).toEqual(["file-refs"]);
      } finally {
        undo();
      }
    },
  );

  it("holds after the pin is released and the child exits", () => {
    const { k, b } = busyKernel();
    expect(activePins(k)).toHaveLength(1);
    for (const pinned of activePins(k)) unpin(k, pinned);
    b.exit();
    expect(k.pinCounts.size).toBe(0);
    expect(() => checkInvariants(k)).not.toThrow();
  });
});
