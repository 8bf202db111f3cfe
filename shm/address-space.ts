/**
 * An address space (mm_struct): the VMAs of one process, in a balanced search tree keyed by
 * start address — the job Linux gives the maple tree. Lookup, insert and remove are
 * logarithmic, and so is finding a free range: every node carries the usable gap above its
 * VMA and the largest gap in its subtree (what the maple tree's gap tracking, and before it
 * the rb-tree's rb_subtree_gap, are for), so a search skips whole subtrees with no room.
 *
 * Mappings are placed top-down from MMAP_BASE, as Linux's default mmap layout does, and
 * adjacent: mm/vma.c unmapped_area_topdown returns the top of the highest free gap that fits
 * ("gap = mas.last + 1 - info->length"), and the only distance it keeps from a neighbour is
 * vm_start_gap/vm_end_gap's stack_guard_gap beside a VM_GROWSDOWN/VM_GROWSUP (or shadow-stack)
 * VMA, which the model never makes. So a new mapping ends where the one mapped before it
 * starts, and an access running past a mapping's end reads its neighbour, as on the host
 * (scenarios/placement). The tree is a treap whose priorities come from a fixed-seed
 * generator, so the shape (and any cost) is the same on every run.
 *
 * Not modelled: thp_get_unmapped_area_vmflags' 2 MiB alignment of anonymous private mappings
 * whose length is a multiple of PMD_SIZE (__get_unmapped_area): the model has no huge pages,
 * and no scenario maps such a length.
 */

import type { Vma } from "./vma.ts";

/**
 * Where a fresh process's first mmap ends: the start of the loader's first anonymous
 * mapping, which every process gets at spawn (shm/loader-image.ts).
 */
export const MMAP_BASE = 0x7f00_0000_0000;
/**
 * No mapping is placed above this: the end of the loader's 8 KiB mapping, where Linux has
 * [vvar], [vdso] and ld.so's image (shm/loader-image.ts), which the model does not map. While
 * the loader's mapping is there, nothing is placed above MMAP_BASE either; a process that
 * unmaps it gets those pages back for its next mmap, as the highest free gap.
 */
export const MMAP_CEILING = MMAP_BASE + 0x2000;
export const MMAP_MIN = 0x1000_0000;
/** TASK_SIZE on x86_64 with 4-level paging. */
export const TASK_SIZE = 0x7fff_ffff_f000;
/** vm.max_map_count's default (DEFAULT_MAX_MAP_COUNT = USHRT_MAX - MAPCOUNT_ELF_CORE_MARGIN). */
export const DEFAULT_MAX_MAP_COUNT = 65530;

interface Node {
  vma: Vma;
  prio: number;
  left: Node | undefined;
  right: Node | undefined;
  /** Bytes a new mapping may use between this VMA and the next one (or MMAP_CEILING). */
  gap: number;
  /** The largest `gap` in this subtree. */
  maxGap: number;
}

/**
 * The highest address a new mapping may end at below `upper`: its start (vm_start_gap of an
 * ordinary VMA), or MMAP_CEILING.
 */
function ceilingBelow(upper: Vma | undefined): number {
  return upper ? Math.min(MMAP_CEILING, upper.start) : MMAP_CEILING;
}

/** Free room above `lower` and below `upper` (or MMAP_CEILING): no guard pages (vm_end_gap). */
function gapBetween(lower: Vma, upper: Vma | undefined): number {
  return ceilingBelow(upper) - lower.end;
}

function pull(n: Node): void {
  let m = n.gap;
  if (n.left && n.left.maxGap > m) m = n.left.maxGap;
  if (n.right && n.right.maxGap > m) m = n.right.maxGap;
  n.maxGap = m;
}

/** split's two results (module-level, so that a split allocates nothing). */
let splitLeft: Node | undefined;
let splitRight: Node | undefined;

/** Splits `t` into the VMAs starting before `key` (splitLeft) and the rest (splitRight). */
function split(t: Node | undefined, key: number): void {
  if (!t) {
    splitLeft = undefined;
    splitRight = undefined;
    return;
  }
  if (t.vma.start < key) {
    split(t.right, key);
    t.right = splitLeft;
    pull(t);
    splitLeft = t;
    return;
  }
  split(t.left, key);
  t.left = splitRight;
  pull(t);
  splitRight = t;
}

