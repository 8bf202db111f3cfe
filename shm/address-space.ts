/**
 * An address space (mm_struct): the sorted VMAs of one process. Mappings are placed
 * top-down from MMAP_BASE, as Linux's default mmap layout does, with a one-page gap between
 * them so that an access just past a mapping's end is SIGSEGV rather than a neighbour's page.
 */

import { PAGE_SIZE } from "./uapi.ts";
import type { Vma } from "./vma.ts";

export const MMAP_BASE = 0x7f00_0000_0000;
export const MMAP_MIN = 0x1000_0000;
/** TASK_SIZE on x86_64 with 4-level paging. */
export const TASK_SIZE = 0x7fff_ffff_f000;

export class AddressSpace {
  /** Sorted by start; never overlapping. */
  readonly vmas: Vma[] = [];
  /** Bumped on every change to the VMA list, so another thread can tell its copy is stale. */
  generation = 0;

  /** The VMA containing addr, or undefined (find_vma + range check). */
  find(addr: number): Vma | undefined {
    const v = this.vmas;
    let lo = 0;
    let hi = v.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const m = v[mid];
      if (addr < m.start) hi = mid - 1;
      else if (addr >= m.end) lo = mid + 1;
      else return m;
    }
    return undefined;
  }

  insert(vma: Vma): void {
    let i = 0;
    while (i < this.vmas.length && this.vmas[i].start < vma.start) i++;
    this.vmas.splice(i, 0, vma);
    this.generation++;
  }

  remove(vma: Vma): void {
    const i = this.vmas.indexOf(vma);
    if (i >= 0) this.vmas.splice(i, 1);
    this.generation++;
  }

  /** VMAs overlapping [start, end), in order. */
  overlapping(start: number, end: number): Vma[] {
    return this.vmas.filter((v) => v.start < end && v.end > start);
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
   * wholly inside [start, end).
   */
  isolate(start: number, end: number): Vma[] {
    for (const edge of [start, end]) {
      const v = this.find(edge);
      if (v && v.start < edge) {
        const upper = v.splitAt(edge);
        this.insert(upper);
        if (v.file) v.file.mappings.add(upper);
        if (v.file && v.flags.shared && v.flags.mayWrite) v.file.writableMappings++;
        if (v.openFile) v.openFile.refs++;
      }
    }
    return this.overlapping(start, end);
  }

  /** A free range of `length` bytes, top-down, with a guard page on each side. */
  allocate(length: number): number | undefined {
    let top = MMAP_BASE;
    for (let i = this.vmas.length - 1; i >= 0; i--) {
      const v = this.vmas[i];
      if (v.start >= top) {
        continue;
      }
      if (top - length >= v.end + PAGE_SIZE) return top - length;
      top = v.start - PAGE_SIZE;
    }
    return top - length >= MMAP_MIN ? top - length : undefined;
  }

  /** True when [start, end) is free. */
  isFree(start: number, end: number): boolean {
    return this.overlapping(start, end).length === 0;
  }
}
