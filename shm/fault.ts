/**
 * Page-fault resolution (mm/memory.c handle_mm_fault, mm/shmem.c shmem_fault). Given a
 * process, an address and whether it writes, either install a translation or say which
 * signal the access raises, or that a userfaultfd must resolve it.
 */
import type { SigInfo } from "./errors.ts";
import { FRAME_ANON_EXCLUSIVE, FRAME_NOT_UPTODATE, ZERO_FRAME } from "./frames.ts";
import type { Kernel } from "./kernel.ts";
import type { PageCache } from "./page-cache.ts";
import type { Process } from "./process.ts";
import { PAGE_SIZE, PROT } from "./uapi.ts";
import {
  CHUNK_MASK,
  CHUNK_SHIFT,
  makePte,
  PTE_ANON,
  PTE_SPECIAL,
  PTE_WRITE,
  PTES_PER_CHUNK,
  prepareAnonVma,
  pteFrame,
  type Vma,
} from "./vma.ts";

export type FaultOutcome =
  | { kind: "ok" }
  | { kind: "signal"; info: SigInfo }
  | { kind: "uffd"; vma: Vma; page: number }
  | { kind: "oom" };

const OK: FaultOutcome = { kind: "ok" };

function sigbus(addr: number): FaultOutcome {
  return { kind: "signal", info: { signo: "SIGBUS", code: "BUS_ADRERR", addr } };
}

function readable(prot: number): boolean {
  // x86: PROT_WRITE and PROT_EXEC imply read access.
  return (prot & (PROT.PROT_READ | PROT.PROT_WRITE | PROT.PROT_EXEC)) !== 0;
}

/** Whether a present entry already satisfies the access (the fast path). */
export function pteAllows(pte: number, write: boolean): boolean {
  return pte !== 0 && (!write || (pte & PTE_WRITE) !== 0);
}

export function resolveFault(k: Kernel, p: Process, addr: number, write: boolean): FaultOutcome {
  const vma = p.mm.find(addr);
  if (!vma) return { kind: "signal", info: { signo: "SIGSEGV", code: "SEGV_MAPERR", addr } };
  if (write ? !(vma.prot & PROT.PROT_WRITE) : !readable(vma.prot)) {
    return { kind: "signal", info: { signo: "SIGSEGV", code: "SEGV_ACCERR", addr } };
  }
  const i = vma.index(addr);
  const pte = vma.pte(i);
  if (pteAllows(pte, write)) return OK;
  try {
    if (pte !== 0) return writeProtectFault(k, p, vma, i, pte, addr);
    if (vma.flags.pfnmap) return pfnFault(k, p, vma, i, write);
    if (vma.file) return fileFault(k, p, vma, i, addr, write);
    return anonFault(k, p, vma, i, addr, write);
  } catch (e) {
    if ((e as { code?: string }).code === "ENOMEM") return { kind: "oom" };
    throw e;
  }
}

/** A write to a present read-only entry: shared upgrade, or copy-on-write (do_wp_page). */
function writeProtectFault(
  k: Kernel,
  p: Process,
  vma: Vma,
  i: number,
  pte: number,
  addr: number,
): FaultOutcome {
  p.counters.minorFaults++;
  const frame = pteFrame(pte);
  if (vma.flags.shared) {
    // Shared file, shared anonymous (a shmem file) or a shared PFN map: no copy, upgrade.
    if (vma.file && pte & PTE_SPECIAL) {
      // A zero-page-beyond-EOF entry: the page is still beyond EOF for a write.
      if (vma.filePage(addr) * PAGE_SIZE >= vma.file.size) return sigbus(addr);
      zapOne(k, vma, i);
      return fileFault(k, p, vma, i, addr, true);
    }
    vma.setPte(i, pte | PTE_WRITE);
    return OK;
  }
  const rawPfn = vma.flags.pfnmap && !(pte & PTE_ANON);
  if (rawPfn) {
    // LINUX.md rule 18: a write to a private PFN map copies into a new anonymous page
    // (wp_page_copy via vm_normal_page returning NULL for the raw pfn).
    k.noteObsoleteFeature("write fault copied a private VM_PFNMAP page");
  }
  // Private: reuse an anonymous page only this process can reach, else copy it.
  if (pte & PTE_ANON && frame !== ZERO_FRAME && canReuseAnon(k, frame)) {
    k.frames.flags[frame] |= FRAME_ANON_EXCLUSIVE;
    vma.setPte(i, pte | PTE_WRITE);
    return OK;
  }
  prepareAnonVma(vma);
  const copy = k.frames.alloc(p.pid, "fault");
  k.frames.copyFrame(copy, frame);
  k.frames.flags[copy] = FRAME_ANON_EXCLUSIVE; // the new copy is exclusive to this process
  vma.setPte(i, makePte(copy, PTE_ANON | PTE_WRITE));
  if (frame !== ZERO_FRAME && !rawPfn) k.frames.put(frame);
  p.counters.cowCopies++;
  p.counters.anonPages++;
  return OK;
}

