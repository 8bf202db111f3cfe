/**
 * Every syscall is counted, and fails, under its Linux name (the syscall table's, as strace
 * shows it: pread64, not pread; fcntl for the seals; ioctl for the userfaultfd commands).
 * The lab's per-process syscall counts and every ErrnoError's `.syscall` rely on it.
 */
import { describe, expect, it } from "vitest";
import { ErrnoError } from "../shm/errors.ts";
import { FIRST_FD, MAX_FDS } from "../shm/fd-table.ts";
import { MAX_FILE_SIZE } from "../shm/file.ts";
import type { Process } from "../shm/process.ts";
import { FALLOC, MAP, MFD, PROT, SEAL, UFFD } from "../shm/uapi.ts";
import { PG, RW, setup } from "./helpers.ts";

const BAD_FD = 99;

function errorOf(fn: () => unknown): ErrnoError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ErrnoError) return e;
    throw e;
  }
  throw new Error("expected an ErrnoError");
}

/** [Linux name, a call of it on `fd`] */
const ON_FD: [string, (p: Process, fd: number) => unknown][] = [
  ["dup", (p, fd) => p.dup(fd)],
  ["close", (p, fd) => p.close(fd)],
  ["ftruncate", (p, fd) => p.ftruncate(fd, PG)],
  ["fallocate", (p, fd) => p.fallocate(fd, 0, 0, PG)],
  ["fstat", (p, fd) => p.fstatSize(fd)],
  ["fstat", (p, fd) => p.fstatBlocks(fd)],
  ["pread64", (p, fd) => p.pread(fd, 1, 0)],
  ["pread64", (p, fd) => p.preadInto(fd, new Uint8Array(1), 0)],
  ["pwrite64", (p, fd) => p.pwrite(fd, new Uint8Array(1), 0)],
  ["read", (p, fd) => p.read(fd, p.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS), 1)],
  ["write", (p, fd) => p.write(fd, p.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS), 1)],
  ["fcntl", (p, fd) => p.addSeals(fd, 0)],
  ["fcntl", (p, fd) => p.getSeals(fd)],
  ["mmap", (p, fd) => p.mmap(0, PG, PROT.PROT_READ, MAP.MAP_SHARED, fd, 0)],
  ["ioctl", (p, fd) => p.uffdioApi(fd, 0)],
];

describe("syscalls under their Linux names", () => {
  for (const [name, call] of ON_FD) {
    it(`${name}: counted once per call, and EBADF on a closed fd names it`, () => {
      const { a } = setup();
      const before = a.counters.syscalls[name] ?? 0;
      const e = errorOf(() => call(a, BAD_FD));
      expect([e.code, e.syscall]).toEqual(["EBADF", name]);
      expect(a.counters.syscalls[name]).toBe(before + 1);
    });
  }

  it("a memfd's life: memfd_create, ftruncate, fstat, pwrite64, pread64, fcntl, close", () => {
    const { a } = setup();
    const fd = a.memfdCreate("x");
    a.ftruncate(fd, PG);
    a.fstatSize(fd);
    a.pwrite(fd, new Uint8Array([1]), 0);
    a.pread(fd, 1, 0);
    a.getSeals(fd);
    a.close(fd);
    const [r, w] = a.pipe();
    a.dup(r);
    a.close(w);
    expect(a.counters.syscalls).toMatchObject({
      memfd_create: 1,
      ftruncate: 1,
      fstat: 1,
      pwrite64: 1,
      pread64: 1,
      fcntl: 1,
      close: 2,
      pipe: 1,
      dup: 1,
    });
  });

  it("an ioctl on a userfaultfd and a read of its events: ioctl and read", () => {
    const { a } = setup();
    const u = a.userfaultfd();
    a.uffdioApi(u, 0);
    const m = a.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.uffdioRegister(u, m, PG, UFFD.UFFDIO_REGISTER_MODE_MISSING);
    const e = errorOf(() => a.uffdRead(u));
    expect([e.code, e.syscall]).toEqual(["EAGAIN", "read"]);
    expect(a.counters.syscalls).toMatchObject({ userfaultfd: 1, ioctl: 2, read: 1 });
  });
});

