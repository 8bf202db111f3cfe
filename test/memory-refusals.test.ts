/**
 * Every refusal of the memory syscalls, one case each: the errno Linux returns and the
 * syscall it is counted under (the syscall table's name; the lab's expected-error tables and
 * the per-process counts key on it). The errno of each case is the kernel function's, named;
 * the host-runnable ones are also scenarios held to the host (scenarios/mmap-errors, mremap).
 */
import { describe, expect, it } from "vitest";
import { TASK_SIZE } from "../shm/address-space.ts";
import { deviceBuffer, mapDeviceBuffer } from "../shm/device.ts";
import { ErrnoError } from "../shm/errors.ts";
import type { KernelOptions } from "../shm/kernel.ts";
import type { Process } from "../shm/process.ts";
import { MADV, MAP, MREMAP, PROT, SEAL } from "../shm/uapi.ts";
import { PG, RW, setup, sharedPool, unmapLoader } from "./helpers.ts";

const ANON = MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS;
const R = PROT.PROT_READ;
const FIXED = MREMAP.MREMAP_MAYMOVE | MREMAP.MREMAP_FIXED;

interface Case {
  why: string;
  syscall: string;
  errno: string;
  opts?: KernelOptions;
  call: (a: Process) => unknown;
}

const anon = (a: Process, pages = 2, prot = RW) => a.mmap(0, pages * PG, prot, ANON);

