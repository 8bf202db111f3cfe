/**
 * Memory syscalls: mmap, munmap, mremap, mprotect, madvise, and fork's copy of an address
 * space. Checks follow mm/mmap.c do_mmap, mm/vma.c, mm/mremap.c, mm/mprotect.c and
 * mm/madvise.c in their order.
 */
import { MMAP_MIN, TASK_SIZE } from "../address-space.ts";
import { errno } from "../errors.ts";
import { resolveFault, zapRange } from "../fault.ts";
import { type OpenFile, ShmemFile } from "../file.ts";
import { FRAME_ANON_EXCLUSIVE, ZERO_FRAME } from "../frames.ts";
import { Process } from "../process.ts";
import { dropDroppable } from "../reclaim.ts";
import { evictIfUnused, punchHole } from "../truncate.ts";
import { MADV, MAP, MREMAP, PAGE_SHIFT, PAGE_SIZE, PROT, pageOffset, SEAL } from "../uapi.ts";
import {
  makePte,
  newVmaFlags,
  PTE_ANON,
  PTE_WRITE,
  prepareAnonVma,
  pteFrame,
  Vma,
  type VmaFlags,
} from "../vma.ts";
import { releaseFile } from "./files.ts";

const pageAlign = (n: number) => Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
const aligned = (n: number) => pageOffset(n) === 0;
/** include/linux/mman.h LEGACY_MAP_MASK, plus the MAP_HUGE_* size bits. */
const LEGACY_MAP_MASK =
  0x01 |
  0x02 |
  0x10 |
  0x20 |
  0x800 |
  0x1000 |
  0x4000000 |
  0x100 |
  0x2000 |
  0x4000 |
  0x8000 |
  0x10000 |
  0x20000 |
  0x40000 |
  (0x3f << 26);
const PROT_ALL = PROT.PROT_READ | PROT.PROT_WRITE | PROT.PROT_EXEC;
/** asm-generic/mman-common.h PROT_SEM: accepted by mprotect (arch_validate_prot), no effect. */
const PROT_SEM = 0x8;
/** include/uapi/asm-generic/mman-common.h: reclaim these pages now (5.4+). */
export const MADV_PAGEOUT = MADV.MADV_PAGEOUT;

/** Puts a new VMA into `p`'s address space (shm/loader-image.ts maps the loader's with it). */
export function attach(p: Process, v: Vma): void {
  v.owner = p.counters;
  p.mm.insert(v);
  if (v.file) {
    v.file.mappings.add(v);
    if (v.flags.shared && v.flags.mayWrite) v.file.writableMappings++;
  }
  if (v.openFile) v.openFile.refs++;
}

/** Removes a whole VMA: zaps its entries and drops its file references. */
export function removeVma(p: Process, v: Vma): void {
  zapRange(p.kernel, v, 0, v.pages);
  p.mm.remove(v);
  if (v.file) {
    v.file.mappings.delete(v);
    if (v.flags.shared && v.flags.mayWrite) v.file.writableMappings--;
  }
  // remove_vma → fput(vma->vm_file): the mapping's reference to the file goes. Shared
  // anonymous memory has no open description here; its last VMA is its last reference.
  if (v.openFile) releaseFile(p.kernel, v.openFile);
  else if (v.file) evictIfUnused(p.kernel, v.file);
}

/**
 * vma_merge for anonymous private memory: two adjacent VMAs with the same protection and
 * flags, no userfaultfd, and compatible anon_vmas (is_mergeable_anon_vma: one of them has
 * none yet, or they share it) become one — so that, say, the page-sized mappings a SIGBUS
 * handler placed side by side are one VMA to mremap, as on Linux.
 */
function mergeable(a: Vma, b: Vma): boolean {
  if (a.end !== b.start || b.file || b.flags.shared || b.uffd || b.pfns) return false;
  return joins(a, b.prot, b.flags, b.anonVma);
}

/** mergeable's test of `a` against the other side's protection, flags and anon_vma. */
function joins(a: Vma, prot: number, flags: VmaFlags, anonVma: number): boolean {
  if (a.file || a.flags.shared || a.uffd || a.pfns || a.prot !== prot) return false;
  if (a.anonVma && anonVma && a.anonVma !== anonVma) return false;
  return sameFlags(a.flags, flags);
}

/**
 * Every VmaFlags field, compared one by one in sameFlags; the check below makes a field
 * added to VmaFlags a type error until it is listed here (and compared there).
 */
const FLAG_KEYS = [
  "shared",
  "anonymous",
  "droppable",
  "nofault",
  "mayWrite",
  "wipeOnFork",
  "dontFork",
  "userfault",
  "pfnmap",
] as const satisfies readonly (keyof VmaFlags)[];
const everyFlagListed: Exclude<keyof VmaFlags, (typeof FLAG_KEYS)[number]> extends never
  ? true
  : never = true;

