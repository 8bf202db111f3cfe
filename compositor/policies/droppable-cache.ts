/**
 * `droppable-cache`: libwayland's mapping (mmap MAP_SHARED, close the fd, mremap to grow)
 * plus a per-client cache of the last frame that read cleanly, kept in MAP_DROPPABLE memory
 * (Linux 6.11+, LINUX.md rule 17) so that the cache costs nothing the kernel cannot take
 * back. When a read of a client's buffer faults (SIGBUS: the client shrank its pool), the
 * handler maps zeros over the pool, as every compositor's does, and the policy shows that
 * client's cached last good frame instead of zeros: its window freezes rather than going
 * black, and nothing is sent to it.
 *
 * The hazard it demonstrates: under memory pressure the kernel discards droppable pages,
 * dirty or not, and they read back as zero with no signal and no error (shrink_folio_list /
 * try_to_unmap_one keep only non-droppable dirty lazyfree folios). The policy can only
 * notice by checking the contents: it keeps a hash of each cached frame in ordinary memory
 * and, when the cache no longer matches it, shows black and posts a notice. So under
 * pressure the user sees the frozen window turn black; an implementation without the check
 * would show the same black (or a frame with some pages zeroed) without knowing.
 */
import type { SigInfo } from "../../shm/errors.ts";
import type { SigAction } from "../../shm/signal.ts";
import { MAP, PAGE_SIZE } from "../../shm/uapi.ts";
import type { Policy, PolicyNotice, ShmPool } from "../policy.ts";
import { LIBWAYLAND_PROFILE } from "../validation.ts";
import {
  libwaylandGrow,
  libwaylandMap,
  loadSpan,
  mappedAccess,
  RW,
  reraiseSigbus,
  unmapQuiet,
  zeroOver,
} from "./common.ts";

interface Cache {
  addr: number;
  /** Bytes mapped (page multiple). */
  size: number;
  /** Bytes of the cached frame, and their FNV-1a hash, kept in ordinary memory. */
  span: number;
  hash: number;
  pool: ShmPool;
}

function fnv1a(b: Uint8Array): number {
  let h = 0x811c9dc5;
  // One step past the end mixes `undefined` (0) in, the same for the stored hash and the
  // check: still a function of the bytes alone.
  // Stryker disable next-line EqualityOperator: equivalent (above)
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return h >>> 0;
}

/** "client-label#poolId" → "client-label": the cache is per client. */
const clientOf = (pool: ShmPool) => pool.name.slice(0, pool.name.lastIndexOf("#"));

export const droppableCache: Policy = {
  name: "droppable-cache",
  source:
    "wayland src/wayland-shm.c mapping + a last-good-frame cache in mmap(MAP_DROPPABLE) memory (Linux 6.11, mm/vma.c VM_DROPPABLE)",
  summary:
    "SIGBUS handler zeros the pool, the client's last good frame (droppable memory) is shown",
  clientReceives: "nothing: its window freezes on its last good frame (black once reclaimed)",
  features: [],
  profile: LIBWAYLAND_PROFILE,
  deferResizeWhileReading: true,
  create(proc) {
    let installed = false;
    // Never read before the first access assigns it (the handler is installed there).
    // Stryker disable next-line ObjectLiteral,StringLiteral: equivalent (above)
    let oldAction: SigAction = { handler: "default" };
    let current: ShmPool | null = null;
    const caches = new Map<string, Cache>();
    const notices: PolicyNotice[] = [];

    function sigbusHandler(info: SigInfo): void {
      const pool = current;
      if (!pool || info.addr < pool.addr || info.addr >= pool.addr + pool.size) {
        reraiseSigbus(proc, oldAction);
        return;
      }
      pool.state.broken = true;
      if (!zeroOver(proc, pool.addr, pool.size)) reraiseSigbus(proc, oldAction);
    }

    function remember(pool: ShmPool, frame: Uint8Array): void {
      const who = clientOf(pool);
      let c = caches.get(who);
      const need = Math.max(PAGE_SIZE, Math.ceil(frame.length / PAGE_SIZE) * PAGE_SIZE);
      // Mapping a fresh cache when the old one already fits changes only its address.
      // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent (above)
      if (!c || c.size < need) {
        if (c) unmapQuiet(proc, c.addr, c.size);
        const addr = proc.mmap(0, need, RW, MAP.MAP_DROPPABLE | MAP.MAP_ANONYMOUS);
        c = { addr, size: need, span: 0, hash: 0, pool };
        caches.set(who, c);
      }
      proc.store(c.addr, frame);
      c.span = frame.length;
      c.hash = fnv1a(frame);
      c.pool = pool;
    }

    /** The cached frame into dst; zeros (black) when there is none or reclaim took it. */
    function recall(pool: ShmPool, dst: Uint8Array): void {
      const c = caches.get(clientOf(pool));
      if (!c || c.span !== dst.length) {
        dst.fill(0);
        return;
      }
      // A plain load: dropped pages fault in as fresh zero pages, no signal.
      proc.loadInto(c.addr, dst);
      if (c.hash !== 0 && fnv1a(dst) !== c.hash) {
        c.hash = 0; // report once
        dst.fill(0);
        notices.push({
          pool,
          what: "last good frame lost to memory pressure (droppable pages reclaimed)",
        });
      } else if (c.hash === 0) {
        dst.fill(0);
      }
    }

    return {
      mapPool: (pool) => libwaylandMap(proc, pool),
      growPool: (pool, size) => libwaylandGrow(proc, pool, size),
      unmapPool: (pool) => unmapQuiet(proc, pool.addr, pool.size),
      beginAccess(b) {
        if (!installed) {
          installed = true;
          oldAction = proc.sigaction("SIGBUS", { handler: sigbusHandler, nodefer: true });
        }
        current = b.pool;
        return mappedAccess(b);
      },
      read(a, dst) {
        const pool = a.buffer.pool;
        // A broken pool is the zero mapping: loading it again faults nothing and the
        // inner check sends the read to recall() all the same.
        // Stryker disable next-line ConditionalExpression,BooleanLiteral: equivalent (above)
        if (pool.state.broken !== true) {
          loadSpan(proc, a, dst);
          if (pool.state.broken !== true) {
            remember(pool, dst);
            return;
          }
        }
        recall(pool, dst);
      },
      endAccess() {
        current = null;
        return undefined;
      },
      idle: () => notices.splice(0),
    };
  },
};
export default droppableCache;