const CASES: Case[] = [
  // mmap: arch sys_mmap, then do_mmap and get_unmapped_area in their order.
  {
    why: "unaligned offset (sys_mmap)",
    syscall: "mmap",
    errno: "EINVAL",
    call: (a) => a.mmap(0, PG, RW, MAP.MAP_SHARED, sharedPool(a, PG)[0], 100),
  },
  {
    why: "zero length (do_mmap)",
    syscall: "mmap",
    errno: "EINVAL",
    call: (a) => a.mmap(0, 0, RW, ANON),
  },
  {
    why: "longer than TASK_SIZE (get_unmapped_area)",
    syscall: "mmap",
    errno: "ENOMEM",
    call: (a) => a.mmap(0, TASK_SIZE + PG, RW, ANON),
  },
  {
    why: "MAP_FIXED ending past TASK_SIZE",
    syscall: "mmap",
    errno: "ENOMEM",
    call: (a) => a.mmap(TASK_SIZE - PG, 2 * PG, RW, ANON | MAP.MAP_FIXED),
  },
  {
    why: "MAP_FIXED at an unaligned address",
    syscall: "mmap",
    errno: "EINVAL",
    call: (a) => a.mmap(0x10000001, PG, RW, ANON | MAP.MAP_FIXED),
  },
  {
    why: "MAP_FIXED_NOREPLACE over a mapping",
    syscall: "mmap",
    errno: "EEXIST",
    call: (a) => a.mmap(anon(a), PG, RW, ANON | MAP.MAP_FIXED_NOREPLACE),
  },
  {
    why: "a file mapping with no map type",
    syscall: "mmap",
    errno: "EINVAL",
    call: (a) => a.mmap(0, PG, RW, 0, sharedPool(a, PG)[0], 0),
  },
  {
    why: "an anonymous mapping with no map type",
    syscall: "mmap",
    errno: "EINVAL",
    call: (a) => a.mmap(0, PG, RW, MAP.MAP_ANONYMOUS),
  },
  {
    why: "MAP_SHARED_VALIDATE with a flag shmem does not know",
    syscall: "mmap",
    errno: "EOPNOTSUPP",
    call: (a) => a.mmap(0, PG, RW, MAP.MAP_SHARED_VALIDATE | 0x80000, sharedPool(a, PG)[0], 0),
  },
  {
    why: "shared writable on a read-only file (a pipe's read end)",
    syscall: "mmap",
    errno: "EACCES",
    call: (a) => a.mmap(0, PG, RW, MAP.MAP_SHARED, a.pipe()[0], 0),
  },
  {
    why: "any mapping of a write-only file (a pipe's write end)",
    syscall: "mmap",
    errno: "EACCES",
    call: (a) => a.mmap(0, PG, R, MAP.MAP_SHARED, a.pipe()[1], 0),
  },
  {
    why: "a file without f_op->mmap",
    syscall: "mmap",
    errno: "ENODEV",
    call: (a) => a.mmap(0, PG, R, MAP.MAP_PRIVATE, a.pipe()[0], 0),
  },
  {
    why: "shared writable on a write-sealed memfd (memfd_check_seals_mmap)",
    syscall: "mmap",
    errno: "EPERM",
    call: (a) => {
      const [fd, m] = sharedPool(a, PG);
      a.munmap(m, PG);
      a.addSeals(fd, SEAL.F_SEAL_WRITE);
      return a.mmap(0, PG, RW, MAP.MAP_SHARED, fd, 0);
    },
  },
  {
    why: "MAP_NOFAULT on MAP_SHARED (the proposal)",
    syscall: "mmap",
    errno: "EINVAL",
    opts: { features: ["map-nofault"] },
    call: (a) => a.mmap(0, PG, R, MAP.MAP_SHARED | MAP.MAP_NOFAULT, sharedPool(a, PG)[0], 0),
  },
  {
    why: "MAP_NOFAULT without a file (the proposal)",
    syscall: "mmap",
    errno: "EINVAL",
    opts: { features: ["map-nofault"] },
    call: (a) => a.mmap(0, PG, R, ANON | MAP.MAP_NOFAULT),
  },
  // munmap: __vm_munmap / do_vmi_munmap.
  {
    why: "munmap at an unaligned address",
    syscall: "munmap",
    errno: "EINVAL",
    call: (a) => a.munmap(anon(a) + 1, PG),
  },
  {
    why: "munmap above TASK_SIZE",
    syscall: "munmap",
    errno: "EINVAL",
    call: (a) => a.munmap(TASK_SIZE + PG, PG),
  },
  {
    why: "munmap running past TASK_SIZE",
    syscall: "munmap",
    errno: "EINVAL",
    call: (a) => a.munmap(TASK_SIZE - PG, 2 * PG),
  },
  {
    why: "munmap of length 0",
    syscall: "munmap",
    errno: "EINVAL",
    call: (a) => a.munmap(anon(a), 0),
  },
  // mremap: check_mremap_params, mremap_to, remap_is_valid, expand_vma.
  {
    why: "mremap with an unknown flag",
    syscall: "mremap",
    errno: "EINVAL",
    call: (a) => a.mremap(anon(a), PG, PG, 8),
  },
  {
    why: "mremap at an unaligned address",
    syscall: "mremap",
    errno: "EINVAL",
    call: (a) => a.mremap(anon(a) + 1, PG, PG, 0),
  },
  {
    why: "mremap to length 0",
    syscall: "mremap",
    errno: "EINVAL",
    call: (a) => a.mremap(anon(a), PG, 0, MREMAP.MREMAP_MAYMOVE),
  },
  {
    why: "MREMAP_FIXED to an unaligned address",
    syscall: "mremap",
    errno: "EINVAL",
    call: (a) => a.mremap(anon(a), PG, PG, FIXED, 0x10000001),
  },
  {
    why: "MREMAP_FIXED without MREMAP_MAYMOVE",
    syscall: "mremap",
    errno: "EINVAL",
    call: (a) => a.mremap(anon(a), PG, PG, MREMAP.MREMAP_FIXED, 0x10000000),
  },
  {
    why: "mremap of an unmapped address",
    syscall: "mremap",
    errno: "EFAULT",
    call: (a) => a.mremap(0x10000000, PG, 2 * PG, MREMAP.MREMAP_MAYMOVE),
  },
  {
    why: "mremap duplicating a private mapping (old_len 0)",
    syscall: "mremap",
    errno: "EINVAL",
    call: (a) => a.mremap(anon(a), 0, PG, MREMAP.MREMAP_MAYMOVE),
  },
  {
    why: "MREMAP_FIXED past TASK_SIZE",
    syscall: "mremap",
    errno: "EINVAL",
    call: (a) => a.mremap(anon(a), PG, 2 * PG, FIXED, TASK_SIZE - PG),
  },
  {
    why: "MREMAP_FIXED onto an overlapping target",
    syscall: "mremap",
    errno: "EINVAL",
    call: (a) => {
      const m = anon(a, 4);
      return a.mremap(m, 2 * PG, 2 * PG, FIXED, m + PG);
    },
  },
  {
    why: "MREMAP_FIXED of a range running past its VMA",
    syscall: "mremap",
    errno: "EFAULT",
    call: (a) => {
      unmapLoader(a); // else m joins the loader's mapping, and the range is inside it
      const m = anon(a, 2);
      return a.mremap(m + PG, 2 * PG, 3 * PG, FIXED, anon(a, 8));
    },
  },
  {
    why: "growing a range that runs past its VMA",
    syscall: "mremap",
    errno: "EFAULT",
    call: (a) => {
      unmapLoader(a); // else m joins the loader's mapping, and the range is inside it
      const m = anon(a, 2);
      return a.mremap(m + PG, 2 * PG, 3 * PG, MREMAP.MREMAP_MAYMOVE);
    },
  },
  {
    why: "growing without MREMAP_MAYMOVE where it cannot grow in place",
    syscall: "mremap",
    errno: "ENOMEM",
    call: (a) => {
      const at = 0x20000000;
      a.mmap(at + PG, PG, R, ANON | MAP.MAP_FIXED); // the page right above blocks it
      return a.mremap(a.mmap(at, PG, RW, ANON | MAP.MAP_FIXED), PG, 2 * PG, 0);
    },
  },
  // mprotect: do_mprotect_pkey.
  {
    why: "mprotect at an unaligned address",
    syscall: "mprotect",
    errno: "EINVAL",
    call: (a) => a.mprotect(anon(a) + 1, PG, R),
  },
  {
    why: "mprotect with an unknown bit",
    syscall: "mprotect",
    errno: "EINVAL",
    call: (a) => a.mprotect(anon(a), PG, 0x10),
  },
  {
    why: "mprotect of an unmapped range",
    syscall: "mprotect",
    errno: "ENOMEM",
    call: (a) => a.mprotect(0x10000000, PG, R),
  },
  {
    why: "mprotect over a hole",
    syscall: "mprotect",
    errno: "ENOMEM",
    call: (a) => {
      const m = anon(a, 3);
      a.munmap(m + PG, PG);
      return a.mprotect(m, 3 * PG, R);
    },
  },
  {
    why: "PROT_WRITE on a shared mapping without VM_MAYWRITE",
    syscall: "mprotect",
    errno: "EACCES",
    call: (a) => {
      const [fd] = sharedPool(a, PG);
      a.addSeals(fd, SEAL.F_SEAL_FUTURE_WRITE);
      return a.mprotect(a.mmap(0, PG, R, MAP.MAP_SHARED, fd, 0), PG, RW);
    },
  },
  // madvise: do_madvise, madvise_walk_vmas and each advice's own check.
  {
    why: "madvise with an unknown advice",
    syscall: "madvise",
    errno: "EINVAL",
    call: (a) => a.madvise(anon(a), PG, 12345),
  },
  {
    why: "MADV_USERFAULT without the proposal",
    syscall: "madvise",
    errno: "EINVAL",
    call: (a) => a.madvise(anon(a), PG, MADV.MADV_USERFAULT),
  },
  {
    why: "madvise at an unaligned address",
    syscall: "madvise",
    errno: "EINVAL",
    call: (a) => a.madvise(anon(a) + 1, PG, MADV.MADV_DONTNEED),
  },
  {
    why: "madvise over a hole",
    syscall: "madvise",
    errno: "ENOMEM",
    call: (a) => {
      const m = anon(a, 3);
      a.munmap(m + PG, PG);
      return a.madvise(m, 3 * PG, MADV.MADV_NORMAL);
    },
  },
  {
    why: "madvise running past the last mapping",
    syscall: "madvise",
    errno: "ENOMEM",
    call: (a) => a.madvise(anon(a, 1), 64 * PG, MADV.MADV_NORMAL),
  },
  {
    why: "MADV_REMOVE on anonymous private memory (no file)",
    syscall: "madvise",
    errno: "EINVAL",
    call: (a) => a.madvise(anon(a), PG, MADV.MADV_REMOVE),
  },
  {
    why: "MADV_REMOVE on a private file mapping (vma_is_shared_maywrite)",
    syscall: "madvise",
    errno: "EACCES",
    call: (a) =>
      a.madvise(a.mmap(0, PG, RW, MAP.MAP_PRIVATE, sharedPool(a, PG)[0], 0), PG, MADV.MADV_REMOVE),
  },
  {
    why: "MADV_REMOVE on a write-sealed memfd (shmem_fallocate)",
    syscall: "madvise",
    errno: "EPERM",
    call: (a) => {
      const [fd, m] = sharedPool(a, PG);
      a.addSeals(fd, SEAL.F_SEAL_FUTURE_WRITE);
      return a.madvise(m, PG, MADV.MADV_REMOVE);
    },
  },
  {
    why: "MADV_WIPEONFORK on a file mapping",
    syscall: "madvise",
    errno: "EINVAL",
    call: (a) => a.madvise(sharedPool(a, PG)[1], PG, MADV.MADV_WIPEONFORK),
  },
  {
    why: "MADV_KEEPONFORK on shared anonymous memory",
    syscall: "madvise",
    errno: "EINVAL",
    call: (a) =>
      a.madvise(a.mmap(0, PG, RW, MAP.MAP_SHARED | MAP.MAP_ANONYMOUS), PG, MADV.MADV_KEEPONFORK),
  },
  {
    why: "MADV_USERFAULT on a file mapping (the proposal)",
    syscall: "madvise",
    errno: "EINVAL",
    opts: { features: ["madv-userfault"] },
    call: (a) => a.madvise(sharedPool(a, PG)[1], PG, MADV.MADV_USERFAULT),
  },
];