function sameFlags(fa: VmaFlags, fb: VmaFlags): boolean {
  return (
    everyFlagListed &&
    fa.shared === fb.shared &&
    fa.anonymous === fb.anonymous &&
    fa.droppable === fb.droppable &&
    fa.nofault === fb.nofault &&
    fa.mayWrite === fb.mayWrite &&
    fa.wipeOnFork === fb.wipeOnFork &&
    fa.dontFork === fb.dontFork &&
    fa.userfault === fb.userfault &&
    fa.pfnmap === fb.pfnmap
  );
}

/** `a` takes over `b`, the VMA just above it, with its entries. */
function absorb(p: Process, a: Vma, b: Vma): void {
  const base = a.pages;
  a.resize(b.end);
  b.forEachPresent(0, b.pages, (i, pte) => a.setPte(base + i, pte));
  a.anonVma ||= b.anonVma;
  p.mm.remove(b); // also refreshes a's gap above
}

/** Merges `v` with its neighbours where Linux would; returns the VMA that holds its range. */
export function mergeNeighbours(p: Process, v: Vma): Vma {
  if (!p.mm.has(v)) return v;
  const next = p.mm.next(v);
  if (next && mergeable(v, next)) absorb(p, v, next);
  const prev = p.mm.prev(v);
  if (prev && mergeable(prev, v)) {
    absorb(p, prev, v);
    return prev;
  }
  return v;
}

/**
 * mergeNeighbours' commonest case done before any VMA is made: a new private anonymous range
 * [start, end) (no file, no anon_vma yet) that only its lower neighbour absorbs
 * (vma_merge_new_range expanding prev), as when a SIGBUS handler maps page after page. The
 * result is the VMA set attach + mergeNeighbours would leave: prev grown over the range.
 * Returns it, or undefined for the general path.
 */
function extendPrev(
  p: Process,
  start: number,
  end: number,
  prot: number,
  flags: VmaFlags,
): Vma | undefined {
  const prev = p.mm.find(start - 1);
  if (prev === undefined || prev.end !== start || !joins(prev, prot, flags, 0)) return undefined;
  const next = p.mm.find(end);
  if (next !== undefined && next.start === end && joins(next, prot, flags, 0)) return undefined;
  prev.resize(end);
  p.mm.resized(prev);
  return prev;
}

/**
 * Unmaps [start, end), splitting VMAs at the edges (do_vmi_munmap). mm/vma.c
 * vms_gather_munmap_vmas: "Make sure that map_count on return from munmap() will not exceed
 * its limit; but let map_count go just above its limit temporarily, to help free resources
 * as expected" — only an unmap strictly inside one VMA (which leaves one more) is refused.
 */
function unmapRange(p: Process, start: number, end: number, syscall: string): void {
  const first = p.mm.find(start);
  if (first && first.start < start && end < first.end && p.mm.size >= p.kernel.maxMapCount) {
    errno("ENOMEM", syscall, "vm.max_map_count reached");
  }
  for (const v of p.mm.isolateForUnmap(start, end)) removeVma(p, v);
}

/** mm/vma.c split_vma: "if (vma->vm_mm->map_count >= sysctl_max_map_count) return -ENOMEM". */
function splitGuard(p: Process, syscall: string): () => void {
  return () => {
    if (p.mm.size >= p.kernel.maxMapCount) errno("ENOMEM", syscall, "vm.max_map_count reached");
  };
}

/** security/min_addr.c mmap_min_addr: CONFIG_DEFAULT_MMAP_MIN_ADDR, 65536 on x86 (vm.mmap_min_addr). */
const MMAP_MIN_ADDR = 0x10000;

/**
 * An mmap address without MAP_FIXED is a hint: do_mmap's round_hint_to_min ("hint &=
 * PAGE_MASK; if (hint && hint < mmap_min_addr) return PAGE_ALIGN(mmap_min_addr)"), then
 * arch_get_unmapped_area_topdown's "requesting a specific address": used when
 * mmap_address_hint_valid (it fits below TASK_SIZE) and "!vma || addr + len <=
 * vm_start_gap(vma)" (the range is free); otherwise the top-down search decides
 * (scenarios/placement/address-hint-honoured-when-free).
 */
function hintedStart(p: Process, addr: number, len: number): number | undefined {
  if (!addr) return undefined;
  let hint = addr - pageOffset(addr);
  if (hint < MMAP_MIN_ADDR) hint = MMAP_MIN_ADDR;
  if (hint > TASK_SIZE - len) return undefined;
  return p.mm.isFree(hint, hint + len) ? hint : undefined;
}

const MAX_LFS_FILESIZE = (1n << 63n) - 1n;
const ULONG_MAX = (1n << 64n) - 1n;
const PAGE_SHIFT_N = BigInt(PAGE_SHIFT);

