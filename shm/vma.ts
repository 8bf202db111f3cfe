/**
 * A virtual memory area: one mmap'd range with one set of flags, and its page-table
 * entries. Page tables are allocated lazily in chunks of 512 entries (one x86 page-table
 * page), each in its own SharedArrayBuffer so another thread can read translations directly.
 *
 * PTE encoding (Int32): 0 = not present; otherwise ((frame + 1) << 3) | flags.
 */
import type { OpenFile, ShmemFile } from "./file.ts";
import type { MappingList } from "./mapping-list.ts";
import type { UffdContext } from "./userfaultfd.ts";

export const PTE_WRITE = 1;
/** The frame is an anonymous page of this mapping (a private COW copy or anonymous memory). */
export const PTE_ANON = 2;
/** Proposal entries: zero page beyond EOF (Shutemov) or MAP_NOFAULT's zero page. */
export const PTE_SPECIAL = 4;

export const PTES_PER_CHUNK = 512;
export const CHUNK_SHIFT = 9;
export const CHUNK_MASK = PTES_PER_CHUNK - 1;
const CHUNK_BYTES = PTES_PER_CHUNK * 4;
/** VMAs of at most this many chunks get them all in one buffer (Vma.newChunk). */
const SMALL_VMA_CHUNKS = 8;

let nextAnonVma = 1;
/** anon_vma_prepare: the first anonymous page of a VMA gives it an anon_vma. */
export function prepareAnonVma(v: Vma): void {
  if (!v.anonVma) v.anonVma = nextAnonVma++;
}

export function makePte(frame: number, flags: number): number {
  return ((frame + 1) << 3) | flags;
}
export function pteFrame(pte: number): number {
  return (pte >>> 3) - 1;
}

/**
 * `chunks` cut or extended to n slots, as a new array: setting an array's length is a slow
 * runtime call in V8 (~130 ns, a tenth of a SIGBUS handler's mmap, which splits a VMA),
 * and a VMA has few slots to copy. Holders of the old array (a zap in progress takes it per
 * call; remote-kernel.ts sends a copy) are unaffected.
 */
function withLength(chunks: (Int32Array | undefined)[], n: number): (Int32Array | undefined)[] {
  const out = new Array<Int32Array | undefined>(n);
  const m = Math.min(n, chunks.length);
  for (let i = 0; i < m; i++) out[i] = chunks[i];
  return out;
}

export interface VmaFlags {
  shared: boolean;
  anonymous: boolean;
  droppable: boolean;
  /** Proposal: MAP_NOFAULT (private file mappings only). */
  nofault: boolean;
  /** VM_MAYWRITE: mprotect may add PROT_WRITE later. */
  mayWrite: boolean;
  wipeOnFork: boolean;
  dontFork: boolean;
  /** Proposal: MADV_USERFAULT marked (missing anonymous pages raise SIGBUS). */
  userfault: boolean;
  /** VM_PFNMAP: device memory with no struct pages behind it (issue 9 hazard). */
  pfnmap: boolean;
}

/**
 * A new mapping's flags: VM_MAYWRITE, none of the madvise marks (WIPEONFORK, DONTFORK) or
 * proposals' (NOFAULT, USERFAULT, DROPPABLE), private, anonymous unless `over` says otherwise.
 */
export function newVmaFlags(over: Partial<VmaFlags> = {}): VmaFlags {
  return {
    shared: false,
    anonymous: true,
    droppable: false,
    nofault: false,
    mayWrite: true,
    wipeOnFork: false,
    dontFork: false,
    userfault: false,
    pfnmap: false,
    ...over,
  };
}

/** A copy of `f` (a split's upper part gets its own flags, as a new vm_area_struct does). */
export function copyFlags(f: VmaFlags): VmaFlags {
  return {
    shared: f.shared,
    anonymous: f.anonymous,
    droppable: f.droppable,
    nofault: f.nofault,
    mayWrite: f.mayWrite,
    wipeOnFork: f.wipeOnFork,
    dontFork: f.dontFork,
    userfault: f.userfault,
    pfnmap: f.pfnmap,
  } satisfies Required<VmaFlags>;
}