/**
 * do_wp_page's reuse test for an anonymous page. Since 5.19: "if (PageAnonExclusive(page))
 * goto reuse", else wp_can_reuse_anon_folio (no other reference). Before (5.9-5.18, kernel
 * feature `gup-pre-5.19`): reuse only when page_count() == 1, so a GUP pin's own reference
 * forces a copy and the pin keeps the old page: writes after it are lost to the device.
 */
export function canReuseAnon(k: Kernel, frame: number): boolean {
  if (k.features.has("gup-pre-5.19")) return k.frames.refs(frame) === 1;
  return (k.frames.flags[frame] & FRAME_ANON_EXCLUSIVE) !== 0 || k.frames.refs(frame) === 1;
}

function fileFault(
  k: Kernel,
  p: Process,
  vma: Vma,
  i: number,
  addr: number,
  write: boolean,
): FaultOutcome {
  const file = vma.file!;
  const pgoff = vma.pgoff + i; // vma.filePage(addr), without dividing again
  if (!write && faultAround(k, vma, i, addr)) {
    // filemap_map_pages mapped the faulting page itself: VM_FAULT_NOPAGE, one fault.
    p.counters.minorFaults++;
    return OK;
  }
  if (pgoff * PAGE_SIZE >= file.size) {
    // shmem_get_folio_gfp: "index >= i_size → -EINVAL" → VM_FAULT_SIGBUS, before any
    // userfaultfd is consulted (LINUX.md rule 16).
    if (!write && vma.flags.nofault && k.features.has("map-nofault")) {
      // MAP_NOFAULT (Torvalds, 2021): a private mapping's read fault beyond EOF maps an
      // anonymous zero page. It is not kept in sync with the file when it grows back.
      vma.setPte(i, makePte(ZERO_FRAME, PTE_ANON | PTE_SPECIAL));
      p.counters.zeroPageMaps++;
      p.counters.minorFaults++;
      return OK;
    }
    if (!write && file.zeroBeyondEof && k.features.has("zero-beyond-eof")) {
      // Zero page in the page cache beyond i_size (Shutemov, 2021): mapped like a cache page
      // (shared) and removed again when the file grows (truncate.ts growFile).
      vma.setPte(i, makePte(ZERO_FRAME, PTE_SPECIAL));
      p.counters.zeroPageMaps++;
      p.counters.minorFaults++;
      file.counters.zeroBeyondEofMaps++;
      return OK;
    }
    return sigbus(addr);
  }
  let frame = file.pages.get(pgoff);
  if (frame === undefined) {
    if (vma.uffd) return { kind: "uffd", vma, page: addr - (addr % PAGE_SIZE) };
    frame = k.frames.alloc(file.ino, "fault");
    file.pages.set(pgoff, frame);
    file.counters.pagesAllocated++;
  }
  // shmem_get_folio_gfp: a fallocated folio is cleared and marked uptodate on its first fault.
  k.frames.flags[frame] &= ~FRAME_NOT_UPTODATE;
  p.counters.minorFaults++;
  if (vma.flags.shared) {
    k.frames.get(frame);
    vma.setPte(i, makePte(frame, vma.prot & PROT.PROT_WRITE ? PTE_WRITE : 0));
    return OK;
  }
  if (write) {
    prepareAnonVma(vma);
    const copy = k.frames.alloc(p.pid, "fault");
    k.frames.copyFrame(copy, frame);
    k.frames.flags[copy] = FRAME_ANON_EXCLUSIVE;
    vma.setPte(i, makePte(copy, PTE_ANON | PTE_WRITE));
    p.counters.cowCopies++;
    p.counters.anonPages++;
    return OK;
  }
  k.frames.get(frame);
  vma.setPte(i, makePte(frame, 0));
  return OK;
}

/** fault_around_bytes (mm/memory.c, default 65536): the pages a read fault tries to map. */
export const FAULT_AROUND_PAGES = 16;
/** PTRS_PER_PTE on x86-64: a window never crosses a page-table (PMD) boundary. */
const PTRS_PER_PTE = 512;