/**
 * mm/mmap.c file_mmap_ok with file_mmap_size_max: a regular file (shmem) may be mapped up to
 * MAX_LFS_FILESIZE, anything else (a pipe, an anon inode) up to ULONG_MAX; pgoff is the
 * unsigned off >> PAGE_SHIFT of sys_mmap, so every negative offset of a memfd fails, and a
 * pipe's -4096 fails while its -2^63 passes (and then meets ENODEV), as on the host.
 */
function fileMmapOk(f: OpenFile, offset: number, len: number): boolean {
  if (offset >= 0 && offset + len <= Number.MAX_SAFE_INTEGER) return true;
  const pgoff = BigInt.asUintN(64, BigInt(offset)) >> PAGE_SHIFT_N;
  const maxsize = f.inode.kind === "shmem" ? MAX_LFS_FILESIZE : ULONG_MAX;
  const size = BigInt(len);
  if (size > maxsize) return false;
  return pgoff <= (maxsize - size) >> PAGE_SHIFT_N;
}

/** mm/mmap.c do_mmap (with arch sys_mmap's offset check first). */
export function mmap(
  p: Process,
  addr: number,
  length: number,
  prot: number,
  flags: number,
  fd: number,
  offset: number,
): number {
  p.enter("mmap");
  // x86 SYSCALL_DEFINE6(mmap): "if (off & ~PAGE_MASK) return -EINVAL;" is the only check of
  // the offset here; a negative, page-aligned one goes on as a huge unsigned pgoff, which only
  // file_mmap_ok refuses (a file mapping, below); an anonymous mapping ignores it.
  if (offset % PAGE_SIZE !== 0) errno("EINVAL", "mmap", "unaligned offset");
  const anonymous = (flags & MAP.MAP_ANONYMOUS) !== 0;
  const f: OpenFile | undefined = anonymous ? undefined : p.fds.get(fd, "mmap");
  if (!length) errno("EINVAL", "mmap", "zero length");
  // do_mmap validates no prot bit: calc_vm_prot_bits keeps read, write and exec, the rest
  // is ignored (mmap(PROT_SEM or 0x10) succeeds on the host: scenarios/mmap-errors).
  prot &= PROT_ALL;
  const len = pageAlign(length);
  if (len > TASK_SIZE) errno("ENOMEM", "mmap");
  const pgoff = offset / PAGE_SIZE;
  // do_mmap: "Too many mappings? if (mm->map_count > sysctl_max_map_count) return -ENOMEM;"
  // (">": one mmap may take the count to the limit plus one, as the host shows).
  if (p.mm.size > p.kernel.maxMapCount) errno("ENOMEM", "mmap", "vm.max_map_count reached");
  const fixed = (flags & (MAP.MAP_FIXED | MAP.MAP_FIXED_NOREPLACE)) !== 0;
  let start: number;
  if (fixed) {
    if (addr > TASK_SIZE - len) errno("ENOMEM", "mmap");
    if (!aligned(addr)) errno("EINVAL", "mmap", "unaligned MAP_FIXED address");
    if (flags & MAP.MAP_FIXED_NOREPLACE && !p.mm.isFree(addr, addr + len)) {
      errno("EEXIST", "mmap");
    }
    start = addr;
  } else {
    const a = hintedStart(p, addr, len) ?? p.mm.allocate(len);
    if (a === undefined) errno("ENOMEM", "mmap", "no room in the address space");
    start = a;
  }
  const type = flags & MAP.MAP_TYPE;
  const vf = newVmaFlags({ anonymous });
  let file: ShmemFile | undefined;
  if (f) {
    // do_mmap: "if (!file_mmap_ok(file, inode, pgoff, len)) return -EOVERFLOW;", before the
    // map type switch (scenarios/mmap-errors/negative-offset-eoverflow).
    if (!fileMmapOk(f, offset, len)) errno("EOVERFLOW", "mmap", "offset beyond the file's maximum");
    if (type !== MAP.MAP_SHARED && type !== MAP.MAP_SHARED_VALIDATE && type !== MAP.MAP_PRIVATE) {
      errno("EINVAL", "mmap", "bad map type");
    }
    if (type !== MAP.MAP_PRIVATE) {
      // "case MAP_SHARED_VALIDATE: if (flags & ~flags_mask) return -EOPNOTSUPP;" — shmem
      // supports no flags beyond LEGACY_MAP_MASK (MAP_SYNC is for DAX only).
      if (type === MAP.MAP_SHARED_VALIDATE && flags & ~LEGACY_MAP_MASK) errno("EOPNOTSUPP", "mmap");
      if (prot & PROT.PROT_WRITE && !f.writable) errno("EACCES", "mmap", "file not writable");
      vf.shared = true;
      if (!f.writable) vf.mayWrite = false;
    }
    if (!f.readable) errno("EACCES", "mmap", "file not readable");
    if (f.inode.kind !== "shmem") errno("ENODEV", "mmap", "file has no mmap");
    file = f.inode as ShmemFile;
    // The proposal: private mappings only ("MAP_SHARED ... will still return SIGBUS"). A
    // kernel without it ignores the bit, as Linux ignores any unknown flag outside
    // MAP_SHARED_VALIDATE (checked above).
    if (flags & MAP.MAP_NOFAULT && p.kernel.features.has("map-nofault")) {
      if (vf.shared) errno("EINVAL", "mmap", "MAP_NOFAULT is for MAP_PRIVATE only");
      vf.nofault = true;
    }
    // memfd_check_seals_mmap: write-sealed files refuse writable shared maps and lose
    // VM_MAYWRITE on read-only ones.
    if (file.seals & (SEAL.F_SEAL_WRITE | SEAL.F_SEAL_FUTURE_WRITE) && vf.shared) {
      if (prot & PROT.PROT_WRITE) errno("EPERM", "mmap", "write sealed");
      vf.mayWrite = false;
    }
    // mapping_map_writable fails once F_SEAL_WRITE denied writers.
  } else {
    switch (type) {
      case MAP.MAP_SHARED:
      case MAP.MAP_SHARED_VALIDATE: {
        // Shared anonymous memory is a shmem file of the mapping's size (shmem_zero_setup).
        vf.shared = true;
        const k = p.kernel;
        file = new ShmemFile(k.allocIno(), "dev/zero", SEAL.F_SEAL_SEAL);
        file.size = len;
        break;
      }
      case MAP.MAP_DROPPABLE:
        vf.droppable = true;
        vf.wipeOnFork = true;
        break;
      case MAP.MAP_PRIVATE:
        break;
      default:
        errno("EINVAL", "mmap", "bad map type");
    }
    if (flags & MAP.MAP_NOFAULT && p.kernel.features.has("map-nofault")) {
      errno("EINVAL", "mmap", "MAP_NOFAULT needs a file");
    }
  }
  if (fixed) unmapRange(p, start, start + len, "mmap");
  let merged = file || vf.shared ? undefined : extendPrev(p, start, start + len, prot, vf);
  if (merged === undefined) {
    const v = new Vma(start, start + len, prot, vf, file, f, anonymous ? 0 : pgoff);
    attach(p, v);
    merged = mergeNeighbours(p, v);
  }
  if (flags & MAP.MAP_POPULATE) populate(p, merged);
  // No event object is built when nobody records (the fault handler's mmap is a hot path).
  if (p.kernel.events)
    p.kernel.emit(p.pid, "mmap", {
      addr: start,
      length: len,
      shared: vf.shared,
      file: file?.ino ?? 0,
    });
  return start;
}

