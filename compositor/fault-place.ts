/**
 * Where a fatal fault's address lies, relative to the buffer read in progress: the one fact
 * a death's signal and reason do not give, and the one that tells two causes with two fixes
 * apart. A libwayland compositor dies of `SIGBUS (unhandled)` both when begin_access
 * skipped its handler for the pool being read (`sigbus_is_impossible` kept after a resize:
 * the fix is in shm_pool_finish_resize) and when a read ran past its pool into a neighbour's
 * truncated file (sigbus_handler re-raises: "if (... (char *) info->si_addr <
 * pool->data || (char *) info->si_addr >= pool->data + pool->size) reraise_sigbus();" —
 * the fix is shm_pool_create_buffer's stride check). Crash triage draws the same line:
 * KASAN names a bad access by the object its address belongs to (out-of-bounds,
 * use-after-free) or, outside every object, by the address itself (`get_wild_bug_type`:
 * "if ((unsigned long)info->access_addr < PAGE_SIZE) bug_type = "null-ptr-deref";").
 *
 * The classes, for a fault with an address (si_addr); a death without one (abort, OOM, a
 * kill) has none:
 *
 * | class        | the address lies                                          | typically                                                  |
 * | ------------ | --------------------------------------------------------- | ---------------------------------------------------------- |
 * | `null`       | in the first page                                         | a call through SIG_DFL (wlroots'/KWin's chained handler)   |
 * | `no-read`    | anywhere, with no buffer read in progress                 | a policy's own main-loop work faulting                     |
 * | `own-pool`   | in the mapping the read in progress reads from            | the file is shorter than the pool, and no handler caught it |
 * | `other-pool` | in another pool's mapping                                 | the read ran past its pool into a neighbour's short file   |
 * | `no-pool`    | in no pool's mapping                                      | the read ran past its pool into unmapped space             |
 */
import { PAGE_SIZE } from "../shm/uapi.ts";
import type { ShmPool } from "./policy.ts";

export type FaultPlace = "null" | "no-read" | "own-pool" | "other-pool" | "no-pool";

export const FAULT_PLACES: readonly FaultPlace[] = [
  "null",
  "no-read",
  "own-pool",
  "other-pool",
  "no-pool",
];

/** The words a signature uses for each class (`SIGBUS (unhandled) in another pool`). */
export const FAULT_PLACE_WORDS: Record<FaultPlace, string> = {
  null: "at NULL",
  "no-read": "outside a read",
  "own-pool": "in the pool being read",
  "other-pool": "in another pool",
  "no-pool": "outside every pool",
};

/**
 * The bytes a buffer read reads from: its pool's mapping as it was when the read began
 * (wlroots and KWin keep reading an old mapping after a resize maps a new one).
 */
export interface ReadExtent {
  start: number;
  size: number;
}

/** Classifies `addr` against the read in progress (null: none) and the pools mapped now. */
export function faultPlace(
  addr: number,
  read: ReadExtent | null,
  pools: Iterable<ShmPool>,
): FaultPlace {
  if (addr < PAGE_SIZE) return "null";
  if (!read) return "no-read";
  if (addr >= read.start && addr < read.start + read.size) return "own-pool";
  for (const p of pools)
    if (p.addr !== 0 && addr >= p.addr && addr < p.addr + p.size) return "other-pool";
  return "no-pool";
}