export class Vma {
  private chunks: (Int32Array | undefined)[];
  /** userfaultfd registration (MISSING mode), if any. */
  uffd: UffdContext | undefined;
  /** For VM_PFNMAP: the device frames backing each page. */
  pfns: number[] | undefined;
  /**
   * The anon_vma this VMA's anonymous pages hang off (0: none yet). Linux only merges two
   * adjacent anonymous VMAs whose anon_vmas are compatible (is_mergeable_anon_vma).
   */
  anonVma = 0;
  /** The counters of the process whose address space holds this VMA. */
  owner: import("./counters.ts").ProcessCounters | undefined;
  /** The i_mmap list this VMA is on, and its neighbours there (mapping-list.ts). */
  mapList: MappingList | undefined;
  mapPrev: Vma | undefined;
  mapNext: Vma | undefined;

  constructor(
    public start: number,
    public end: number,
    public prot: number,
    public readonly flags: VmaFlags,
    /** The file mapped (shmem only); undefined for anonymous memory. */
    public readonly file: ShmemFile | undefined,
    /** The open file description the mapping holds a reference to (vma->vm_file). */
    public readonly openFile: OpenFile | undefined,
    /** File offset of `start`, in pages. */
    public pgoff: number,
  ) {
    this.chunks = new Array(Math.ceil(this.pages / PTES_PER_CHUNK));
  }

  // Page arithmetic multiplies by the literal 2^-12 (exact, as the division by 4096 is): V8
  // divides by an imported (or module-level) PAGE_SIZE with a real division, loaded from
  // the module's context, on the critical path of every user access.
  get pages(): number {
    return (this.end - this.start) * (1 / 4096);
  }

  /** Page index within this VMA of an address inside it. */
  index(addr: number): number {
    return Math.floor((addr - this.start) * (1 / 4096));
  }

  /** File page offset of an address inside this VMA. */
  filePage(addr: number): number {
    return this.pgoff + this.index(addr);
  }

  // Page indices fit 31 bits (a VMA is below 8 TiB), so shifts and masks split them.
  // Entries are written only on the kernel's thread, which therefore reads them plainly (an
  // aligned Int32Array element is tear-free); stores stay atomic for the threads that read
  // the chunks directly (remote-process.ts, with Atomics.load).
  pte(i: number): number {
    // CHUNK_SHIFT and CHUNK_MASK written out: every use of a module-level binding in a hot
    // path is a load from its cell with a hole check (perf annotate of the pool bench).
    const c = this.chunks[i >>> 9];
    return c === undefined ? 0 : c[i & 511];
  }

  setPte(i: number, v: number): void {
    const ci = i >>> CHUNK_SHIFT;
    let c = this.chunks[ci];
    if (c === undefined) {
      if (v === 0) return;
      c = this.newChunk(ci);
    }
    Atomics.store(c, i & CHUNK_MASK, v);
  }

  /**
   * The page-table chunk holding entry i, allocated if it was not: for a bulk writer
   * (fault-around) that stores a run of entries itself instead of a setPte call each.
   */
  chunkFor(i: number): Int32Array {
    const ci = i >>> CHUNK_SHIFT;
    let c = this.chunks[ci];
    if (c === undefined) c = this.newChunk(ci);
    return c;
  }

