import { describe, expect, it } from "vitest";
import { MAX_FILE_SIZE } from "../shm/file.ts";
import { FALLOC, MAP, MFD, SEAL, sealNames } from "../shm/uapi.ts";
import { errnoOf, PG, RW, setup, sharedPool } from "./helpers.ts";

describe("file syscalls: Linux's errno for bad arguments", () => {
  it("memfd_create", () => {
    const { a } = setup();
    expect(errnoOf(() => a.memfdCreate("x", 0x1000))).toBe("EINVAL");
    expect(errnoOf(() => a.memfdCreate("x", MFD.MFD_EXEC | MFD.MFD_NOEXEC_SEAL))).toBe("EINVAL");
    expect(errnoOf(() => a.memfdCreate("n".repeat(250)))).toBe("EINVAL");
    expect(a.memfdCreate("first")).toBe(3);
  });

  it("ftruncate", () => {
    const { a } = setup();
    const fd = a.memfdCreate("x");
    expect(errnoOf(() => a.ftruncate(fd, -1))).toBe("EINVAL");
    expect(errnoOf(() => a.ftruncate(99, 1))).toBe("EBADF");
    const [r, w] = a.pipe();
    expect(errnoOf(() => a.ftruncate(r, 1))).toBe("EINVAL");
    expect(errnoOf(() => a.ftruncate(w, 1))).toBe("EINVAL");
  });

  it("fallocate", () => {
    const { a } = setup();
    const fd = a.memfdCreate("x");
    a.ftruncate(fd, PG);
    expect(errnoOf(() => a.fallocate(fd, FALLOC.FALLOC_FL_PUNCH_HOLE, 0, PG))).toBe("EOPNOTSUPP");
    expect(errnoOf(() => a.fallocate(fd, 0, -1, PG))).toBe("EINVAL");
    expect(errnoOf(() => a.fallocate(fd, 0, 0, 0))).toBe("EINVAL");
    expect(errnoOf(() => a.fallocate(fd, 0x40, 0, 1))).toBe("EOPNOTSUPP");
    const [, w] = a.pipe();
    expect(errnoOf(() => a.fallocate(w, 0, 0, 1))).toBe("ESPIPE");
    a.fallocate(fd, 0, 0, 3 * PG);
    expect(a.fstatSize(fd)).toBe(3 * PG);
    a.fallocate(fd, FALLOC.FALLOC_FL_KEEP_SIZE, 0, 5 * PG);
    expect(a.fstatSize(fd)).toBe(3 * PG);
  });

  it("pread and pwrite never cross EOF on reads, and refuse pipes", () => {
    const { a } = setup();
    const fd = a.memfdCreate("x");
    a.pwrite(fd, new Uint8Array([1, 2, 3]), 0);
    expect(a.pread(fd, 10, 0)).toEqual(new Uint8Array([1, 2, 3]));
    expect(a.pread(fd, 10, 3).length).toBe(0);
    expect(errnoOf(() => a.pread(fd, 1, -1))).toBe("EINVAL");
    const [r] = a.pipe();
    expect(errnoOf(() => a.pread(r, 1, 0))).toBe("ESPIPE");
  });

  it("preadInto fills the caller's buffer: holes as zero, a short count at EOF", () => {
    const { a } = setup();
    const fd = a.memfdCreate("x");
    a.ftruncate(fd, 2 * PG + 10);
    a.pwrite(fd, new Uint8Array([7, 7]), 2 * PG); // page 2 present, pages 0-1 holes
    const dst = new Uint8Array(3 * PG).fill(0xee);
    expect(a.preadInto(fd, dst, 0)).toBe(2 * PG + 10);
    expect(dst.subarray(0, 2 * PG).every((b) => b === 0)).toBe(true);
    expect([...dst.subarray(2 * PG, 2 * PG + 3)]).toEqual([7, 7, 0]);
    expect(dst[2 * PG + 10]).toBe(0xee); // untouched past EOF
    expect(errnoOf(() => a.preadInto(fd, dst, -1))).toBe("EINVAL");
  });

  it("seals: F_SEAL_SEAL by default, SHRINK and GROW independent, SEAL final (rules 8, 9, 12)", () => {
    const { a } = setup();
    const plain = a.memfdCreate("plain");
    expect(sealNames(a.getSeals(plain))).toBe("F_SEAL_SEAL");
    expect(errnoOf(() => a.addSeals(plain, SEAL.F_SEAL_SHRINK))).toBe("EPERM");
    const fd = a.memfdCreate("s", MFD.MFD_ALLOW_SEALING);
    a.ftruncate(fd, 2 * PG);
    a.addSeals(fd, SEAL.F_SEAL_SHRINK);
    expect(errnoOf(() => a.ftruncate(fd, PG))).toBe("EPERM");
    a.ftruncate(fd, 3 * PG);
    a.addSeals(fd, SEAL.F_SEAL_GROW);
    expect(errnoOf(() => a.ftruncate(fd, 4 * PG))).toBe("EPERM");
    expect(errnoOf(() => a.addSeals(fd, 0x100))).toBe("EINVAL");
    a.addSeals(fd, SEAL.F_SEAL_SEAL);
    expect(errnoOf(() => a.addSeals(fd, SEAL.F_SEAL_WRITE))).toBe("EPERM");
    const [, w] = a.pipe();
    expect(errnoOf(() => a.getSeals(w))).toBe("EINVAL");
  });

  it("F_SEAL_WRITE: EBUSY while a writable shared mapping exists, then write and punch are EPERM (rule 10)", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, PG);
    expect(errnoOf(() => a.addSeals(fd, SEAL.F_SEAL_WRITE))).toBe("EBUSY");
    a.munmap(m, PG);
    a.addSeals(fd, SEAL.F_SEAL_WRITE);
    expect(errnoOf(() => a.pwrite(fd, new Uint8Array(1), 0))).toBe("EPERM");
    expect(
      errnoOf(() =>
        a.fallocate(fd, FALLOC.FALLOC_FL_PUNCH_HOLE | FALLOC.FALLOC_FL_KEEP_SIZE, 0, 1),
      ),
    ).toBe("EPERM");
  });

  it("MFD_NOEXEC_SEAL allows sealing and starts with F_SEAL_EXEC", () => {
    const { a } = setup();
    const fd = a.memfdCreate("x", MFD.MFD_NOEXEC_SEAL);
    expect(sealNames(a.getSeals(fd))).toBe("F_SEAL_EXEC");
    a.addSeals(fd, SEAL.F_SEAL_SHRINK);
  });

  it("close and dup share the open file; EBADF after close", () => {
    const { a } = setup();
    const fd = a.memfdCreate("x");
    const d = a.dup(fd);
    a.close(fd);
    a.ftruncate(d, 10);
    expect(errnoOf(() => a.close(fd))).toBe("EBADF");
    expect(a.fstatSize(d)).toBe(10);
  });
});

