/**
 * Memory pressure for MAP_DROPPABLE (LINUX.md rule 17). A droppable folio is anonymous but
 * not swap-backed: shrink_folio_list discards it, dirty or not ("if (folio_test_dirty(folio)
 * && !(vma->vm_flags & VM_DROPPABLE))" in try_to_unmap_one keeps only non-droppable dirty
 * lazyfree folios), and the next access finds no page and maps a fresh zero one — no
 * signal, no error. The model has no swap, so reclaim frees nothing else: anonymous and
 * shmem pages stay, as they do on a swapless host.
 *
 * Reached three ways: the kernel's allocator before ENOMEM (FrameTable.onPressure), madvise
 * MADV_PAGEOUT on a droppable range (host-checkable), and `reclaim()` called by a test or a
 * scenario's `reclaim` step (memory pressure from elsewhere on the machine).
 */
import { zapOne } from "./fault.ts";
import { ZERO_FRAME } from "./frames.ts";
import type { Kernel } from "./kernel.ts";
import type { Process } from "./process.ts";
import { pteFrame, type Vma } from "./vma.ts";

/**
 * Drops the droppable pages of entries [from, to) of `v`. A page with a FOLL_PIN on it is
 * kept: try_to_unmap_one cannot unmap an exclusive anonymous page that may be DMA-pinned
 * (folio_try_share_anon_rmap_pte fails). The shared zero page is not reclaimable (and reads
 * zero anyway). Returns the pages dropped.
 */
export function dropDroppable(k: Kernel, v: Vma, from: number, to: number): number {
  if (!v.flags.droppable) return 0;
  let n = 0;
  v.forEachPresent(from, to, (i, pte) => {
    const f = pteFrame(pte);
    if (f === ZERO_FRAME || (k.pinCounts.get(f) ?? 0) > 0) return;
    zapOne(k, v, i);
    n++;
  });
  if (n && v.owner) v.owner.pagesZapped += n;
  return n;
}

/**
 * System-wide memory pressure (kswapd, or direct reclaim before an allocation fails): every
 * droppable page of every process (or only of `only`) is discarded. Returns the pages
 * dropped.
 */
export function reclaim(k: Kernel, only?: Process): number {
  let total = 0;
  for (const p of only ? [only] : k.processes.values()) {
    if (!p.alive) continue;
    let n = 0;
    for (const v of p.mm.vmas) n += dropDroppable(k, v, 0, v.pages);
    if (n) k.emit(p.pid, "reclaim", { pages: n });
    total += n;
  }
  return total;
}