/**
 * MAP_POPULATE (populate_vma_page_range): fault every page in now; writable private
 * mappings take write faults to break COW, shared ones read faults. Failures are ignored —
 * a page beyond EOF is simply not populated and will still SIGBUS when touched.
 */
function populate(p: Process, v: Vma): void {
  if (!(v.prot & PROT_ALL)) return;
  const write = !v.flags.shared && (v.prot & PROT.PROT_WRITE) !== 0;
  for (let a = v.start; a < v.end; a += PAGE_SIZE) {
    const out = resolveFault(p.kernel, p, a, write);
    if (out.kind !== "ok") {
      if (out.kind === "signal" && v.file) break; // beyond EOF: the rest is too
    }
  }
}

/** mm/vma.c do_vmi_munmap via __vm_munmap. */
export function munmap(p: Process, addr: number, length: number): void {
  p.enter("munmap");
  if (!aligned(addr) || addr > TASK_SIZE || length > TASK_SIZE - addr) {
    errno("EINVAL", "munmap");
  }
  const len = pageAlign(length);
  if (len === 0) errno("EINVAL", "munmap", "zero length");
  unmapRange(p, addr, addr + len, "munmap");
  if (p.kernel.events) p.kernel.emit(p.pid, "munmap", { addr, length: len });
}

