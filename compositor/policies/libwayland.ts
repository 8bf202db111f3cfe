/**
 * `libwayland`: wayland src/wayland-shm.c as a compositor that brackets every read with
 * wl_shm_buffer_begin_access / wl_shm_buffer_end_access (weston does). Functions followed:
 * shm_create_pool (seal shortcut, mmap, close(fd)), shm_pool_resize /
 * shm_pool_finish_resize (deferred mremap), wl_shm_buffer_begin_access,
 * wl_shm_buffer_end_access, sigbus_handler, reraise_sigbus, init_sigbus_data_key.
 *
 * - `sigbus_is_impossible`: F_SEAL_SHRINK and st_size >= the requested size, computed once
 *   at create_pool and never again (a sealed pool grown past its file keeps it).
 * - The handler is installed once per process, permanently, at the first begin_access of a
 *   pool that needs it (pthread_once), SA_SIGINFO | SA_NODEFER, the old action saved.
 * - Per-thread data { current_pool, access_count, fallback_mapping_used } in a map keyed by
 *   the simulated thread (the compositor runs one, "main"); begin_access on another pool
 *   while one is current is `wl_abort("Incorrect pool passed for current thread")`.
 * - The handler re-raises (restores the old action; the retried access kills the process)
 *   when no access is active on the thread or si_addr is outside the current pool's
 *   mapping; otherwise it maps anonymous zero memory over the whole pool with MAP_FIXED and
 *   sets fallback_mapping_used. The pool is never re-mapped from the file.
 * - The outermost end_access posts `WL_SHM_ERROR_INVALID_FD, "error accessing SHM buffer"`
 *   on the wl_buffer.
 * - wl_shm_buffer_ref / wl_shm_buffer_unref (commit 9367c4d, "shm: Add wl_shm_buffer ref and
 *   unref functions", first tagged 1.23.91, so 1.24.0) let a compositor keep the
 *   wl_shm_buffer past its wl_resource; commit d2a3d33 ("shm: Generate an error when shm
 *   access failed even without a resource", same tags) makes the outermost end_access, when
 *   the fallback mapping was used and the resource is gone, call
 *   `wl_client_post_implementation_error(buffer->client, "Error accessing SHM buffer of a
 *   wl_buffer resource which has already been destroyed")` (buffer->client is NULLed by
 *   shm_buffer_client_destroy_notify when the client goes). That is `destroyedError` below;
 *   the compositor posts it as wl_display.error `implementation` when the buffer it read is
 *   destroyed (a compositor that keeps buffers: `libwayland-kept-buffer`). Caveat, read at
 *   1.23.92 (the newest source here): destroy_buffer does not set buffer->resource to NULL,
 *   so as written end_access tests a dangling pointer; the model follows the branch the
 *   commit adds, assuming a resource that is gone reads as NULL (docs/policies.md).
 */
import { SHM_ERROR } from "../../protocol/schema.ts";
import type { SigInfo } from "../../shm/errors.ts";
import { onErrno } from "../../shm/expected-errors.ts";
import type { Process } from "../../shm/process.ts";
import type { SigAction } from "../../shm/signal.ts";
import { SEAL } from "../../shm/uapi.ts";
import type { Policy, PolicyEnv, PolicyInstance, ShmPool } from "../policy.ts";
import { LIBWAYLAND_PROFILE } from "../validation.ts";
import {
  libwaylandGrow,
  libwaylandMap,
  loadRange,
  loadSpan,
  mappedAccess,
  reraiseSigbus,
  unmapQuiet,
  zeroOver,
} from "./common.ts";

interface SigbusData {
  currentPool: ShmPool | null;
  accessCount: number;
  fallbackMappingUsed: boolean;
}

/** The simulated thread the compositor's code runs on. */
export const MAIN_THREAD = "main";

/** The end_access message of libwayland >= 1.24 for a destroyed wl_buffer (d2a3d33). */
export const DESTROYED_BUFFER_ERROR =
  "Error accessing SHM buffer of a wl_buffer resource which has already been destroyed";

export const libwayland: Policy = {
  name: "libwayland",
  source: "wayland src/wayland-shm.c (wl_shm_buffer_begin_access, sigbus_handler, end_access)",
  summary:
    "SIGBUS handler between begin/end_access maps zeros over the pool; sealed memfds skip it",
  clientReceives: "wl_shm.invalid_fd on the wl_buffer, at the outermost end_access",
  features: [],
  profile: LIBWAYLAND_PROFILE,
  follows: [
    {
      compositor: "weston",
      // The model reads wayland-shm.c as of 1.23.90 (docs/policy-sources.md §1); 1.21 is
      // libwayland-1.21.
      version: "libwayland-server 1\\.(2[2-9]|[3-9]\\d)",
      why: "weston's renderers bracket every shm read with wl_shm_buffer_begin/end_access",
    },
  ],
  deferResizeWhileReading: true,
  create: (proc, env) => createLibwayland(proc, env, { destroyedError: true }),
};

