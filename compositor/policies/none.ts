/**
 * `none`: libwayland's pool mapping with no protection at all. Follows wayland
 * src/wayland-shm.c (shm_create_pool's MAP_SHARED mapping, shm_pool_finish_resize's
 * mremap) for a compositor that never calls wl_shm_buffer_begin_access/end_access, so no
 * SIGBUS handler is ever installed. A read beyond the file's end kills the compositor.
 */
import type { Policy } from "../policy.ts";
import { LIBWAYLAND_PROFILE } from "../validation.ts";
import { libwaylandGrow, libwaylandMap, loadSpan, mappedAccess, unmapQuiet } from "./common.ts";

export const none: Policy = {
  name: "none",
  source: "wayland src/wayland-shm.c without wl_shm_buffer_begin_access/end_access",
  summary: "MAP_SHARED, no SIGBUS handler: a truncated pool kills the compositor",
  clientReceives: "nothing: the compositor dies of SIGBUS",
  features: [],
  profile: LIBWAYLAND_PROFILE,
  deferResizeWhileReading: true,
  create(proc) {
    return {
      mapPool: (pool) => libwaylandMap(proc, pool),
      growPool: (pool, size) => libwaylandGrow(proc, pool, size),
      unmapPool: (pool) => unmapQuiet(proc, pool.addr, pool.size),
      beginAccess: (b) => mappedAccess(b),
      read: (a, dst) => loadSpan(proc, a, dst),
      endAccess: () => undefined,
    };
  },
};
export default none;