/**
 * A read fault on a file mapping first maps the file's cached neighbours (mm/memory.c
 * do_read_fault → should_fault_around → do_fault_around → vm_ops->map_pages, which for
 * shmem is filemap_map_pages). The window is fault_around_pages entries aligned on the
 * *virtual* address (ALIGN_DOWN(pte_index(address), nr_pages)), clamped to the VMA and to
 * the page table; filemap_map_pages maps only pages that are in the cache and uptodate,
 * whose entry is still none, and never beyond the last page of i_size (end_pgoff clamped
 * to file_end), so SIGBUS beyond EOF is unchanged. Around-mapped entries are ordinary
 * entries: truncation zaps them (unmap_mapping_range) like any other. Not done for write
 * faults (do_shared_fault, do_cow_fault) nor where uffd_disable_fault_around (a WP or
 * MINOR registration, which this model has not) says so. The extra pages count no fault.
 * Returns whether the faulting page itself got mapped (then the fault is done).
 */
function faultAround(k: Kernel, vma: Vma, i: number, addr: number): boolean {
  const file = vma.file!;
  // pte_index(address). `%` of a number above 2^31 is a call to C's fmod, and a division by
  // the imported PAGE_SIZE a real division: products by the literals 2^-12 and 2^-9
  // (PTRS_PER_PTE) and floors are exact.
  const vpage = Math.floor(addr * (1 / 4096));
  const pteOff = (vpage - Math.floor(vpage * (1 / 512)) * PTRS_PER_PTE) | 0;
  const fromPte = Math.max(pteOff & -FAULT_AROUND_PAGES, pteOff - Math.min(pteOff, i));
  const toPte = Math.min(fromPte + FAULT_AROUND_PAGES, PTRS_PER_PTE, pteOff + vma.pages - i);
  const fileEnd = Math.ceil(file.size * (1 / 4096)); // first page index wholly beyond i_size
  const first = i + fromPte - pteOff;
  const end = Math.min(i + toPte - pteOff, fileEnd - vma.pgoff);
  if (first >= end) return false; // (the faulting entry is none: resolveFault's caller)
  const flags = vma.flags.shared && vma.prot & PROT.PROT_WRITE ? PTE_WRITE : 0;
  // Tight loops over the window, as filemap_map_pages' is: the page cache's index read
  // directly, the frame's reference taken and the entry stored without a call each. Only
  // the kernel's thread counts references (frames.ts get/put), so a plain increment is
  // frames.get's; an entry store that another thread sees late only sends that thread's
  // access through the kernel (remote-process.ts), which sees it. The window is walked
  // chunk by chunk (it crosses a chunk boundary only where the VMA's start is not aligned
  // as the window is), so that the loop holds its page-table chunk in hand.
  const cache = file.pages;
  const index = cache.index;
  const refcount = k.frames.refcount;
  const frameFlags = k.frames.flags;
  const chunks = vma.sharedChunks();
  const pgoff = vma.pgoff;
  // Imported bindings held in locals: each use of one inside the loop was a load from its
  // module cell with a hole check, and makePte's identity check before inlining it (perf
  // annotate of the pool bench).
  const notUptodate = FRAME_NOT_UPTODATE;
  const zero = ZERO_FRAME;
  for (let j = first; j < end; ) {
    const ci = j >>> CHUNK_SHIFT;
    const stop = Math.min(end, (ci + 1) * PTES_PER_CHUNK);
    let c = chunks[ci];
    if (c === undefined) {
      // No entry of this chunk is present yet: it is allocated for the first page mapped
      // (a window with nothing to map allocates nothing, as setPte of 0 does not).
      while (j < stop && mappable(cache, index, frameFlags, notUptodate, pgoff + j) < 0) j++;
      if (j === stop) continue;
      c = vma.chunkFor(j);
    }
    for (let e = j & CHUNK_MASK, pg = pgoff + j; j < stop; j++, e++, pg++) {
      if (c[e] !== 0) continue;
      const frame = mappable(cache, index, frameFlags, notUptodate, pg);
      if (frame < 0) continue;
      if (frame !== zero) refcount[frame]++;
      c[e] = ((frame + 1) << 3) | flags; // makePte(frame, flags)
    }
  }
  return vma.pte(i) !== 0;
}

/**
 * The frame caching file page `pg` if filemap_map_pages may map it (in the cache and
 * uptodate), else -1. The page cache's dense index first: it is authoritative below its
 * length (page-cache.ts), where 0 (not cached) reads as -1.
 */
