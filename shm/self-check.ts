/**
 * The kernel's debug self-check (issue 13): `checkInvariants(kernel)` walks every frame,
 * page table, page cache, reverse map and open file and throws a KernelInvariantError that
 * names the first broken rule. gVisor's mm does the same for its own state
 * (pkg/sentry/mm: "checkInvariants" on its vma and pma sets under the race detector);
 * Linux has CONFIG_DEBUG_VM (VM_BUG_ON_PAGE, mm/debug.c) for the same purpose.
 *
 * Never switched on in normal runs (benchmarks are unaffected): the test suite turns it on
 * with SHMLAB_KERNEL_CHECKS=1 (test/setup/kernel-self-check.ts), which wraps every syscall of
 * every Process so the check runs after each one.
 *
 * A check that fires is a kernel-model bug, not a test's: the rule it names is Linux's.
 */
import { TASK_SIZE } from "./address-space.ts";
import { deviceBuffers } from "./device.ts";
import type { OpenFile, ShmemFile } from "./file.ts";
import { FRAME_ANON_EXCLUSIVE, ZERO_FRAME } from "./frames.ts";
import { activePins } from "./gup.ts";
import type { Kernel } from "./kernel.ts";
import { Process, USER_SYSCALLS } from "./process.ts";
import { PAGE_SIZE, PROT } from "./uapi.ts";
import { PTE_ANON, PTE_SPECIAL, PTE_WRITE, PTES_PER_CHUNK, pteFrame, type Vma } from "./vma.ts";

/** The invariants, each with a stable code (KernelInvariantError.code). */
export const KERNEL_INVARIANTS = {
  /** A frame's refcount equals its page-cache, page-table, pin and device references. */
  "frame-refcount": "SHM_INV_FRAME_REFCOUNT",
  /** Allocator statistics agree with the frames that hold references. */
  "frame-stats": "SHM_INV_FRAME_STATS",
  /** Every present entry maps a live frame (or the zero page, or a device pfn). */
  "pte-frame": "SHM_INV_PTE_FRAME",
  /** An entry maps what its VMA says: the file's page cache, its own anon page, the pfn. */
  "pte-source": "SHM_INV_PTE_SOURCE",
  /** No file page is mapped beyond i_size (unmap_mapping_range on truncation). */
  "pte-beyond-eof": "SHM_INV_PTE_BEYOND_EOF",
  /** A writable entry needs PROT_WRITE, and is never the zero page or a page-cache page under a private mapping. */
  "pte-write": "SHM_INV_PTE_WRITE",
  /** A PageAnonExclusive page is mapped once. */
  "anon-exclusive": "SHM_INV_ANON_EXCLUSIVE",
  /** VMAs are page aligned, non-empty, inside TASK_SIZE, sorted and disjoint. */
  "vma-order": "SHM_INV_VMA_ORDER",
  /** The address space's tree: key and heap order, map_count, every cached gap (allocate's search). */
  "vma-tree": "SHM_INV_VMA_TREE",
  /** No page-table entry outside its VMA's pages. */
  "pte-outside-vma": "SHM_INV_PTE_OUTSIDE_VMA",
  /** i_mmap holds exactly the live VMAs mapping the file; i_mmap_writable counts them. */
  rmap: "SHM_INV_RMAP",
  /** An open file's refcount equals its fds, mappings and in-flight messages. */
  "file-refs": "SHM_INV_FILE_REFS",
  /** Pin bookkeeping (pinCounts) equals the pins held. */
  pins: "SHM_INV_PINS",
  /** A dead process holds no fd and no mapping. */
  "dead-process": "SHM_INV_DEAD_PROCESS",
  /**
   * A file that no fd, mapping or message references holds no pages (iput → evict →
   * shmem_evict_inode), and its count of open descriptions matches the ones that exist.
   */
  "orphan-file": "SHM_INV_ORPHAN_FILE",
} as const;

export type KernelInvariant = keyof typeof KERNEL_INVARIANTS;

export class KernelInvariantError extends Error {
  readonly code: (typeof KERNEL_INVARIANTS)[KernelInvariant];
  constructor(
    readonly invariant: KernelInvariant,
    detail: string,
  ) {
    super(`kernel invariant "${invariant}" broken: ${detail}`);
    this.name = "KernelInvariantError";
    this.code = KERNEL_INVARIANTS[invariant];
  }
}