/** mm/mremap.c. */
export function mremap(
  p: Process,
  addr: number,
  oldLength: number,
  newLength: number,
  flags: number,
  newAddr: number,
): number {
  p.enter("mremap");
  if (flags & ~(MREMAP.MREMAP_MAYMOVE | MREMAP.MREMAP_FIXED | MREMAP.MREMAP_DONTUNMAP)) {
    errno("EINVAL", "mremap");
  }
  if (flags & MREMAP.MREMAP_DONTUNMAP) errno("EINVAL", "mremap", "MREMAP_DONTUNMAP not modelled");
  // check_mremap_params, in its order.
  if (!aligned(addr)) errno("EINVAL", "mremap", "unaligned");
  const oldLen = pageAlign(oldLength);
  const newLen = pageAlign(newLength);
  if (!newLen) errno("EINVAL", "mremap", "zero new length");
  const fixed = (flags & MREMAP.MREMAP_FIXED) !== 0;
  if (fixed && !aligned(newAddr)) errno("EINVAL", "mremap", "unaligned new address");
  if (fixed && !(flags & MREMAP.MREMAP_MAYMOVE)) errno("EINVAL", "mremap");
  const vma = p.mm.find(addr);
  if (!vma) errno("EFAULT", "mremap", "no mapping");
  if (oldLen === 0) errno("EINVAL", "mremap", "duplicating a mapping (old_len 0) is not modelled");
  if (fixed) {
    // mremap_to: "Is the new length or address silly?", then vrm_overlaps.
    if (newLen > TASK_SIZE || newAddr > TASK_SIZE - newLen) errno("EINVAL", "mremap");
    if (addr + oldLen > newAddr && newAddr + newLen > addr) {
      errno("EINVAL", "mremap", "old and new ranges overlap");
    }
    unmapRange(p, newAddr, newAddr + newLen, "mremap");
    // The target may have been part of the source's VMA: look it up again.
    const src = p.mm.find(addr);
    if (!src) errno("EFAULT", "mremap", "no mapping");
    // A shrink is done first (shrink_vma), then the rest moves as a same-size move.
    let moveLen = oldLen;
    if (newLen < oldLen) {
      unmapRange(p, addr + newLen, addr + oldLen, "mremap");
      moveLen = newLen;
    }
    remapIsValid(src, addr, moveLen, newLen);
    moveRoom(p);
    const [piece] = p.mm.isolate(addr, addr + moveLen, splitGuard(p, "mremap"));
    return move(p, piece, newAddr, newLen);
  }
  // mremap_at: resizing to the same size and shrinking check nothing more (remap_is_valid is
  // for growth and moves: old_len may run past the VMA here, as on the host).
  if (newLen <= oldLen) {
    if (newLen < oldLen) unmapRange(p, addr + newLen, addr + oldLen, "mremap");
    return addr;
  }
  remapIsValid(vma, addr, oldLen, newLen);
  // expand_vma: in place when the range ends at the VMA's end (vrm_can_expand_in_place) and
  // the space above is free up to the new end (vma_expandable: the very start of the next VMA
  // may be reached). expand_vma_in_place's vma_merge_extend then joins the grown VMA with the
  // next one when they have become adjacent and compatible.
  if (addr + oldLen === vma.end && p.mm.mayGrowInto(vma.end, addr + newLen)) {
    const [piece] = p.mm.isolate(addr, addr + oldLen, splitGuard(p, "mremap"));
    piece.resize(addr + newLen);
    p.mm.resized(piece);
    mergeNeighbours(p, piece);
    return addr;
  }
  if (!(flags & MREMAP.MREMAP_MAYMOVE)) errno("ENOMEM", "mremap", "cannot grow in place");
  const dest = p.mm.allocate(newLen);
  if (dest === undefined || dest < MMAP_MIN) errno("ENOMEM", "mremap");
  moveRoom(p);
  const [piece] = p.mm.isolate(addr, addr + oldLen, splitGuard(p, "mremap"));
  return move(p, piece, dest, newLen);
}

/**
 * mm/mremap.c remap_is_valid, for a growth or a move: "We can't remap across vm area
 * boundaries" (EFAULT), and a VM_PFNMAP (or VM_DONTEXPAND) mapping never changes size.
 */
function remapIsValid(vma: Vma, addr: number, oldLen: number, newLen: number): void {
  if (oldLen > vma.end - addr) errno("EFAULT", "mremap", "range spans mappings");
  if (newLen !== oldLen && vma.flags.pfnmap) errno("EFAULT", "mremap", "VM_PFNMAP");
}

/**
 * mm/mremap.c: a move may split the source and the destination and unmap the old range: "We'd
 * prefer to avoid failure later on in do_munmap: which may split one vma into three before
 * unmapping. if (mm->map_count >= sysctl_max_map_count - 3) return -ENOMEM;"
 */
function moveRoom(p: Process): void {
  if (p.mm.size >= p.kernel.maxMapCount - 3) errno("ENOMEM", "mremap", "vm.max_map_count");
}

/**
 * move_vma: the entries travel with the VMA (move_page_tables). Never a shrink: mremap has
 * done that in place first, so the VMA keeps or grows its length.
 *
 * copy_vma: "If anonymous vma has not yet been faulted, update new pgoff to match new
 * location, to increase its chance of merging" — such a VMA joins compatible anonymous
 * neighbours at its new place (vma_merge_copied_range). A faulted one keeps its vm_pgoff,
 * which no longer lines up with its new neighbours', so it stays alone; the model keeps no
 * anonymous pgoff and so merges only the never-faulted kind.
 */
function move(p: Process, v: Vma, dest: number, newLen: number): number {
  p.mm.remove(v);
  v.relocate(dest);
  v.resize(dest + newLen);
  p.mm.insert(v);
  if (!v.file && !v.anonVma) mergeNeighbours(p, v);
  p.kernel.emit(p.pid, "mremap", { addr: dest, length: newLen });
  return dest;
}

