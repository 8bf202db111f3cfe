/**
 * Linux user-space API constants, with the values of the x86_64 uapi headers
 * (include/uapi/linux/memfd.h, mman-common.h, fcntl.h, falloc.h, userfaultfd.h,
 * asm-generic/errno-base.h, siginfo.h). Scenario scripts name flags by these names; the
 * model and the host helper both translate names through this one table.
 *
 * The proposals that never landed (MAP_NOFAULT, MADV_USERFAULT) get values no Linux uses,
 * so a host run can never be mistaken for having them.
 */

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

/**
 * `x % PAGE_SIZE`, the same value for every number (negative, fractional, NaN), without the
 * floating-point fmod call `%` becomes once x is past 2^31, as every user address is: the
 * division by a power of two, the truncation and the product are exact.
 */
export function pageOffset(x: number): number {
  return x - Math.trunc(x * (1 / 4096)) * 4096;
}

export const MFD = {
  MFD_CLOEXEC: 0x1,
  MFD_ALLOW_SEALING: 0x2,
  MFD_HUGETLB: 0x4,
  MFD_NOEXEC_SEAL: 0x8,
  MFD_EXEC: 0x10,
} as const;

export const SEAL = {
  F_SEAL_SEAL: 0x1,
  F_SEAL_SHRINK: 0x2,
  F_SEAL_GROW: 0x4,
  F_SEAL_WRITE: 0x8,
  F_SEAL_FUTURE_WRITE: 0x10,
  F_SEAL_EXEC: 0x20,
} as const;

export const PROT = { PROT_NONE: 0x0, PROT_READ: 0x1, PROT_WRITE: 0x2, PROT_EXEC: 0x4 } as const;

export const MAP = {
  MAP_SHARED: 0x01,
  MAP_PRIVATE: 0x02,
  MAP_SHARED_VALIDATE: 0x03,
  MAP_DROPPABLE: 0x08,
  MAP_TYPE: 0x0f,
  MAP_FIXED: 0x10,
  MAP_ANONYMOUS: 0x20,
  MAP_NORESERVE: 0x4000,
  MAP_POPULATE: 0x8000,
  MAP_FIXED_NOREPLACE: 0x100000,
  /**
   * Proposal (Torvalds, 2021): not in any Linux. 0x200000 is a bit no Linux flag uses (not
   * in LEGACY_MAP_MASK nor the MAP_HUGE_* size bits), so a kernel without the feature
   * ignores it on MAP_PRIVATE and MAP_SHARED_VALIDATE refuses it, as with any unknown flag.
   */
  MAP_NOFAULT: 0x200000,
} as const;

export const MREMAP = { MREMAP_MAYMOVE: 1, MREMAP_FIXED: 2, MREMAP_DONTUNMAP: 4 } as const;

export const MADV = {
  MADV_NORMAL: 0,
  MADV_DONTNEED: 4,
  MADV_REMOVE: 9,
  MADV_DONTFORK: 10,
  MADV_DOFORK: 11,
  MADV_WIPEONFORK: 18,
  MADV_KEEPONFORK: 19,
  MADV_PAGEOUT: 21,
  /** Proposal (Arcangeli, 2014): not in any Linux. */
  MADV_USERFAULT: 0x1000,
} as const;

export const FALLOC = { FALLOC_FL_KEEP_SIZE: 0x1, FALLOC_FL_PUNCH_HOLE: 0x2 } as const;

export const UFFD = {
  UFFDIO_REGISTER_MODE_MISSING: 0x1,
  UFFD_FEATURE_MISSING_SHMEM: 1 << 5,
  UFFD_FEATURE_SIGBUS: 1 << 7,
} as const;

/** The errno values Linux returns, by name. */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  EMFILE: 24,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EPIPE: 32,
  ENOSYS: 38,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
} as const;
export type Errno = keyof typeof ERRNO;

export const SIGNO = { SIGBUS: 7, SIGSEGV: 11 } as const;
export type Signal = keyof typeof SIGNO;

/** si_code values of the synchronous fault signals (include/uapi/asm-generic/siginfo.h). */
export const SI_CODE = { SEGV_MAPERR: 1, SEGV_ACCERR: 2, BUS_ADRERR: 2 } as const;
export type SiCode = "BUS_ADRERR" | "SEGV_MAPERR" | "SEGV_ACCERR";

const FLAG_TABLES: Record<string, Record<string, number>> = {
  ...Object.fromEntries(
    Object.entries({ MFD, SEAL, PROT, MAP, MREMAP, MADV, FALLOC, UFFD }).map(([k, v]) => [k, v]),
  ),
};

/** All named constants, for parsing "MAP_SHARED|MAP_POPULATE" style strings. */
export const NAMED_CONSTANTS: Readonly<Record<string, number>> = Object.assign(
  {},
  ...Object.values(FLAG_TABLES),
);

/**
 * Parses a flag expression: a number, or names joined by "|" ("0" and "" mean none).
 * Throws a TypeError naming the unknown flag, so a typo in a scenario is caught up front.
 */
export function parseFlags(expr: string | number | undefined): number {
  if (expr === undefined || expr === "" || expr === "0") return 0;
  if (typeof expr === "number") return expr;
  let v = 0;
  for (const part of expr.split("|")) {
    const name = part.trim();
    if (/^(0x[0-9a-f]+|\d+)$/i.test(name)) {
      v |= Number(name);
      continue;
    }
    const n = NAMED_CONSTANTS[name];
    if (n === undefined) throw new TypeError(`unknown flag name ${JSON.stringify(name)}`);
    v |= n;
  }
  return v;
}

/** Seal bits as names, in bit order ("0" when none), as F_GET_SEALS results are reported. */
export function sealNames(bits: number): string {
  const names = Object.entries(SEAL)
    .filter(([, b]) => (bits & b) !== 0)
    .map(([n]) => n);
  return names.length ? names.join("|") : "0";
}