describe("RLIMIT_NOFILE (EMFILE)", () => {
  /**
   * Fills the table but for the last `free` descriptors with copies of one memfd (as dup
   * would, without a thousand syscalls each followed by the kernel self-check's walk).
   */
  function fill(p: Process, free: number): void {
    const file = p.fds.get(p.memfdCreate("filler"), "test");
    for (let fd = FIRST_FD + 1; fd < MAX_FDS - free; fd++) p.fds.installAt(fd, file);
  }

  it("memfd_create, dup and pipe are EMFILE on a full table, under their names", () => {
    const { a } = setup();
    fill(a, 0);
    for (const [name, call] of [
      ["memfd_create", () => a.memfdCreate("y")],
      ["dup", () => a.dup(3)],
      ["pipe", () => a.pipe()],
    ] as const) {
      const e = errorOf(call);
      expect([e.code, e.syscall]).toEqual(["EMFILE", name]);
    }
  });

  it("pipe with one free descriptor is EMFILE and consumes none (__do_pipe_flags)", () => {
    // Checked on Linux 6.18: with one slot free, pipe() fails EMFILE and a memfd_create
    // after it gets that slot.
    const { a } = setup();
    fill(a, 1);
    expect(errorOf(() => a.pipe()).code).toBe("EMFILE");
    expect(a.memfdCreate("y")).toBe(MAX_FDS - 1);
  });

  it("pipe with two free descriptors succeeds, the lowest first: read end, then write end", () => {
    const { a } = setup();
    fill(a, 2);
    expect(a.pipe()).toEqual([MAX_FDS - 2, MAX_FDS - 1]);
  });
});

