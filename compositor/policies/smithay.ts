/**
 * `smithay`: Smithay src/wayland/shm/pool.rs, mod.rs and handlers.rs, the Netflate/smithay
 * fork read for the research (docs/policy-sources.md §4; whether it equals upstream was not
 * verified). Functions followed: Pool::new (mmap, fd kept, no seal check),
 * InnerPool::resize / MemMap::remap (munmap then mmap from the fd, under the pool's write
 * lock — modelled as deferred while a reader holds it), with_data, place_sigbus_handler,
 * sigbus_handler, MemMap::nullify, reraise_sigbus, with_buffer_contents.
 *
 * - SIGBUS_GUARD is thread-local: (the MemMap being accessed, triggered). with_data on a
 *   thread whose guard is already set panics: "Recursive access to a SHM pool content is
 *   not supported." — nested access, even to another pool, ends the compositor.
 * - The handler is installed on the first with_data, once per process (get_or_init),
 *   SA_SIGINFO | SA_NODEFER, permanent.
 * - A fault inside the guarded MemMap sets `triggered` and maps anonymous zeros over the
 *   whole pool (nullify, READ | WRITE); anything else re-raises (sigaction + raise).
 * - with_buffer_contents posts `InvalidFd, "Bad pool size."` on the wl_buffer as soon as
 *   the access returns with `triggered`.
 */
import { SHM_ERROR } from "../../protocol/schema.ts";
import type { SigInfo } from "../../shm/errors.ts";
import type { SigAction } from "../../shm/signal.ts";
import { MAP } from "../../shm/uapi.ts";
import { type Policy, type ShmPool, ShmRefusal } from "../policy.ts";
import { SMITHAY_PROFILE } from "../validation.ts";
import {
  loadSpan,
  mappedAccess,
  orRefuse,
  RW,
  reraiseSigbus,
  unmapQuiet,
  zeroOver,
} from "./common.ts";
import { MAIN_THREAD } from "./libwayland.ts";

interface Guard {
  pool: ShmPool | null;
  triggered: boolean;
}

export const smithay: Policy = {
  name: "smithay",
  source:
    "Smithay src/wayland/shm/pool.rs (with_data, sigbus_handler) and mod.rs (with_buffer_contents)",
  summary: "thread-local guard; zeros over the pool; recursion panics",
  clientReceives: 'wl_shm.invalid_fd "Bad pool size." on the wl_buffer, right after the access',
  features: [],
  profile: SMITHAY_PROFILE,
  deferResizeWhileReading: true,
  create(proc, env) {
    let oldHandler: SigAction | undefined;
    const guards = new Map<string, Guard>();
    // SIGBUS_GUARD is a thread_local!: the guard of the thread running now.
    const guard = () => {
      const t = env.thread?.() ?? MAIN_THREAD;
      let g = guards.get(t);
      if (!g) guards.set(t, (g = { pool: null, triggered: false }));
      return g;
    };

    function sigbusHandler(info: SigInfo): void {
      const g = guard();
      const m = g.pool;
      if (m && m.addr !== 0 && info.addr >= m.addr && info.addr < m.addr + m.size) {
        g.triggered = true;
        if (!zeroOver(proc, m.addr, m.size)) reraiseSigbus(proc, oldHandler!);
        return;
      }
      // "something else occurred, let's die honorably"
      reraiseSigbus(proc, oldHandler!);
    }

    return {
      mapPool(pool) {
        const fd = pool.fd;
        pool.addr = orRefuse(
          () => proc.mmap(0, pool.size, RW, MAP.MAP_SHARED, fd, 0),
          () => new ShmRefusal(SHM_ERROR.invalid_fd, `Failed to mmap fd ${fd}`),
        );
      },
      growPool(pool, size) {
        // MemMap::remap: munmap the old map, mmap the new one; on failure the map is left
        // empty (ptr null, size 0) and the client gets "mremap failed".
        unmapQuiet(proc, pool.addr, pool.size);
        try {
          pool.addr = orRefuse(
            () => proc.mmap(0, size, RW, MAP.MAP_SHARED, pool.fd, 0),
            () => new ShmRefusal(SHM_ERROR.invalid_fd, "mremap failed"),
          );
          pool.size = size;
        } catch (e) {
          pool.addr = 0;
          pool.size = 0;
          throw e;
        }
      },
      unmapPool(pool) {
        unmapQuiet(proc, pool.addr, pool.size);
        if (pool.fd >= 0 && proc.alive) proc.close(pool.fd);
        pool.fd = -1;
      },
      beginAccess(b) {
        if (!oldHandler)
          oldHandler = proc.sigaction("SIGBUS", { handler: sigbusHandler, nodefer: true });
        const g = guard();
        if (g.pool !== null) env.panic("Recursive access to a SHM pool content is not supported.");
        g.pool = b.pool;
        g.triggered = false;
        return mappedAccess(b);
      },
      read: (a, dst) => loadSpan(proc, a, dst),
      endAccess() {
        const g = guard();
        const triggered = g.triggered;
        g.pool = null;
        g.triggered = false;
        if (triggered) return { error: { code: SHM_ERROR.invalid_fd, message: "Bad pool size." } };
        return undefined;
      },
    };
  },
};
export default smithay;