describe("file syscalls: boundaries Linux draws", () => {
  it("a memfd name that is not a string is EINVAL, never a crash", () => {
    const { a } = setup();
    expect(errnoOf(() => a.memfdCreate(42 as unknown as string))).toBe("EINVAL");
  });

  it("ftruncate and fallocate: EFBIG only strictly past the largest size (inode_newsize_ok: offset > limit)", () => {
    const { a } = setup();
    const fd = a.memfdCreate("x");
    a.ftruncate(fd, MAX_FILE_SIZE); // sparse: no page is allocated
    expect(a.fstatSize(fd)).toBe(MAX_FILE_SIZE);
    expect(errnoOf(() => a.ftruncate(fd, MAX_FILE_SIZE + 1))).toBe("EFBIG");
    const g = a.memfdCreate("y");
    // vfs_fallocate: "(offset + len) > inode->i_sb->s_maxbytes" is EFBIG; equal is not.
    expect(
      errnoOf(() => a.fallocate(g, FALLOC.FALLOC_FL_KEEP_SIZE, MAX_FILE_SIZE - PG, PG + 1)),
    ).toBe("EFBIG");
    expect(errnoOf(() => a.fallocate(g, FALLOC.FALLOC_FL_KEEP_SIZE, MAX_FILE_SIZE, 1))).toBe(
      "EFBIG",
    );
    a.fallocate(g, FALLOC.FALLOC_FL_KEEP_SIZE, MAX_FILE_SIZE - PG, PG);
    expect(a.fstatSize(g)).toBe(0);
    expect(a.fstatBlocks(g)).toBe(PG / 512);
  });

  it("ftruncate to the current size is allowed under F_SEAL_SHRINK and F_SEAL_GROW (shmem_setattr compares)", () => {
    const { a } = setup();
    const fd = a.memfdCreate("x", MFD.MFD_ALLOW_SEALING);
    a.ftruncate(fd, PG);
    a.addSeals(fd, SEAL.F_SEAL_SHRINK | SEAL.F_SEAL_GROW);
    a.ftruncate(fd, PG);
    expect(a.fstatSize(fd)).toBe(PG);
    expect(errnoOf(() => a.ftruncate(fd, PG - 1))).toBe("EPERM");
    expect(errnoOf(() => a.ftruncate(fd, PG + 1))).toBe("EPERM");
  });

  it("fallocate on a pipe's read end is EBADF (not open for writing is checked before S_ISFIFO)", () => {
    // vfs_fallocate: "if (!(file->f_mode & FMODE_WRITE)) return -EBADF;" then ESPIPE.
    const { a } = setup();
    const [r, w] = a.pipe();
    expect(errnoOf(() => a.fallocate(r, 0, 0, PG))).toBe("EBADF");
    expect(errnoOf(() => a.fallocate(w, 0, 0, PG))).toBe("ESPIPE");
  });

  it("fstat of a pipe: size 0, no blocks", () => {
    const { a } = setup();
    const [r, w] = a.pipe();
    const m = a.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.write(w, m, 100);
    expect([a.fstatSize(r), a.fstatBlocks(r)]).toEqual([0, 0]);
  });

  it("pread64 with a negative count is EINVAL (rw_verify_area: (ssize_t)count < 0)", () => {
    const { a } = setup();
    const fd = a.memfdCreate("x");
    a.ftruncate(fd, PG);
    expect(errnoOf(() => a.pread(fd, -1, 0))).toBe("EINVAL");
  });

  it("preadInto zeroes a hole at the end of the range too, and copies a present page at its offset", () => {
    const { a } = setup();
    const fd = a.memfdCreate("x");
    a.ftruncate(fd, 2 * PG);
    a.pwrite(fd, new Uint8Array([1, 2, 3]), PG - 2); // bytes 4094..4096: pages 0 and 1
    a.fallocate(fd, FALLOC.FALLOC_FL_PUNCH_HOLE | FALLOC.FALLOC_FL_KEEP_SIZE, PG, PG);
    const dst = new Uint8Array(2 * PG).fill(0xee);
    expect(a.preadInto(fd, dst, 0)).toBe(2 * PG);
    expect([...dst.subarray(PG - 3, PG + 1)]).toEqual([0, 1, 2, 0]); // page 1 is a hole now
    expect(dst.subarray(PG).every((b) => b === 0)).toBe(true);
  });

  it("pwrite at an offset inside a page lands at that offset, across a page boundary", () => {
    const { a } = setup();
    const fd = a.memfdCreate("x");
    a.pwrite(fd, new Uint8Array([9, 8, 7, 6]), 2 * PG - 2);
    expect(a.fstatSize(fd)).toBe(2 * PG + 2);
    expect([...a.pread(fd, 6, 2 * PG - 3)]).toEqual([0, 9, 8, 7, 6]);
    expect(a.pread(fd, 2 * PG - 2, 0).every((b) => b === 0)).toBe(true);
  });

  it("write and read advance the file position; read at EOF returns 0 without touching memory", () => {
    const { a } = setup();
    const fd = a.memfdCreate("x");
    const m = a.mmap(0, 2 * PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.store(m, new Uint8Array([1, 2, 3, 4]));
    expect(a.write(fd, m, 2)).toBe(2);
    expect(a.write(fd, m + 2, 2)).toBe(2);
    expect([...a.pread(fd, 4, 0)]).toEqual([1, 2, 3, 4]);
    a.munmap(m + PG, PG);
    // The file position is 4 = EOF: nothing to copy, so an unmapped buffer is no EFAULT.
    expect(a.read(fd, m + PG, 10)).toBe(0);
  });

  it("a write that runs out of memory midway returns the bytes written; with none written, ENOMEM", () => {
    const { a } = setup({ memoryLimit: 64 * PG });
    const fd = a.memfdCreate("x");
    const n = a.pwrite(fd, new Uint8Array(128 * PG).fill(1), 0);
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThan(128 * PG);
    expect(n % PG).toBe(0);
    expect(a.fstatSize(fd)).toBe(n);
    expect(errnoOf(() => a.pwrite(fd, new Uint8Array(PG), n))).toBe("ENOMEM");
  });

  it("the kernel's copies are counted in bytes (bytesKernelCopied, the lab's copy cost)", () => {
    const { a } = setup();
    const fd = a.memfdCreate("x");
    const c = () => a.counters.bytesKernelCopied;
    a.pwrite(fd, new Uint8Array(300), 0);
    expect(c()).toBe(300);
    a.pread(fd, 1000, 100); // 200 bytes before EOF
    expect(c()).toBe(500);
    const [r, w] = a.pipe();
    const m = a.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.write(w, m, 50);
    expect(c()).toBe(550);
    a.read(r, m, 50);
    expect(c()).toBe(600);
  });

  it("the kernel's event log records truncations, holes and seals with their arguments", () => {
    const { k, a } = setup({ trace: true });
    const fd = a.memfdCreate("x", MFD.MFD_ALLOW_SEALING);
    a.ftruncate(fd, 2 * PG);
    a.fallocate(fd, FALLOC.FALLOC_FL_PUNCH_HOLE | FALLOC.FALLOC_FL_KEEP_SIZE, 0, PG);
    a.addSeals(fd, SEAL.F_SEAL_GROW);
    const ino = (k.events ?? []).find((e) => e.kind === "ftruncate")?.detail.ino;
    const mine = (k.events ?? []).filter((e) => e.pid === a.pid).map((e) => [e.kind, e.detail]);
    expect(mine).toEqual([
      ["ftruncate", { ino, from: 0, to: 2 * PG }],
      ["punch-hole", { ino, offset: 0, length: PG }],
      ["add-seals", { ino, seals: SEAL.F_SEAL_GROW }],
    ]);
    expect(typeof ino).toBe("number");
  });
});