describe("every refusal names the syscall that refused (ErrnoError.syscall, as strace prints it)", () => {
  const anonymous = (p: Process) => p.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
  const gone = (p: Process) => {
    const m = anonymous(p);
    p.munmap(m, PG);
    return m;
  };
  const sealed = (p: Process, seals: number) => {
    const fd = p.memfdCreate("s", MFD.MFD_ALLOW_SEALING);
    p.ftruncate(fd, PG);
    p.addSeals(fd, seals);
    return fd;
  };
  const uffd = (p: Process) => {
    const u = p.userfaultfd();
    p.uffdioApi(u, 0);
    return u;
  };
  const KEEP = FALLOC.FALLOC_FL_KEEP_SIZE;
  const PUNCH = FALLOC.FALLOC_FL_PUNCH_HOLE | KEEP;
  /** [syscall, errno, the call] */
  const REFUSALS: [string, string, (p: Process) => unknown][] = [
    ["memfd_create", "EINVAL", (p) => p.memfdCreate("x", 0x1000)],
    ["memfd_create", "EINVAL", (p) => p.memfdCreate("x", MFD.MFD_EXEC | MFD.MFD_NOEXEC_SEAL)],
    ["memfd_create", "EINVAL", (p) => p.memfdCreate("n".repeat(250))],
    ["ftruncate", "EINVAL", (p) => p.ftruncate(p.memfdCreate("x"), -1)],
    ["ftruncate", "EINVAL", (p) => p.ftruncate(p.pipe()[1], 1)],
    ["ftruncate", "EFBIG", (p) => p.ftruncate(p.memfdCreate("x"), MAX_FILE_SIZE + 1)],
    ["ftruncate", "EPERM", (p) => p.ftruncate(sealed(p, SEAL.F_SEAL_SHRINK), 0)],
    ["fallocate", "EINVAL", (p) => p.fallocate(p.memfdCreate("x"), 0, -1, 1)],
    ["fallocate", "EOPNOTSUPP", (p) => p.fallocate(p.memfdCreate("x"), 0x40, 0, 1)],
    [
      "fallocate",
      "EOPNOTSUPP",
      (p) => p.fallocate(p.memfdCreate("x"), FALLOC.FALLOC_FL_PUNCH_HOLE, 0, 1),
    ],
    ["fallocate", "EBADF", (p) => p.fallocate(p.pipe()[0], 0, 0, 1)],
    ["fallocate", "ESPIPE", (p) => p.fallocate(p.pipe()[1], 0, 0, 1)],
    ["fallocate", "EFBIG", (p) => p.fallocate(p.memfdCreate("x"), KEEP, MAX_FILE_SIZE, 1)],
    ["fallocate", "EPERM", (p) => p.fallocate(sealed(p, SEAL.F_SEAL_WRITE), PUNCH, 0, 1)],
    ["fallocate", "EPERM", (p) => p.fallocate(sealed(p, SEAL.F_SEAL_GROW), 0, 0, 2 * PG)],
    ["pread64", "EINVAL", (p) => p.pread(p.memfdCreate("x"), 1, -1)],
    ["pread64", "EINVAL", (p) => p.pread(p.memfdCreate("x"), -1, 0)],
    ["pread64", "ESPIPE", (p) => p.pread(p.pipe()[0], 1, 0)],
    ["pwrite64", "ESPIPE", (p) => p.pwrite(p.pipe()[1], new Uint8Array(1), 0)],
    ["pwrite64", "EPERM", (p) => p.pwrite(sealed(p, SEAL.F_SEAL_WRITE), new Uint8Array(1), 0)],
    ["pwrite64", "EPERM", (p) => p.pwrite(sealed(p, SEAL.F_SEAL_GROW), new Uint8Array(1), PG)],
    ["read", "EBADF", (p) => p.read(p.pipe()[1], anonymous(p), 1)],
    [
      "read",
      "EFAULT",
      (p) => p.read(sealed(p, 0), gone(p), 1), // a 4 KiB file read into unmapped memory
    ],
    ["write", "EBADF", (p) => p.write(p.pipe()[0], anonymous(p), 1)],
    ["write", "EPERM", (p) => p.write(sealed(p, SEAL.F_SEAL_WRITE), anonymous(p), 1)],
    ["write", "EFAULT", (p) => p.write(p.memfdCreate("x"), gone(p), 1)],
    ["write", "EFAULT", (p) => p.write(p.pipe()[1], gone(p), 1)],
    ["write", "EFAULT", (p) => p.write(p.pipe()[1], gone(p), PG)],
    [
      "write",
      "EPIPE",
      (p) => {
        const [r, w] = p.pipe();
        p.close(r);
        return p.write(w, anonymous(p), 1);
      },
    ],
    ["fcntl", "EPERM", (p) => p.addSeals(p.pipe()[0], SEAL.F_SEAL_SHRINK)],
    ["fcntl", "EINVAL", (p) => p.addSeals(p.memfdCreate("x", MFD.MFD_ALLOW_SEALING), 0x100)],
    ["fcntl", "EINVAL", (p) => p.addSeals(p.pipe()[1], SEAL.F_SEAL_SHRINK)],
    ["fcntl", "EPERM", (p) => p.addSeals(sealed(p, SEAL.F_SEAL_SEAL), SEAL.F_SEAL_GROW)],
    ["fcntl", "EINVAL", (p) => p.getSeals(p.pipe()[0])],
    ["fcntl", "EINVAL", (p) => p.setZeroBeyondEof(p.memfdCreate("x"))],
    ["mmap", "EINVAL", (p) => p.mmap(0, 0, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS)],
    ["mmap", "ENODEV", (p) => p.mmap(0, PG, PROT.PROT_READ, MAP.MAP_PRIVATE, p.pipe()[0], 0)],
    ["munmap", "EINVAL", (p) => p.munmap(1, PG)],
    ["mprotect", "EINVAL", (p) => p.mprotect(1, PG, PROT.PROT_READ)],
    ["madvise", "EINVAL", (p) => p.madvise(1, PG, 4)],
    ["mremap", "EINVAL", (p) => p.mremap(anonymous(p), PG, 2 * PG, 0x100)],
    ["userfaultfd", "EINVAL", (p) => p.userfaultfd(0x10)],
    [
      "ioctl",
      "EINVAL",
      (p) => {
        const u = p.userfaultfd();
        p.uffdioApi(u, 0);
        return p.uffdioApi(u, 0); // UFFDIO_API twice
      },
    ],
    ["ioctl", "EINVAL", (p) => p.uffdioApi(p.userfaultfd(), 1 << 30)],
    ["ioctl", "EINVAL", (p) => p.uffdioRegister(uffd(p), anonymous(p), PG, 0)],
    [
      "ioctl",
      "EINVAL",
      (p) => p.uffdioRegister(uffd(p), anonymous(p), 100, UFFD.UFFDIO_REGISTER_MODE_MISSING),
    ],
    [
      "ioctl",
      "EINVAL",
      (p) => p.uffdioRegister(uffd(p), gone(p), PG, UFFD.UFFDIO_REGISTER_MODE_MISSING),
    ],
    ["ioctl", "EINVAL", (p) => p.uffdioZeropage(uffd(p), anonymous(p) + 8, PG)],
    ["ioctl", "ENOENT", (p) => p.uffdioZeropage(uffd(p), anonymous(p), PG)],
    [
      "ioctl",
      "EEXIST",
      (p) => {
        const u = uffd(p);
        const m = anonymous(p);
        p.uffdioRegister(u, m, PG, UFFD.UFFDIO_REGISTER_MODE_MISSING);
        p.uffdioZeropage(u, m, PG);
        return p.uffdioCopy(u, m, new Uint8Array(PG));
      },
    ],
    ["ioctl", "EINVAL", (p) => p.uffdioZeropage(p.memfdCreate("x"), 0, PG)],
    ["poll", "EINVAL", (p) => p.uffdPending(p.memfdCreate("x"))],
    [
      "ioctl",
      "EINVAL",
      (p) => p.uffdioRegister(p.userfaultfd(), anonymous(p), PG, UFFD.UFFDIO_REGISTER_MODE_MISSING),
    ],
  ];

  for (const [name, code, call] of REFUSALS) {
    it(`${name}: ${code} — ${call.toString().slice(7, 80)}`, () => {
      const { a } = setup();
      const e = errorOf(() => call(a));
      expect([e.code, e.syscall]).toEqual([code, name]);
    });
  }
});