/** Sets the gap of the node starting at `start` and re-pulls the maxima on its path. */
function setGap(n: Node | undefined, start: number, gap: number): boolean {
  if (!n) return false;
  if (n.vma.start === start) n.gap = gap;
  else if (!setGap(start < n.vma.start ? n.left : n.right, start, gap)) return false;
  pull(n);
  return true;
}

/** Joins two treaps where every key of `a` is below every key of `b`. */
function merge(a: Node | undefined, b: Node | undefined): Node | undefined {
  if (!a) return b;
  if (!b) return a;
  if (a.prio > b.prio) {
    a.right = merge(a.right, b);
    pull(a);
    return a;
  }
  b.left = merge(a, b.left);
  pull(b);
  return b;
}

function inOrder(n: Node | undefined, out: Vma[]): void {
  if (!n) return;
  inOrder(n.left, out);
  out.push(n.vma);
  inOrder(n.right, out);
}

function collectOverlapping(n: Node | undefined, start: number, end: number, out: Vma[]): void {
  if (!n) return;
  if (n.vma.start >= end) {
    collectOverlapping(n.left, start, end, out);
    return;
  }
  // Everything left of n ends at or before n's start.
  if (n.vma.start > start) collectOverlapping(n.left, start, end, out);
  if (n.vma.end > start) out.push(n.vma);
  collectOverlapping(n.right, start, end, out);
}

export class AddressSpace {
  private root: Node | undefined;
  private count = 0;
  private seed = 0x9e3779b9;
  /** Bumped on every change to the VMA set, so another thread can tell its copy is stale. */
  generation = 0;
  /**
   * The VMA `find` returned last (mmap_cache / vmacache before the maple tree): consecutive
   * accesses nearly always fall in it. Its bounds are read live and VMAs in the tree never
   * overlap, so it stays right until it leaves the tree (remove, replace), which forgets it.
   */
  private last: Vma | undefined;
  /** The one `find` returned before `last` (a fault and its handler alternate two VMAs). */
  private before: Vma | undefined;

  /** map_count: how many VMAs there are. */
  get size(): number {
    return this.count;
  }

  /** Every VMA in address order (a copy: O(n), for walks over the whole space). */
  get vmas(): Vma[] {
    const out: Vma[] = [];
    inOrder(this.root, out);
    return out;
  }

  /** The VMA containing addr, or undefined (find_vma + range check). */
  find(addr: number): Vma | undefined {
    const c = this.last;
    if (c !== undefined && addr >= c.start && addr < c.end) return c;
    const d = this.before;
    if (d !== undefined && addr >= d.start && addr < d.end) {
      this.before = c;
      this.last = d;
      return d;
    }
    const v = this.floor(addr);
    if (v === undefined || addr >= v.end) return undefined;
    this.before = c;
    this.last = v;
    return v;
  }

  /** The VMA with the largest start <= addr. */
  private floor(addr: number): Vma | undefined {
    let n = this.root;
    let best: Vma | undefined;
    while (n) {
      if (n.vma.start <= addr) {
        best = n.vma;
        n = n.right;
      } else n = n.left;
    }
    return best;
  }

  /** The VMA just above `v` (vma_next). */
  next(v: Vma): Vma | undefined {
    let n = this.root;
    let best: Vma | undefined;
    while (n) {
      if (n.vma.start > v.start) {
        best = n.vma;
        n = n.left;
      } else n = n.right;
    }
    return best;
  }

  /** The VMA just below `v` (vma_prev). */
  prev(v: Vma): Vma | undefined {
    let n = this.root;
    let best: Vma | undefined;
    while (n) {
      if (n.vma.start < v.start) {
        best = n.vma;
        n = n.right;
      } else n = n.left;
    }
    return best;
  }

  /** Whether `v` itself is in this address space. */
  has(v: Vma): boolean {
    return this.nodeOf(v.start)?.vma === v;
  }

  private nodeOf(start: number): Node | undefined {
    let n = this.root;
    while (n && n.vma.start !== start) n = start < n.vma.start ? n.left : n.right;
    return n;
  }