/** mm/mprotect.c do_mprotect_pkey. */
export function mprotect(p: Process, addr: number, length: number, prot: number): void {
  p.enter("mprotect");
  if (!aligned(addr)) errno("EINVAL", "mprotect");
  if (!length) return;
  // arch_validate_prot (generic, x86): "(prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC |
  // PROT_SEM)) == 0"; PROT_SEM then has no effect on the VMA.
  if (prot & ~(PROT_ALL | PROT_SEM)) errno("EINVAL", "mprotect");
  prot &= PROT_ALL;
  const end = addr + pageAlign(length);
  if (!p.mm.find(addr)) errno("ENOMEM", "mprotect");
  // do_mprotect_pkey changes VMA after VMA and stops at the first hole (ENOMEM) or the first
  // VMA it may not change (EACCES): the VMAs before it keep their new protection.
  let at = addr;
  let failure: "ENOMEM" | "EACCES" | undefined;
  for (const v of p.mm.overlapping(addr, end)) {
    if (v.start > at) {
      failure = "ENOMEM";
      break;
    }
    if (prot & PROT.PROT_WRITE && v.flags.shared && !v.flags.mayWrite) {
      failure = "EACCES";
      break;
    }
    at = Math.min(v.end, end);
  }
  if (failure === undefined && at < end) failure = "ENOMEM";
  if (at > addr) applyProt(p, addr, at, prot);
  if (failure !== undefined) errno(failure, "mprotect", "stopped before the end of the range");
}

function applyProt(p: Process, start: number, end: number, prot: number): void {
  const pieces = p.mm.isolate(start, end, splitGuard(p, "mprotect"));
  for (const v of pieces) {
    v.prot = prot;
    // Removing write access write-protects every entry.
    if (!(prot & PROT.PROT_WRITE)) {
      v.forEachPresent(0, v.pages, (i, pte) => v.setPte(i, pte & ~PTE_WRITE));
    } else {
      grantWrite(p, v);
    }
    // PROT_NONE keeps the entries (change_protection makes them inaccessible; the pages,
    // private copies included, survive): access is refused by the VMA's protection.
  }
  // mprotect_fixup merges the changed pieces with compatible neighbours.
  for (const v of pieces) if (p.mm.has(v)) mergeNeighbours(p, v);
  p.mm.generation++;
}

/**
 * Adding write access makes present entries writable where the write fault would only have
 * upgraded them (mm/mprotect.c change_pte_range). A shared shmem mapping wants no write
 * notification (vma_wants_writenotify: no page_mkwrite, no dirty accounting), so its
 * vm_page_prot is writable and pte_modify applies it to every entry. A private one gets
 * MM_CP_TRY_CHANGE_WRITABLE (6.0+): can_change_pte_writable "can only special-case on
 * exclusive anonymous pages"; the zero page, page-cache pages and shared COW pages keep
 * faulting. Before 6.0 (kernel feature `gup-pre-5.19` models 5.9-5.18) private entries
 * stayed read-only. The zero-page-beyond-EOF proposal's entries are never writable.
 */
function grantWrite(p: Process, v: Vma): void {
  const k = p.kernel;
  if (!v.flags.shared && k.features.has("gup-pre-5.19")) return;
  v.forEachPresent(0, v.pages, (i, pte) => {
    const frame = pteFrame(pte);
    if (pte & PTE_WRITE || frame === ZERO_FRAME) return;
    if (!v.flags.shared && !(pte & PTE_ANON && k.frames.flags[frame] & FRAME_ANON_EXCLUSIVE)) {
      return;
    }
    v.setPte(i, pte | PTE_WRITE);
  });
}

/** mm/madvise.c do_madvise. */
export function madvise(p: Process, addr: number, length: number, advice: number): void {
  p.enter("madvise");
  const known = new Set<number>([
    MADV.MADV_NORMAL,
    MADV.MADV_DONTNEED,
    MADV.MADV_REMOVE,
    MADV.MADV_DONTFORK,
    MADV.MADV_DOFORK,
    MADV.MADV_WIPEONFORK,
    MADV.MADV_KEEPONFORK,
    MADV_PAGEOUT,
  ]);
  if (p.kernel.features.has("madv-userfault")) known.add(MADV.MADV_USERFAULT);
  if (!known.has(advice)) errno("EINVAL", "madvise", "unknown advice");
  if (!aligned(addr)) errno("EINVAL", "madvise", "unaligned");
  const len = pageAlign(length);
  if (length && !len) errno("EINVAL", "madvise");
  const end = addr + len;
  if (end === addr) return;
  let unmapped = false;
  let at = addr;
  for (const v0 of p.mm.overlapping(addr, end)) {
    if (v0.start > at) unmapped = true;
    at = v0.end;
  }
  if (at < end) unmapped = true;
  for (const v of p.mm.overlapping(addr, end)) {
    const lo = Math.max(v.start, addr);
    const hi = Math.min(v.end, end);
    adviseOne(p, v, lo, hi, advice);
  }
  // madvise_walk_vmas: holes are reported after the mapped parts were advised.
  if (unmapped) errno("ENOMEM", "madvise", "range not fully mapped");
}