function mappable(
  cache: PageCache,
  index: Int32Array,
  frameFlags: Int32Array,
  notUptodate: number,
  pg: number,
): number {
  const frame = pg < index.length ? index[pg] - 1 : (cache.get(pg) ?? -1);
  return frame >= 0 && (frameFlags[frame] & notUptodate) === 0 ? frame : -1;
}

function anonFault(
  k: Kernel,
  p: Process,
  vma: Vma,
  i: number,
  addr: number,
  write: boolean,
): FaultOutcome {
  if (vma.flags.userfault && k.features.has("madv-userfault")) {
    // MADV_USERFAULT (Arcangeli, 2014): a missing page in a marked range raises SIGBUS with
    // si_addr instead of being allocated; the handler resolves it and the access retries.
    return sigbus(addr);
  }
  if (vma.uffd) return { kind: "uffd", vma, page: addr - (addr % PAGE_SIZE) };
  p.counters.minorFaults++;
  if (!write) {
    // do_anonymous_page: a read maps the shared zero page.
    vma.setPte(i, makePte(ZERO_FRAME, PTE_ANON));
    p.counters.zeroPageMaps++;
    return OK;
  }
  prepareAnonVma(vma);
  const f = k.frames.alloc(p.pid, "fault");
  k.frames.flags[f] = FRAME_ANON_EXCLUSIVE;
  vma.setPte(i, makePte(f, PTE_ANON | PTE_WRITE));
  p.counters.anonPages++;
  return OK;
}

/** VM_PFNMAP: raw device frames, mapped as they are (remap_pfn_range). */
function pfnFault(k: Kernel, p: Process, vma: Vma, i: number, write: boolean): FaultOutcome {
  const pfn = vma.pfns?.[i];
  if (pfn === undefined) return sigbus(vma.start + i * PAGE_SIZE);
  p.counters.minorFaults++;
  vma.setPte(i, makePte(pfn, vma.flags.shared && vma.prot & PROT.PROT_WRITE ? PTE_WRITE : 0));
  if (write && !vma.flags.shared)
    return writeProtectFault(k, p, vma, i, vma.pte(i), vma.start + i * PAGE_SIZE);
  return OK;
}

/** Removes one entry and drops the frame reference it held (VM_PFNMAP frames hold none). */
export function zapOne(k: Kernel, vma: Vma, i: number): void {
  const pte = vma.pte(i);
  if (pte === 0) return;
  vma.setPte(i, 0);
  const f = pteFrame(pte);
  if (!(vma.flags.pfnmap && !(pte & PTE_ANON))) k.frames.put(f);
}

/**
 * zapOne for every present entry in [from, to), in index order (zap_pte_range), walking the
 * page-table chunks directly: the munmap of a large pool does not pay a call per entry.
 * Entries are cleared with plain stores and references dropped with plain decrements where
 * the frame keeps others (only the kernel's thread counts them); the last reference goes
 * through frames.put, whose atomic updates publish every clear before it before the frame
 * can be freed, so a thread that starts an access after the free sees the entry gone
 * (frames.ts: the epoch quarantine covers one that started before).
 */
export function zapRange(k: Kernel, vma: Vma, from: number, to: number): void {
  const chunks = vma.sharedChunks();
  const rawPfn = vma.flags.pfnmap;
  const frames = k.frames;
  const refcount = frames.refcount;
  const anon = PTE_ANON; // (imported bindings in locals: see faultAround)
  const zero = ZERO_FRAME;
  for (let ci = from >>> CHUNK_SHIFT; ci * PTES_PER_CHUNK < to; ci++) {
    const c = chunks[ci];
    if (c === undefined) continue;
    const lo = Math.max(from, ci * PTES_PER_CHUNK) - ci * PTES_PER_CHUNK;
    const hi = Math.min(to, (ci + 1) * PTES_PER_CHUNK) - ci * PTES_PER_CHUNK;
    for (let j = lo; j < hi; j++) {
      const pte = c[j]; // the kernel's thread reads its own entries plainly (vma.ts pte)
      if (pte === 0) continue;
      c[j] = 0;
      if (rawPfn && !(pte & anon)) continue;
      const f = (pte >>> 3) - 1; // pteFrame(pte)
      const refs = refcount[f];
      if (refs > 1 && f !== zero) refcount[f] = refs - 1;
      else frames.put(f);
    }
  }
}