  /** Recomputes the gap above the VMA starting at `start`, and the maxima on its path. */
  private refreshGap(v: Vma | undefined): void {
    if (!v) return;
    setGap(this.root, v.start, gapBetween(v, this.next(v)));
  }

  private nextPrio(): number {
    // xorshift32: a fixed sequence, so the tree's shape is the same on every run.
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    return this.seed;
  }

  insert(vma: Vma): void {
    const node: Node = {
      vma,
      prio: this.nextPrio(),
      left: undefined,
      right: undefined,
      gap: 0,
      maxGap: 0,
    };
    split(this.root, vma.start);
    const r = splitRight;
    this.root = merge(merge(splitLeft, node), r);
    this.count++;
    this.refreshGap(vma);
    this.refreshGap(this.prev(vma));
    this.generation++;
  }

  remove(vma: Vma): void {
    if (!this.has(vma)) return;
    const below = this.prev(vma);
    split(this.root, vma.start);
    const l = splitLeft;
    split(splitRight, vma.start + 1);
    this.root = merge(l, splitRight);
    this.count--;
    if (this.last === vma) this.last = undefined;
    if (this.before === vma) this.before = undefined;
    this.refreshGap(below);
    this.generation++;
  }

  /**
   * Debug self-check (shm/self-check.ts): the treap's order, heap priorities, node count and
   * every cached gap and subtree maximum, recomputed from scratch. Returns what is wrong.
   */
  treeProblem(): string | undefined {
    const all = this.vmas;
    if (all.length !== this.count) return `map_count ${this.count}, ${all.length} VMAs in the tree`;
    for (const c of [this.last, this.before])
      if (c !== undefined && !all.includes(c))
        return `find's cached VMA at 0x${c.start.toString(16)} is not in the tree`;
    const above = new Map<Vma, Vma | undefined>(all.map((v, i) => [v, all[i + 1]]));
    let problem: string | undefined;
    const walk = (n: Node | undefined, lo: number, hi: number): number => {
      if (!n || problem) return Number.NEGATIVE_INFINITY;
      const v = n.vma;
      if (v.start < lo || v.start >= hi)
        problem = `VMA at 0x${v.start.toString(16)} out of key order`;
      for (const c of [n.left, n.right]) if (c && c.prio > n.prio) problem = "heap order broken";
      const want = gapBetween(v, above.get(v));
      if (n.gap !== want)
        problem = `stale gap above 0x${v.start.toString(16)}: ${n.gap}, not ${want}`;
      const max = Math.max(n.gap, walk(n.left, lo, v.start), walk(n.right, v.start + 1, hi));
      if (n.maxGap !== max) problem = `stale subtree gap at 0x${v.start.toString(16)}`;
      return max;
    };
    walk(this.root, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY);
    return problem;
  }

  /** `v`'s end moved (mremap growing in place, a merge): its gap above changed. */
  resized(v: Vma): void {
    this.refreshGap(v);
    this.generation++;
  }

  /** VMAs overlapping [start, end), in order. */
  overlapping(start: number, end: number): Vma[] {
    const out: Vma[] = [];
    collectOverlapping(this.root, start, end, out);
    return out;
  }

  /** True when every byte of [start, end) is inside some VMA. */
  fullyMapped(start: number, end: number): boolean {
    let at = start;
    for (const v of this.overlapping(start, end)) {
      if (v.start > at) return false;
      at = v.end;
    }
    return at >= end;
  }

  /**
   * Splits VMAs so that `start` and `end` fall on VMA boundaries, and returns the VMAs now
   * wholly inside [start, end). `maySplit` is asked before each split (vm.max_map_count:
   * mm/vma.c split_vma refuses with ENOMEM at the limit); it throws to refuse.
   */
  isolate(start: number, end: number, maySplit?: (edge: number) => void): Vma[] {
    this.splitAround(start, maySplit);
    this.splitAround(end, maySplit);
    return this.overlapping(start, end);
  }