function adviseOne(p: Process, v: Vma, lo: number, hi: number, advice: number): void {
  const k = p.kernel;
  switch (advice) {
    case MADV.MADV_NORMAL:
      return;
    case MADV.MADV_DONTNEED:
      // Drops entries: anonymous pages are freed, a private file mapping shows the file again.
      if (v.flags.pfnmap) errno("EINVAL", "madvise");
      zapRange(k, v, v.index(lo), v.index(hi));
      return;
    case MADV.MADV_REMOVE: {
      const file = v.file;
      // Shared anonymous memory is a shmem file too (shmem_zero_setup): it can be punched.
      if (!file) errno("EINVAL", "madvise", "MADV_REMOVE needs a file mapping");
      if (!(v.flags.shared && v.flags.mayWrite)) errno("EACCES", "madvise", "not shared writable");
      if (file.seals & (SEAL.F_SEAL_WRITE | SEAL.F_SEAL_FUTURE_WRITE)) errno("EPERM", "madvise");
      const offset = (v.pgoff + v.index(lo)) * PAGE_SIZE;
      punchHole(k, file, offset, hi - lo);
      return;
    }
    case MADV.MADV_WIPEONFORK:
    case MADV.MADV_KEEPONFORK:
      if (v.file || v.flags.shared)
        errno("EINVAL", "madvise", "WIPEONFORK is for private anonymous memory");
      setFlag(p, lo, hi, (v) => {
        v.flags.wipeOnFork = advice === MADV.MADV_WIPEONFORK;
      });
      return;
    case MADV.MADV_DONTFORK:
    case MADV.MADV_DOFORK:
      setFlag(p, lo, hi, (v) => {
        v.flags.dontFork = advice === MADV.MADV_DONTFORK;
      });
      return;
    case MADV_PAGEOUT:
      // madvise_pageout: "if (!can_madv_lru_vma(vma)) return -EINVAL" (VM_PFNMAP). The model
      // has no swap, so anonymous and shmem pages stay; droppable pages are discarded even
      // when dirty (shrink_folio_list, LINUX.md rule 17) and read back as zero. Droppable
      // memory is wiped on fork, so it is never shared with another process.
      if (v.flags.pfnmap) errno("EINVAL", "madvise", "MADV_PAGEOUT on VM_PFNMAP");
      if (v.flags.droppable) dropDroppable(k, v, v.index(lo), v.index(hi));
      return;
    case MADV.MADV_USERFAULT:
      if (v.file) errno("EINVAL", "madvise", "MADV_USERFAULT is for anonymous memory");
      setFlag(p, lo, hi, (v) => {
        v.flags.userfault = true;
      });
      return;
  }
}

/**
 * madvise_update_vma: the VMA flag changes on [lo, hi), split off first, and the pieces merge
 * again with neighbours whose flags now match (vma_modify_flags), as mprotect's do: a
 * MADV_KEEPONFORK after a MADV_WIPEONFORK leaves one VMA, as on the host.
 */
function setFlag(p: Process, lo: number, hi: number, set: (v: Vma) => void): void {
  const pieces = p.mm.isolate(lo, hi, splitGuard(p, "madvise"));
  for (const v of pieces) set(v);
  for (const v of pieces) if (p.mm.has(v)) mergeNeighbours(p, v);
  p.mm.generation++;
}

/** Whether fork must copy this anonymous page for the child now (a FOLL_PIN is on it). */
function mustCopyForDma(k: Process["kernel"], frame: number): boolean {
  if (!(k.pinCounts.get(frame) ?? 0)) return false;
  // 5.19+: only an exclusive page can be pinned; before, any pinned page was copied.
  return k.features.has("gup-pre-5.19") || (k.frames.flags[frame] & FRAME_ANON_EXCLUSIVE) !== 0;
}

/**
 * A driver's mmap of device memory (remap_pfn_range): a VM_PFNMAP VMA whose entries are the
 * device's frames, with no page-cache pages and no references behind them. MAP_PRIVATE is
 * allowed (it is a COW mapping: a write copies into an anonymous page, LINUX.md rule 18).
 */
export function mmapPfn(
  p: Process,
  length: number,
  prot: number,
  flags: number,
  pfns: readonly number[],
): number {
  p.enter("mmap");
  const type = flags & MAP.MAP_TYPE;
  if (type !== MAP.MAP_SHARED && type !== MAP.MAP_PRIVATE) errno("EINVAL", "mmap", "bad map type");
  if (!length || prot & ~PROT_ALL) errno("EINVAL", "mmap");
  const len = pageAlign(length);
  // remap_pfn_range of a COW mapping must cover the whole VMA; a driver refuses more
  // than its buffer.
  if (len / PAGE_SIZE > pfns.length) errno("EINVAL", "mmap", "larger than the device buffer");
  const start = p.mm.allocate(len);
  if (start === undefined) errno("ENOMEM", "mmap");
  const vf = newVmaFlags({ shared: type === MAP.MAP_SHARED, anonymous: false, pfnmap: true });
  const v = new Vma(start, start + len, prot, vf, undefined, undefined, 0);
  v.pfns = pfns.slice(0, len / PAGE_SIZE);
  attach(p, v);
  p.kernel.emit(p.pid, "mmap", { addr: start, length: len, shared: vf.shared, pfnmap: true });
  return start;
}