/**
 * libwayland's wl_shm in one compositor process. `destroyedError`: end_access knows a
 * destroyed wl_buffer (>= 1.24, d2a3d33); before 1.24 a wl_shm_buffer died with its
 * resource and end_access had no such branch (libwayland-1.21).
 */
export function createLibwayland(
  proc: Process,
  env: PolicyEnv,
  version: { destroyedError: boolean },
): PolicyInstance {
  let installed = false;
  let oldAction: SigAction = { handler: "default" };
  const tls = new Map<string, SigbusData>();
  // pthread_getspecific(wl_shm_sigbus_data_key): the data of the thread running now.
  const thread = () => env.thread?.() ?? MAIN_THREAD;
  const impossible = (p: ShmPool) => p.state.sigbusIsImpossible === true;

  function sigbusHandler(info: SigInfo): void {
    const data = tls.get(thread());
    if (!data) {
      reraiseSigbus(proc, oldAction);
      return;
    }
    const pool = data.currentPool;
    if (!pool || info.addr < pool.addr || info.addr >= pool.addr + pool.size) {
      reraiseSigbus(proc, oldAction);
      return;
    }
    data.fallbackMappingUsed = true;
    if (!zeroOver(proc, pool.addr, pool.size)) reraiseSigbus(proc, oldAction);
  }

  return {
    mapPool(pool) {
      // #ifdef HAVE_MEMFD_CREATE: seals = fcntl(fd, F_GET_SEALS); -1 → 0.
      const seals = onErrno(["EINVAL", "EBADF"], () => proc.getSeals(pool.fd), 0);
      // "if ((seals & F_SEAL_SHRINK) && fstat(fd, &statbuf) >= 0)"
      const sigbusIsImpossible =
        (seals & SEAL.F_SEAL_SHRINK) !== 0 &&
        onErrno(["EBADF"], () => proc.fstatSize(pool.fd) >= pool.size, false);
      pool.state.sigbusIsImpossible = sigbusIsImpossible;
      libwaylandMap(proc, pool);
    },
    growPool: (pool, size) => libwaylandGrow(proc, pool, size),
    unmapPool: (pool) => unmapQuiet(proc, pool.addr, pool.size),
    beginAccess(b) {
      const pool = b.pool;
      if (impossible(pool)) return mappedAccess(b);
      if (!installed) {
        // init_sigbus_data_key, once per process: never uninstalled.
        installed = true;
        oldAction = proc.sigaction("SIGBUS", { handler: sigbusHandler, nodefer: true });
      }
      let data = tls.get(thread());
      if (!data) {
        data = { currentPool: null, accessCount: 0, fallbackMappingUsed: false };
        tls.set(thread(), data);
      }
      if (!(data.currentPool === null || data.currentPool === pool))
        env.panic("wl_abort: Incorrect pool passed for current thread");
      data.currentPool = pool;
      data.accessCount++;
      return mappedAccess(b);
    },
    read: (a, dst) => loadSpan(proc, a, dst),
    // For compositors on libwayland's wl_shm that upload damage only (kwin-5.27).
    readRange: (a, dst, off, n) => loadRange(proc, a, dst, off, n),
    endAccess(a) {
      if (impossible(a.buffer.pool)) return undefined;
      const data = tls.get(thread());
      if (!data || data.accessCount < 1)
        return env.panic(
          "wl_abort: sigbus_data is NULL or wl_shm_buffer_begin_access wasn't called before",
        );
      if (--data.accessCount === 0) {
        const used = data.fallbackMappingUsed;
        data.fallbackMappingUsed = false;
        data.currentPool = null;
        if (used) {
          // "if (buffer->resource) wl_resource_post_error(... INVALID_FD ...)
          //  else if (buffer->client) wl_client_post_implementation_error(...)"
          const error = { code: SHM_ERROR.invalid_fd, message: "error accessing SHM buffer" };
          return version.destroyedError
            ? { error, destroyedError: DESTROYED_BUFFER_ERROR }
            : { error };
        }
      }
      return undefined;
    },
  };
}
export default libwayland;
