import { describe, expect, it } from "vitest";
import { ProcessKilled } from "../shm/errors.ts";
import { MADV, MAP, MREMAP, PROT, SEAL } from "../shm/uapi.ts";
import { errnoOf, PG, RW, setup, sharedPool, unmapLoader } from "./helpers.ts";

const ANON = MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS;

describe("memory syscalls: Linux's errno for bad arguments", () => {
  it("mmap", () => {
    const { a } = setup();
    const fd = a.memfdCreate("x");
    a.ftruncate(fd, PG);
    expect(errnoOf(() => a.mmap(0, PG, RW, MAP.MAP_SHARED, fd, 100))).toBe("EINVAL");
    expect(errnoOf(() => a.mmap(0, 0, RW, MAP.MAP_SHARED, fd, 0))).toBe("EINVAL");
    expect(errnoOf(() => a.mmap(0, PG, RW, MAP.MAP_SHARED, 77, 0))).toBe("EBADF");
    expect(errnoOf(() => a.mmap(0, PG, RW, 0, fd, 0))).toBe("EINVAL");
    expect(errnoOf(() => a.mmap(0x1001, PG, RW, MAP.MAP_SHARED | MAP.MAP_FIXED, fd, 0))).toBe(
      "EINVAL",
    );
    const [r] = a.pipe();
    // do_mmap: the read end passes the access checks and fails on "!file->f_op->mmap".
    expect(errnoOf(() => a.mmap(0, PG, PROT.PROT_READ, MAP.MAP_SHARED, r, 0))).toBe("ENODEV");
    const w = a.pipe()[1];
    expect(errnoOf(() => a.mmap(0, PG, PROT.PROT_WRITE, MAP.MAP_PRIVATE, w, 0))).toBe("EACCES");
    expect(errnoOf(() => a.mmap(0, PG, RW, MAP.MAP_DROPPABLE, fd, 0))).toBe("EINVAL");
    expect(errnoOf(() => a.mmap(0, PG, RW, MAP.MAP_DROPPABLE | MAP.MAP_ANONYMOUS))).toBe("ok");
  });

  it("mmap of a write-sealed memfd: shared writable EPERM, read-only fine but not upgradable, private writable fine", () => {
    const { a } = setup();
    const fd = a.memfdCreate("x", 2);
    a.ftruncate(fd, PG);
    a.addSeals(fd, SEAL.F_SEAL_WRITE);
    expect(errnoOf(() => a.mmap(0, PG, RW, MAP.MAP_SHARED, fd, 0))).toBe("EPERM");
    const ro = a.mmap(0, PG, PROT.PROT_READ, MAP.MAP_SHARED, fd, 0);
    expect(errnoOf(() => a.mprotect(ro, PG, RW))).toBe("EACCES");
    const priv = a.mmap(0, PG, RW, MAP.MAP_PRIVATE, fd, 0);
    a.fill(priv, 4, 9);
    expect(a.pread(fd, 1, 0)[0]).toBe(0);
  });

  it("F_SEAL_FUTURE_WRITE: existing writable maps keep working, new shared writable ones fail (rule 11)", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, PG);
    a.addSeals(fd, SEAL.F_SEAL_FUTURE_WRITE);
    a.fill(m, 4, 3);
    expect(a.pread(fd, 1, 0)[0]).toBe(3);
    expect(errnoOf(() => a.mmap(0, PG, RW, MAP.MAP_SHARED, fd, 0))).toBe("EPERM");
    expect(errnoOf(() => a.mmap(0, PG, PROT.PROT_READ, MAP.MAP_SHARED, fd, 0))).toBe("ok");
  });

  it("munmap and mprotect", () => {
    const { a } = setup();
    unmapLoader(a); // else m joins the loader's rw-p mapping above it, and 4 pages are mapped
    const m = a.mmap(0, 2 * PG, RW, ANON);
    expect(errnoOf(() => a.munmap(m + 1, PG))).toBe("EINVAL");
    expect(errnoOf(() => a.munmap(m, 0))).toBe("EINVAL");
    expect(errnoOf(() => a.mprotect(m + 1, PG, RW))).toBe("EINVAL");
    expect(errnoOf(() => a.mprotect(m, 4 * PG, RW))).toBe("ENOMEM");
    a.mprotect(m, PG, PROT.PROT_READ);
    expect(() => a.fill(m, 1, 1)).toThrow(ProcessKilled);
    expect(a.killedBy?.info?.code).toBe("SEGV_ACCERR");
  });

  it("an access past the end of the VMA is SIGSEGV, not SIGBUS (rule 5)", () => {
    const { a } = setup();
    unmapLoader(a); // nothing above the pool (test/loader-image reads the loader's memory)
    const [, m] = sharedPool(a, PG);
    expect(() => a.load(m + PG, 1)).toThrow(ProcessKilled);
    expect(a.killedBy?.info).toMatchObject({ signo: "SIGSEGV", code: "SEGV_MAPERR" });
  });

  it("mremap grows in place or moves with MAYMOVE, keeping contents", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, 4 * PG);
    a.fill(m, PG, 5);
    a.munmap(m + PG, 3 * PG);
    const blocker = a.mmap(m + 2 * PG, PG, RW, ANON | MAP.MAP_FIXED);
    expect(blocker).toBe(m + 2 * PG);
    expect(errnoOf(() => a.mremap(m, PG, 4 * PG, 0))).toBe("ENOMEM");
    const n = a.mremap(m, PG, 4 * PG, MREMAP.MREMAP_MAYMOVE);
    expect(n).not.toBe(m);
    expect(a.load(n, 1)[0]).toBe(5);
    expect(a.load(n + 3 * PG, 1)[0]).toBe(0);
    expect(errnoOf(() => a.mremap(m + 7, PG, PG, 0))).toBe("EINVAL");
    expect(errnoOf(() => a.mremap(m, PG, 2 * PG, MREMAP.MREMAP_FIXED))).toBe("EINVAL");
    void fd;
  });

  it("madvise: DONTNEED drops private copies so the file shows through again (rule 13)", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, PG);
    a.fill(m, 1, 1);
    const priv = a.mmap(0, PG, RW, MAP.MAP_PRIVATE, fd, 0);
    a.fill(priv, 1, 2);
    a.fill(m, 1, 3);
    expect(a.load(priv, 1)[0]).toBe(2);
    a.madvise(priv, PG, MADV.MADV_DONTNEED);
    expect(a.load(priv, 1)[0]).toBe(3);
  });

  it("madvise errors: WIPEONFORK on a file mapping, REMOVE on a private one, unmapped range", () => {
    const { a } = setup();
    unmapLoader(a); // the unmapped range: above the pool
    const [fd, m] = sharedPool(a, PG);
    const priv = a.mmap(0, PG, RW, MAP.MAP_PRIVATE, fd, 0);
    expect(errnoOf(() => a.madvise(m, PG, MADV.MADV_WIPEONFORK))).toBe("EINVAL");
    expect(errnoOf(() => a.madvise(priv, PG, MADV.MADV_REMOVE))).toBe("EACCES");
    expect(errnoOf(() => a.madvise(m + 1, PG, MADV.MADV_DONTNEED))).toBe("EINVAL");
    expect(errnoOf(() => a.madvise(m, 3 * PG, MADV.MADV_DONTNEED))).toBe("ENOMEM");
    expect(errnoOf(() => a.madvise(m, PG, 12345))).toBe("EINVAL");
  });

  it("a private file mapping sees the file's later changes until it writes (rule 13)", () => {
    const { a } = setup();
    const [, m, priv] = (() => {
      const [fd, mm] = sharedPool(a, PG);
      return [fd, mm, a.mmap(0, PG, RW, MAP.MAP_PRIVATE, fd, 0)];
    })();
    a.fill(m, 1, 7);
    expect(a.load(priv, 1)[0]).toBe(7);
    a.fill(m, 1, 8);
    expect(a.load(priv, 1)[0]).toBe(8);
    a.fill(priv, 1, 9);
    a.fill(m, 1, 10);
    expect(a.load(priv, 1)[0]).toBe(9);
  });

  it("MAP_POPULATE prefaults, and does not prevent SIGBUS after a shrink (rule 2)", () => {
    const { a } = setup();
    const fd = a.memfdCreate("x");
    a.ftruncate(fd, 2 * PG);
    const m = a.mmap(0, 2 * PG, PROT.PROT_READ, MAP.MAP_SHARED | MAP.MAP_POPULATE, fd, 0);
    expect(a.counters.minorFaults).toBe(2);
    a.ftruncate(fd, 0);
    expect(() => a.load(m, 1)).toThrow(ProcessKilled);
  });

  it("memory past the limit is ENOMEM for syscalls and an OOM kill for faults, never a Node crash", () => {
    const { a } = setup({ memoryLimit: 16 * PG });
    const fd = a.memfdCreate("x");
    expect(errnoOf(() => a.fallocate(fd, 0, 0, 64 * PG))).toBe("ENOMEM");
    const m = a.mmap(0, 64 * PG, RW, ANON);
    expect(() => a.fill(m, 64 * PG, 1)).toThrow(ProcessKilled);
    expect(a.killedBy?.reason).toBe("oom");
  });

  it("a 1 GiB pool costs nothing until touched", () => {
    const { k, a } = setup();
    const [, m] = sharedPool(a, 1024 * 1024 * 1024);
    expect(k.frames.getStats().inUse).toBe(0);
    a.fill(m + 512 * 1024 * 1024, 1, 1);
    expect(k.frames.getStats().inUse).toBe(1);
  });
});