function broken(invariant: KernelInvariant, detail: string): never {
  throw new KernelInvariantError(invariant, detail);
}

export interface CheckOptions {
  /** Require that unreferenced files hold no pages (see "orphan-file"); default true. */
  orphanFiles?: boolean;
}

/**
 * Every shmem file a check has ever reached, per kernel: a file whose last fd closed is no
 * longer reachable, but its page cache still holds references until it is evicted.
 */
const knownFiles = new WeakMap<Kernel, Set<ShmemFile>>();

/** What the walk of processes, messages, pins and devices reached. */
interface Reach {
  vmas: Set<Vma>;
  /** Open file → references found (fds, mappings, messages). */
  openFiles: Map<OpenFile, number>;
  /** Files some fd, mapping or message reaches now. */
  liveFiles: Set<ShmemFile>;
  /** Frame → references found. */
  refs: Map<number, number>;
  /** Anonymous exclusive frame → entries mapping it. */
  exclusiveMaps: Map<number, number>;
}

function bump<K>(m: Map<K, number>, key: K, by = 1): void {
  m.set(key, (m.get(key) ?? 0) + by);
}

function noteOpenFile(r: Reach, f: OpenFile): void {
  bump(r.openFiles, f);
  if (f.inode.kind === "shmem") r.liveFiles.add(f.inode);
}

/** Runs every check on `k`; throws KernelInvariantError naming the first broken rule. */
export function checkInvariants(k: Kernel, opts: CheckOptions = {}): void {
  const r: Reach = {
    vmas: new Set(),
    openFiles: new Map(),
    liveFiles: new Set(),
    refs: new Map(),
    exclusiveMaps: new Map(),
  };
  for (const p of k.processes.values()) checkProcess(k, p, r);
  for (const f of k.filesInFlight()) noteOpenFile(r, f);
  let files = knownFiles.get(k);
  if (!files) knownFiles.set(k, (files = new Set()));
  for (const f of r.liveFiles) files.add(f);
  for (const file of files) checkFile(file, r, opts);
  countPinsAndDevices(k, r);
  checkFrames(k, r);
  for (const [f, n] of r.openFiles) {
    if (f.refs !== n) broken("file-refs", `open file ${f.id} has refs ${f.refs}, ${n} found`);
  }
}

function checkProcess(k: Kernel, p: Process, r: Reach): void {
  const fds = p.fds.entries();
  if (!p.alive && (fds.length > 0 || p.mm.vmas.length > 0)) {
    broken(
      "dead-process",
      `${p.state} process ${p.pid} keeps ${fds.length} fds, ${p.mm.vmas.length} VMAs`,
    );
  }
  for (const [, f] of fds) noteOpenFile(r, f);
  let prevEnd = 0;
  for (const v of p.mm.vmas) {
    const where = `process ${p.pid} VMA [0x${v.start.toString(16)}, 0x${v.end.toString(16)})`;
    if (v.start % PAGE_SIZE || v.end % PAGE_SIZE || v.start >= v.end || v.end > TASK_SIZE) {
      broken("vma-order", `${where} is empty, unaligned or beyond TASK_SIZE`);
    }
    if (v.start < prevEnd) broken("vma-order", `${where} starts below the previous VMA's end`);
    prevEnd = v.end;
    if (v.owner !== p.counters) broken("rmap", `${where} is accounted to another process`);
    r.vmas.add(v);
    if (v.openFile) noteOpenFile(r, v.openFile);
    if (v.file) {
      r.liveFiles.add(v.file);
      if (!v.file.mappings.has(v))
        broken("rmap", `${where} is missing from ino ${v.file.ino}'s i_mmap`);
    }
    checkEntries(k, v, where, r);
  }
  // Last: a VMA whose bounds are wrong also leaves the tree's gaps stale; name the bounds.
  const tree = p.mm.treeProblem();
  if (tree) broken("vma-tree", `process ${p.pid}: ${tree}`);
}