const DEVICE_CASES: [
  string,
  string,
  (a: Process, dev: ReturnType<typeof deviceBuffer>) => unknown,
][] = [
  [
    "MADV_DONTNEED on VM_PFNMAP (madvise_dontneed_free_valid_vma)",
    "EINVAL",
    (a, dev) => a.madvise(mapDeviceBuffer(a, dev, PG, RW, MAP.MAP_SHARED), PG, MADV.MADV_DONTNEED),
  ],
  [
    "MADV_PAGEOUT on VM_PFNMAP (can_madv_lru_vma)",
    "EINVAL",
    (a, dev) => a.madvise(mapDeviceBuffer(a, dev, PG, RW, MAP.MAP_SHARED), PG, MADV.MADV_PAGEOUT),
  ],
  [
    "a device mapping with no map type",
    "EINVAL",
    (a, dev) => mapDeviceBuffer(a, dev, PG, RW, MAP.MAP_SHARED_VALIDATE),
  ],
  [
    "a device mapping of length 0",
    "EINVAL",
    (a, dev) => mapDeviceBuffer(a, dev, 0, RW, MAP.MAP_SHARED),
  ],
  [
    "a device mapping with an unknown prot bit",
    "EINVAL",
    (a, dev) => mapDeviceBuffer(a, dev, PG, 0x10, MAP.MAP_SHARED),
  ],
];