  /**
   * isolate(start, end) for an unmap, whose caller removes every VMA returned (removeVma).
   * A VMA cut at `end` that starts inside the range only loses its head: its upper part
   * takes its node in the tree (the order is unchanged) instead of an insert and a remove,
   * and the head comes back last, already out of the tree.
   */
  isolateForUnmap(start: number, end: number): Vma[] {
    this.splitAround(start, undefined);
    const head = this.splitAround(end, undefined, start);
    const out = this.overlapping(start, end);
    if (head !== undefined) out.push(head);
    return out;
  }

  /**
   * Splits the VMA that `edge` falls strictly inside, if any (split_vma). When that VMA
   * starts at or above `detachFrom`, its upper part replaces it in the tree and the lower
   * part, now out of the tree, is returned.
   */
  private splitAround(
    edge: number,
    maySplit: ((edge: number) => void) | undefined,
    detachFrom = Number.POSITIVE_INFINITY,
  ): Vma | undefined {
    const v = this.find(edge);
    if (v === undefined || v.start >= edge) return undefined;
    maySplit?.(edge);
    const upper = v.splitAt(edge);
    const detach = v.start >= detachFrom;
    if (detach) this.replace(v, upper);
    else this.insert(upper);
    if (v.file) v.file.mappings.add(upper);
    if (v.file && v.flags.shared && v.flags.mayWrite) v.file.writableMappings++;
    if (v.openFile) v.openFile.refs++;
    return detach ? v : undefined;
  }

  /** `by` takes the node of `old`, which it directly follows in address order. */
  private replace(old: Vma, by: Vma): void {
    const n = this.nodeOf(old.start);
    if (n === undefined || n.vma !== old) throw new Error("replace: VMA not in this address space");
    n.vma = by;
    if (this.last === old) this.last = undefined;
    if (this.before === old) this.before = undefined;
    // `by` ends where `old` did, under the same neighbour: the node's gap is unchanged. The
    // gap above the VMA below grew by the head `old` lost.
    this.refreshGap(this.prev(by));
    this.generation++;
  }

  /**
   * A free range of `length` bytes, top-down: the top of the highest gap that fits
   * (unmapped_area_topdown's mas_empty_area_rev), found by descending only into subtrees
   * whose largest gap is big enough. The range ends where the VMA above it starts.
   */
  allocate(length: number): number | undefined {
    let n = this.root;
    let found: Node | undefined;
    while (n) {
      if (n.right && n.right.maxGap >= length) n = n.right;
      else if (n.gap >= length) {
        found = n;
        break;
      } else if (n.left && n.left.maxGap >= length) n = n.left;
      else break;
    }
    if (found) return ceilingBelow(this.next(found.vma)) - length;
    // Below the lowest mapping, down to MMAP_MIN.
    let lowest = this.root;
    while (lowest?.left) lowest = lowest.left;
    const top = ceilingBelow(lowest?.vma);
    return top - length >= MMAP_MIN ? top - length : undefined;
  }

  /**
   * True when a mapping may grow in place over [start, end) (mremap without moving): mm/mremap.c
   * vma_expandable, "if (find_vma_intersection(vma->vm_mm, vma->vm_end, end)) return 0;" — the
   * range is free up to `end` exclusive, so a mapping grows up to the very start of the next
   * VMA (scenarios/placement/grow-in-place-into-freed-neighbour). Its get_unmapped_area(MAP_FIXED)
   * only checks TASK_SIZE; the model stops at MMAP_CEILING instead. In a Linux process the
   * loader and the libraries are mapped first, top-down from mm->mmap_base
   * (arch_get_unmapped_area_topdown), and every later mapping lands directly below them or
   * below an earlier one: the topmost mapping of a running program has something right above
   * it, so growing it moves it (scenarios/mremap/grow-moves-topdown.json, held to the host).
   * In the model that something is the loader's mapping at MMAP_BASE (shm/loader-image.ts),
   * and MMAP_CEILING stands for the vvar/vdso/ld.so pages above it.
   */
  mayGrowInto(start: number, end: number): boolean {
    return end <= MMAP_CEILING && this.isFree(start, end);
  }

  /** True when [start, end) is free. */
  isFree(start: number, end: number): boolean {
    const v = this.floor(end - 1);
    return !v || v.end <= start;
  }
}