/** The page-table entries of one VMA, against its kind of memory. */
function checkEntries(k: Kernel, v: Vma, where: string, r: Reach): void {
  const chunks = v.sharedChunks();
  v.forEachPresent(v.pages, chunks.length * PTES_PER_CHUNK, (i) =>
    broken("pte-outside-vma", `${where} has an entry at page ${i} of ${v.pages}`),
  );
  const eofPage = v.file ? Math.ceil(v.file.size / PAGE_SIZE) : Number.POSITIVE_INFINITY;
  v.forEachPresent(0, v.pages, (i, pte) => {
    const f = pteFrame(pte);
    const at = `${where} page ${i}`;
    const rawPfn = v.flags.pfnmap && !(pte & PTE_ANON);
    if (pte & PTE_WRITE) {
      if (!(v.prot & PROT.PROT_WRITE)) broken("pte-write", `${at} is writable without PROT_WRITE`);
      if (f === ZERO_FRAME) broken("pte-write", `${at} maps the zero page writable`);
      if (!v.flags.shared && !(pte & PTE_ANON)) {
        broken("pte-write", `${at}: a private mapping writes a page it does not own (COW skipped)`);
      }
    }
    if (pte & PTE_SPECIAL && f !== ZERO_FRAME)
      broken("pte-source", `${at}: special entry not the zero page`);
    if (rawPfn) {
      if (v.pfns?.[i] !== f)
        broken("pte-source", `${at} maps pfn ${f}, not the device's ${v.pfns?.[i]}`);
      return; // remap_pfn_range entries hold no reference
    }
    if (f !== ZERO_FRAME && (f >= k.frames.extent || k.frames.refcount[f] <= 0)) {
      broken("pte-frame", `${at} maps frame ${f}, which is free`);
    }
    if (f !== ZERO_FRAME) bump(r.refs, f);
    if (pte & PTE_ANON) {
      if (v.flags.shared) broken("pte-source", `${at}: an anonymous page in a shared mapping`);
      if (f !== ZERO_FRAME && k.frames.flags[f] & FRAME_ANON_EXCLUSIVE) bump(r.exclusiveMaps, f);
    } else if (!v.flags.pfnmap) {
      checkFileEntry(v, i, pte, eofPage, at);
    }
  });
}

/** A non-anonymous entry of a file mapping: the page cache's page, or a proposal's zero page. */
function checkFileEntry(v: Vma, i: number, pte: number, eofPage: number, at: string): void {
  const file = v.file;
  if (!file) broken("pte-source", `${at}: a file page in an anonymous mapping`);
  const pg = v.pgoff + i;
  if (pte & PTE_SPECIAL) {
    // The zero-beyond-EOF proposal's entries live only beyond i_size; growFile zaps them.
    if (pg < eofPage) broken("pte-source", `${at}: a beyond-EOF zero page inside i_size`);
    return;
  }
  if (pg >= eofPage)
    broken("pte-beyond-eof", `${at} maps file page ${pg} beyond i_size ${file.size}`);
  const cached = file.pages.get(pg);
  if (cached !== pteFrame(pte)) {
    broken(
      "pte-source",
      `${at} maps frame ${pteFrame(pte)}, the page cache has ${cached} for page ${pg}`,
    );
  }
}

function checkFile(file: ShmemFile, r: Reach, opts: CheckOptions): void {
  let writable = 0;
  for (const m of file.mappings) {
    if (!r.vmas.has(m)) broken("rmap", `ino ${file.ino}'s i_mmap holds a VMA no process has`);
    if (m.flags.shared && m.flags.mayWrite) writable++;
  }
  if (writable !== file.writableMappings) {
    broken("rmap", `ino ${file.ino}: i_mmap_writable ${file.writableMappings}, ${writable} found`);
  }
  for (const f of file.pages.values()) bump(r.refs, f);
  if (opts.orphanFiles !== false && !r.liveFiles.has(file) && file.pages.size > 0) {
    broken("orphan-file", `ino ${file.ino} is unreferenced and keeps ${file.pages.size} pages`);
  }
  let open = 0;
  for (const f of r.openFiles.keys()) if (f.inode === file) open++;
  if (file.openFiles !== open) {
    broken(
      "orphan-file",
      `ino ${file.ino} counts ${file.openFiles} open descriptions, ${open} exist`,
    );
  }
}