  /**
   * Allocates chunk ci (undefined until now). A SharedArrayBuffer costs about 0.5 µs to make
   * and free (the shared backing store's registry, the sweeper), a third of mapping a
   * fault-around window: a VMA of at most SMALL_VMA_CHUNKS chunks (16 MiB) gets all its
   * missing chunks at once, in one buffer, when its first entry is stored. Every chunk is
   * still its own Int32Array (remote threads and splits take them one by one); a larger VMA
   * gets its chunks one by one, where it is touched.
   */
  private newChunk(ci: number): Int32Array {
    const chunks = this.chunks;
    const n = chunks.length;
    if (n > SMALL_VMA_CHUNKS) {
      const c = new Int32Array(new SharedArrayBuffer(CHUNK_BYTES));
      chunks[ci] = c;
      return c;
    }
    let missing = 0;
    for (let x = 0; x < n; x++) if (chunks[x] === undefined) missing++;
    const buf = new SharedArrayBuffer(missing * CHUNK_BYTES);
    for (let x = 0, at = 0; x < n; x++) {
      if (chunks[x] !== undefined) continue;
      chunks[x] = new Int32Array(buf, at, PTES_PER_CHUNK);
      at += CHUNK_BYTES;
    }
    return chunks[ci]!;
  }

  /** Calls fn(index, pte) for every present entry in [from, to) page indices. */
  forEachPresent(from: number, to: number, fn: (i: number, pte: number) => void): void {
    for (let ci = Math.floor(from / PTES_PER_CHUNK); ci * PTES_PER_CHUNK < to; ci++) {
      const c = this.chunks[ci];
      if (!c) continue;
      const lo = Math.max(from, ci * PTES_PER_CHUNK);
      const hi = Math.min(to, (ci + 1) * PTES_PER_CHUNK);
      for (let i = lo; i < hi; i++) {
        const v = c[i & CHUNK_MASK];
        if (v !== 0) fn(i, v);
      }
    }
  }

  /** The page-table chunks, for a thread that reads translations directly. */
  sharedChunks(): (Int32Array | undefined)[] {
    return this.chunks;
  }

  /**
   * Splits this VMA at `addr` (page aligned, strictly inside) and returns the upper part,
   * which takes the upper page-table entries with it.
   */
  splitAt(addr: number): Vma {
    const at = this.index(addr);
    const upper = new Vma(
      addr,
      this.end,
      this.prot,
      copyFlags(this.flags),
      this.file,
      this.openFile,
      this.pgoff + at,
    );
    upper.uffd = this.uffd;
    upper.owner = this.owner;
    upper.anonVma = this.anonVma;
    if (this.pfns) upper.pfns = this.pfns.slice(at);
    const pages = this.pages;
    // The entries above the split move to `upper` (a direct walk: no closure per split).
    for (let ci = at >>> CHUNK_SHIFT; ci < this.chunks.length; ci++) {
      const c = this.chunks[ci];
      if (c === undefined) continue;
      const hi = Math.min(pages, (ci + 1) * PTES_PER_CHUNK);
      for (let i = Math.max(at, ci * PTES_PER_CHUNK); i < hi; i++) {
        const v = c[i & CHUNK_MASK];
        if (v !== 0) upper.setPte(i - at, v);
      }
    }
    const keep = Math.ceil(at / PTES_PER_CHUNK);
    // Entries above the split now belong to `upper`; clear them here before truncating
    // (only the chunk the split falls in is kept, and only if it was ever allocated).
    const shared = this.chunks[keep - 1];
    if (shared !== undefined)
      for (let i = at; i < keep * PTES_PER_CHUNK && i < pages; i++) this.setPte(i, 0);
    if (this.chunks.length !== keep) this.chunks = withLength(this.chunks, keep);
    if (this.pfns) this.pfns.length = at;
    this.end = addr;
    return upper;
  }

  /** Moves this VMA to a new start (mremap MAYMOVE), keeping its entries. */
  relocate(newStart: number): void {
    this.end = newStart + (this.end - this.start);
    this.start = newStart;
  }

  /** Grows or shrinks the end (entries beyond a shrunk end must already be zapped). */
  resize(newEnd: number): void {
    this.end = newEnd;
    const n = Math.ceil(this.pages / PTES_PER_CHUNK);
    if (this.chunks.length !== n) this.chunks = withLength(this.chunks, n);
  }
}
