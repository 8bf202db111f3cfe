/**
 * `populate`: the naive idea that prefaulting helps. libwayland's mapping (wayland
 * src/wayland-shm.c shm_create_pool) with MAP_POPULATE added and no handler. Prefaulted
 * page-table entries are zapped by the client's ftruncate like any others (LINUX.md rules 1
 * and 2: "MAP_POPULATE or not"), so the next read beyond EOF still raises SIGBUS and the
 * compositor dies; what MAP_POPULATE buys is fewer faults on honest pools, at the price of
 * faulting the whole pool in at create_pool.
 */
import { MAP } from "../../shm/uapi.ts";
import type { Policy } from "../policy.ts";
import { LIBWAYLAND_PROFILE } from "../validation.ts";
import { libwaylandGrow, libwaylandMap, loadSpan, mappedAccess, unmapQuiet } from "./common.ts";

export const populate: Policy = {
  name: "populate",
  source: "wayland src/wayland-shm.c shm_create_pool, with MAP_POPULATE",
  summary: "MAP_SHARED|MAP_POPULATE, no handler: prefaulting does not survive a truncation",
  clientReceives: "nothing: the compositor dies of SIGBUS",
  features: [],
  profile: LIBWAYLAND_PROFILE,
  deferResizeWhileReading: true,
  create(proc) {
    return {
      mapPool: (pool) => libwaylandMap(proc, pool, { flags: MAP.MAP_SHARED | MAP.MAP_POPULATE }),
      growPool: (pool, size) => libwaylandGrow(proc, pool, size),
      unmapPool: (pool) => unmapQuiet(proc, pool.addr, pool.size),
      beginAccess: (b) => mappedAccess(b),
      read: (a, dst) => loadSpan(proc, a, dst),
      endAccess: () => undefined,
    };
  },
};
export default populate;