function countPinsAndDevices(k: Kernel, r: Reach): void {
  const pinned = new Map<number, number>();
  for (const pin of activePins(k)) for (const f of pin.frames) bump(pinned, f);
  for (const [f, n] of pinned) {
    if (k.pinCounts.get(f) !== n)
      broken("pins", `frame ${f}: pinCounts ${k.pinCounts.get(f)}, ${n} pins`);
    if (f !== ZERO_FRAME) bump(r.refs, f, n);
  }
  for (const f of k.pinCounts.keys()) {
    if (!pinned.has(f)) broken("pins", `frame ${f} counted pinned with no pin held`);
  }
  for (const b of deviceBuffers(k)) for (const f of b.frames) bump(r.refs, f);
}

function checkFrames(k: Kernel, r: Reach): void {
  const t = k.frames;
  if (t.refcount[ZERO_FRAME] !== 1) broken("frame-refcount", "the zero page's refcount changed");
  let inUse = 0;
  for (let f = 1; f < t.extent; f++) {
    const have = t.refcount[f];
    const want = r.refs.get(f) ?? 0;
    if (have !== want) {
      broken(
        "frame-refcount",
        `frame ${f} (owner ${t.owner[f]}) has refcount ${have}, ${want} references found`,
      );
    }
    if (have > 0) inUse++;
  }
  if (t.getStats().inUse !== inUse) {
    broken("frame-stats", `allocator counts ${t.getStats().inUse} frames in use, ${inUse} found`);
  }
  for (const [f, n] of r.exclusiveMaps) {
    if (n > 1) broken("anon-exclusive", `exclusive anonymous frame ${f} is mapped ${n} times`);
  }
}

/** Kernels smaller than this (VMAs + frames in use) are checked after every syscall. */
export const CHECK_EVERY_SYSCALL_BELOW = 1024;

function sizeOf(k: Kernel): number {
  let n = k.frames.getStats().inUse;
  for (const p of k.processes.values()) n += p.mm.size;
  return n;
}

/** Process methods that enter the kernel beyond USER_SYSCALLS (fd passing, signals, fork). */
const OTHER_ENTRIES = ["sendFd", "receiveFd", "preadInto", "sigaction", "fork"];

/**
 * Wraps every syscall method of Process so that `checkInvariants` runs after each one
 * (whether it returned or threw). A violation is handed to `onViolation` (so that a caller
 * that swallows errors cannot hide it) and thrown. Returns a function that undoes the wrap.
 */
export function checkAfterEverySyscall(
  onViolation: (e: KernelInvariantError) => void,
  opts: CheckOptions = {},
): () => void {
  const proto = Process.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const saved = new Map<string, (...a: unknown[]) => unknown>();
  // A check walks the whole kernel. After every syscall while the kernel is small; on a
  // big one (the max_map_count test makes 65,530 VMAs) after every Nth, N growing with the
  // square of its size, so that checking a huge kernel costs seconds, not hours.
  // Deterministic: the same run checks at the same syscalls.
  const calls = new WeakMap<Kernel, number>();
  const check = (k: Kernel) => {
    const n = (calls.get(k) ?? 0) + 1;
    calls.set(k, n);
    const over = Math.max(1, Math.ceil(sizeOf(k) / CHECK_EVERY_SYSCALL_BELOW));
    const every = over * over;
    if (n % every !== 0) return;
    try {
      checkInvariants(k, opts);
    } catch (e) {
      if (e instanceof KernelInvariantError) onViolation(e);
      throw e;
    }
  };
  for (const name of [...USER_SYSCALLS, ...OTHER_ENTRIES]) {
    const original = proto[name];
    if (typeof original !== "function" || saved.has(name)) continue;
    saved.set(name, original);
    proto[name] = function (this: Process, ...args: unknown[]) {
      let result: unknown;
      try {
        result = original.apply(this, args);
      } catch (e) {
        check(this.kernel); // a failed syscall (or a kill) must leave the kernel whole too
        throw e;
      }
      check(this.kernel);
      return result;
    };
  }
  return () => {
    for (const [name, fn] of saved) proto[name] = fn;
  };
}