function refusal(fn: () => unknown): [string, string] | "ok" {
  try {
    fn();
    return "ok";
  } catch (e) {
    if (e instanceof ErrnoError) return [e.code, e.syscall];
    throw e;
  }
}

describe("memory syscall refusals: Linux's errno, under the syscall's name", () => {
  for (const c of CASES) {
    it(`${c.syscall}: ${c.errno} — ${c.why}`, () => {
      const { a } = setup(c.opts);
      expect(refusal(() => c.call(a))).toEqual([c.errno, c.syscall]);
    });
  }
  for (const [why, code, call] of DEVICE_CASES) {
    it(`device memory: ${code} — ${why}`, () => {
      const { k, a } = setup();
      const dev = deviceBuffer(k, "vram", PG);
      const syscall = why.startsWith("MADV") ? "madvise" : "mmap";
      expect(refusal(() => call(a, dev))).toEqual([code, syscall]);
    });
  }

  it("a split refused at vm.max_map_count names the syscall that needed it", () => {
    // split_vma: "if (vma->vm_mm->map_count >= sysctl_max_map_count) return -ENOMEM".
    const { a } = setup({ maxMapCount: 2 });
    const m = a.mmap(0, 3 * PG, RW, ANON);
    a.mmap(0, PG, R, ANON);
    expect(refusal(() => a.madvise(m + PG, PG, MADV.MADV_DONTFORK))).toEqual(["ENOMEM", "madvise"]);
    expect(refusal(() => a.mprotect(m + PG, PG, R))).toEqual(["ENOMEM", "mprotect"]);
    expect(refusal(() => a.munmap(m + PG, PG))).toEqual(["ENOMEM", "munmap"]);
    expect(refusal(() => a.mremap(m + PG, PG, PG, FIXED, 0x10000000))).toEqual([
      "ENOMEM",
      "mremap",
    ]);
    expect(refusal(() => a.mmap(m + PG, PG, R, ANON | MAP.MAP_FIXED))).toEqual(["ENOMEM", "mmap"]);
  });

  it("mremap's own unmaps at vm.max_map_count are mremap's ENOMEM: a shrink, a FIXED target", () => {
    // shrink_vma and mremap_to's "do_munmap(mm, new_addr, new_len, ...)" go through
    // do_vmi_munmap → vms_gather_munmap_vmas: a range inside one VMA splits it in three,
    // "if (vms->end < vms->vma->vm_end && vms->vma->vm_mm->map_count >=
    // sysctl_max_map_count) ... -ENOMEM", returned by mremap.
    const { a } = setup({ maxMapCount: 2 });
    unmapLoader(a);
    const m = a.mmap(0, 4 * PG, RW, ANON);
    const other = a.mmap(0, 3 * PG, R, ANON);
    // A shrink in place whose tail is the middle of the VMA (old_len ends before the VMA).
    expect(refusal(() => a.mremap(m, 2 * PG, PG, 0))).toEqual(["ENOMEM", "mremap"]);
    // The same shrink before a FIXED move.
    expect(refusal(() => a.mremap(m, 2 * PG, PG, FIXED, 0x10000000))).toEqual(["ENOMEM", "mremap"]);
    // A FIXED target in the middle of another VMA.
    expect(refusal(() => a.mremap(m, PG, PG, FIXED, other + PG))).toEqual(["ENOMEM", "mremap"]);
    // mmap itself: do_mmap's "if (mm->map_count > sysctl_max_map_count) return -ENOMEM".
    // (A third VMA is allowed, "map_count > max": a protection no neighbour has.)
    a.mmap(0, PG, PROT.PROT_EXEC, ANON);
    expect(a.mm.size).toBe(3);
    expect(refusal(() => a.mmap(0, PG, PROT.PROT_NONE, ANON))).toEqual(["ENOMEM", "mmap"]);
  });

  it("device memory's refusals are mmap's and mremap's, and its mmap is counted as one", () => {
    const { k, a } = setup();
    const dev = deviceBuffer(k, "vram", PG);
    // A driver's mmap handler refuses more than its buffer: mmap(2)'s EINVAL.
    expect(refusal(() => mapDeviceBuffer(a, dev, 2 * PG, RW, MAP.MAP_SHARED))).toEqual([
      "EINVAL",
      "mmap",
    ]);
    const d = mapDeviceBuffer(a, dev, PG, RW, MAP.MAP_SHARED);
    // remap_is_valid: "if (vma->vm_flags & (VM_DONTEXPAND | VM_PFNMAP)) return -EFAULT" for a
    // size change (remap_pfn_range sets both).
    expect(refusal(() => a.mremap(d, PG, 2 * PG, MREMAP.MREMAP_MAYMOVE))).toEqual([
      "EFAULT",
      "mremap",
    ]);
    expect(a.counters.syscalls.mmap).toBe(2);
    expect(a.counters.syscalls.mremap).toBe(1);
  });
});