/**
 * mm/memory.c vma_needs_copy, which copy_page_range asks first:
 *
 *   if (userfaultfd_wp(dst_vma)) return true;
 *   if (src_vma->vm_flags & (VM_PFNMAP | VM_MIXEDMAP)) return true;
 *   if (src_vma->anon_vma) return true;
 *   ... "Don't copy ptes where a page fault will fill them correctly." return false;
 *
 * So a private file mapping that has an anon_vma (one page was COWed) has *all* its entries
 * copied, page-cache ones included, and the child reads them without a fault
 * (scenarios/fork/private-file-anon-vma-copies-cache-ptes); a shared or never-written file
 * mapping refaults in the child. The model has no uffd-wp (MISSING mode only, and a
 * registration does not survive fork without UFFD_FEATURE_EVENT_FORK) and no VM_MIXEDMAP.
 */
function vmaNeedsCopy(v: Vma): boolean {
  return v.flags.pfnmap || v.anonVma !== 0;
}

/**
 * copy_present_pte for an entry with no anonymous page behind it: a page-cache page gets a
 * reference (folio_get + folio_dup_file_rmap_pte), a raw VM_PFNMAP frame or the zero page
 * none (vm_normal_page is NULL). "If it's a COW mapping, write protect it both in the parent
 * and the child" has nothing to do here: a private mapping's cache, zero or raw-pfn entry is
 * read-only already (do_read_fault, pfnFault; a write fault copies into an anonymous page).
 */
function copyPresentFilePte(k: Process["kernel"], v: Vma, c: Vma, i: number, pte: number): void {
  if (!v.flags.pfnmap) k.frames.get(pteFrame(pte));
  c.setPte(i, pte);
}

/**
 * kernel/fork.c dup_mmap: MAP_SHARED stays shared; private pages become copy-on-write in
 * both (anonymous pages stay mapped read-only in both and share a frame); WIPEONFORK ranges
 * start empty in the child; DONTFORK ranges are absent there. Which VMAs have their entries
 * copied at all is vma_needs_copy's answer (above).
 */
export function fork(parent: Process, childName: string): Process {
  const k = parent.kernel;
  const child = new Process(k, k.allocPid(), childName);
  k.adopt(child);
  child.signals = parent.signals.clone();
  for (const [fd, f] of parent.fds.entries()) {
    child.fds.installAt(fd, f);
  }
  for (const v of parent.mm.vmas) {
    if (v.flags.dontFork) continue;
    const c = new Vma(v.start, v.end, v.prot, { ...v.flags }, v.file, v.openFile, v.pgoff);
    // anon_vma_fork: the child's VMA gets an anon_vma of its own.
    if (v.anonVma) prepareAnonVma(c);
    c.pfns = v.pfns;
    attach(child, c);
    // dup_mmap: "if (!(tmp->vm_flags & VM_WIPEONFORK)) retval = copy_page_range(tmp, mpnt);"
    if (v.flags.wipeOnFork || !vmaNeedsCopy(v)) continue;
    v.forEachPresent(0, v.pages, (i, pte) => {
      if (!(pte & PTE_ANON)) {
        copyPresentFilePte(k, v, c, i, pte);
        return;
      }
      const frame = pteFrame(pte);
      if (frame !== 0 && mustCopyForDma(k, frame)) {
        // copy_present_page: a possibly DMA-pinned anonymous page is copied for the child at
        // fork, and the parent keeps its page and its writable entry, so the pin keeps seeing
        // the parent's writes (folio_try_dup_anon_rmap_pte fails for an exclusive pinned
        // page; before 5.19, page_needs_cow_for_dma).
        const copy = k.frames.alloc(child.pid, "fork");
        k.frames.copyFrame(copy, frame);
        k.frames.flags[copy] = FRAME_ANON_EXCLUSIVE;
        c.setPte(i, makePte(copy, PTE_ANON | (c.prot & PROT.PROT_WRITE ? PTE_WRITE : 0)));
        child.counters.anonPages++;
        return;
      }
      k.frames.get(frame);
      // Neither process owns the page exclusively any more.
      if (frame !== 0) k.frames.flags[frame] = 0;
      v.setPte(i, pte & ~PTE_WRITE);
      c.setPte(i, makePte(frame, PTE_ANON));
    });
  }
  k.emit(parent.pid, "fork", { child: child.pid });
  return child;
}
