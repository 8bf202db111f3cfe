import { describe, expect, it } from "vitest";
import { FALLOC, MFD, SEAL, sealNames } from "../shm/uapi.ts";
import { errnoOf, PG, setup, sharedPool } from "./helpers.ts";

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
