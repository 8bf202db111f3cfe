/**
 * Changing a file's size and punching holes (mm/truncate.c, mm/shmem.c shmem_setattr and
 * shmem_fallocate), with the reverse-map walk that removes translations from every process
 * (unmap_mapping_range).
 */
import { zapOne } from "./fault.ts";
import type { ShmemFile } from "./file.ts";
import type { Kernel } from "./kernel.ts";
import { PAGE_SIZE } from "./uapi.ts";
import { PTE_ANON, PTE_SPECIAL } from "./vma.ts";

const roundUpPages = (bytes: number) => Math.ceil(bytes / PAGE_SIZE);

/**
 * unmap_mapping_range(mapping, first, last, even_cows): zap every entry that maps file pages
 * [firstPage, endPage) in every VMA of every process. With evenCows (truncation) the private
 * COW copies go too — "even_cows: whether to unmap even private COWed pages" — with it off
 * (hole punching) they survive.
 */
export function unmapMappingRange(
  k: Kernel,
  file: ShmemFile,
  firstPage: number,
  endPage: number,
  evenCows: boolean,
  onlySpecial = false,
): void {
  for (const vma of file.mappings) {
    const lo = Math.max(firstPage, vma.pgoff) - vma.pgoff;
    const hi = Math.min(endPage, vma.pgoff + vma.pages) - vma.pgoff;
    if (lo >= hi) continue;
    const counters = k.countersOfVma(vma);
    vma.forEachPresent(lo, hi, (i, pte) => {
      // Stryker disable next-line ConditionalExpression: equivalent — growth is its only caller, and beyond the old EOF there are no entries but the proposal's zero pages (the pte-beyond-eof self-check)
      if (onlySpecial && !(pte & PTE_SPECIAL)) return;
      // MAP_NOFAULT's anonymous zero pages are anonymous: only a truncation zaps them.
      if (!evenCows && pte & PTE_ANON) return;
      zapOne(k, vma, i);
      if (counters) counters.pagesZapped++;
    });
  }
}

/** ftruncate to a smaller size: i_size first, then zap, then zero the tail, then free. */
export function shrinkFile(k: Kernel, file: ShmemFile, newSize: number): void {
  file.size = newSize;
  file.counters.shrinks++;
  const holeBegin = roundUpPages(newSize);
  unmapMappingRange(k, file, holeBegin, Number.POSITIVE_INFINITY, true);
  const partial = newSize % PAGE_SIZE;
  if (partial !== 0) {
    // truncate_inode_partial_folio: the bytes past the new size in the last page are zeroed.
    const f = file.pages.get(Math.floor(newSize / PAGE_SIZE));
    // Stryker disable next-line ConditionalExpression: equivalent — zeroRange of a missing page (undefined frame) writes nothing
    if (f !== undefined) k.frames.zeroRange(f, partial, PAGE_SIZE);
  }
  for (const [pg, f] of file.pages) {
    if (pg >= holeBegin) {
      file.pages.delete(pg);
      k.frames.put(f);
      file.counters.pagesTruncated++;
    }
  }
}

/**
 * ftruncate to a larger size only sets i_size (new ranges read as zero). With the
 * zero-page-beyond-EOF proposal, the zero-page entries now inside the file must go, or a
 * reader keeps seeing zeros where the writer now puts data (Dickins' objection).
 */
export function growFile(k: Kernel, file: ShmemFile, newSize: number): void {
  const oldPages = roundUpPages(file.size);
  file.size = newSize;
  file.counters.grows++;
  // Stryker disable next-line ConditionalExpression,LogicalOperator: equivalent — only a marked inode on a kernel with the feature ever has zero-page entries beyond EOF, so the zap finds nothing otherwise
  if (k.features.has("zero-beyond-eof") && file.zeroBeyondEof) {
    unmapMappingRange(k, file, oldPages, roundUpPages(newSize), false, true);
  }
}

/**
 * fallocate(PUNCH_HOLE|KEEP_SIZE) / madvise(MADV_REMOVE): shmem_fallocate unmaps whole pages
 * without even_cows, then shmem_truncate_range zeroes partial pages in place and frees the
 * whole ones.
 */
export function punchHole(k: Kernel, file: ShmemFile, offset: number, length: number): void {
  const end = offset + length;
  const firstWhole = roundUpPages(offset);
  const endWhole = Math.floor(end / PAGE_SIZE);
  // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent — with firstWhole >= endWhole the range is empty and unmapMappingRange zaps nothing
  if (firstWhole < endWhole) unmapMappingRange(k, file, firstWhole, endWhole, false);
  const firstPage = Math.floor(offset / PAGE_SIZE);
  // Stryker disable next-line ArithmeticOperator: equivalent — a page past the hole gets an empty zeroing range (to <= from) below
  const lastPage = Math.floor((end - 1) / PAGE_SIZE);
  // Walk the sparse page cache, not the range: a hole may span a gibibyte of nothing.
  for (const [pg, f] of [...file.pages]) {
    // Stryker disable next-line ConditionalExpression,LogicalOperator: equivalent — a page outside the hole gets an empty zeroing range (to <= from); the skip only saves the work
    if (pg < firstPage || pg > lastPage) continue;
    const from = Math.max(offset, pg * PAGE_SIZE) - pg * PAGE_SIZE;
    const to = Math.min(end, (pg + 1) * PAGE_SIZE) - pg * PAGE_SIZE;
    if (from === 0 && to === PAGE_SIZE) {
      file.pages.delete(pg);
      k.frames.put(f);
      file.counters.pagesPunched++;
    } else {
      k.frames.zeroRange(f, from, to);
    }
  }
}

/**
 * The inode's last reference is gone: iput_final → evict → shmem_evict_inode, which calls
 * shmem_truncate_range(inode, 0, (loff_t)-1) and frees the whole page cache. A memfd has
 * no name in any directory (i_nlink 0 from birth), so nothing else can find it again. Pages
 * held by long-term pins keep the pins' references and go at unpin.
 */
export function evictIfUnused(k: Kernel, file: ShmemFile): void {
  if (file.evicted || file.openFiles > 0 || file.mappings.size > 0) return;
  file.evicted = true;
  for (const f of file.pages.values()) {
    k.frames.put(f);
    file.counters.pagesEvicted++;
  }
  file.pages.clear();
  k.emit(0, "evict-inode", { ino: file.ino, pages: file.counters.pagesEvicted });
}
