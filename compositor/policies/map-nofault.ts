/**
 * `map-nofault`: Linus Torvalds' 2021 MAP_NOFAULT sketch (LKML "Sealed memfd & no-fault
 * mmap", quoted in Simon Ser's reply of May 4 2021; docs/policy-sources.md §7): "this will
 * only ever work for non-shared mappings", so the pool is mapped
 * `PROT_READ, MAP_PRIVATE | MAP_NOFAULT` — Simon Ser's "read-only for the ~90% case" — in
 * place of libwayland's MAP_SHARED (wayland src/wayland-shm.c shm_create_pool), and grown
 * with libwayland's mremap. A read beyond EOF maps an anonymous zero page: no signal, no
 * error to the client. Those zero pages do not follow the file if it grows back (Linus:
 * "they will NOT BE SYNCHRONIZED with the backing store"), which the lab can observe as a
 * stale region. Needs the kernel feature "map-nofault".
 */
import { MAP, PROT } from "../../shm/uapi.ts";
import type { Policy } from "../policy.ts";
import { LIBWAYLAND_PROFILE } from "../validation.ts";
import { libwaylandGrow, libwaylandMap, loadSpan, mappedAccess, unmapQuiet } from "./common.ts";

export const mapNofault: Policy = {
  name: "map-nofault",
  source:
    "LKML 2021 'Sealed memfd & no-fault mmap' (Torvalds' MAP_NOFAULT sketch) on wayland-shm.c's mapping",
  summary: "MAP_PRIVATE|MAP_NOFAULT read-only: reads beyond EOF see an anonymous zero page",
  clientReceives: "nothing: its truncated region shows zeros",
  features: ["map-nofault"],
  profile: LIBWAYLAND_PROFILE,
  deferResizeWhileReading: true,
  create(proc) {
    return {
      mapPool: (pool) =>
        libwaylandMap(proc, pool, {
          prot: PROT.PROT_READ,
          flags: MAP.MAP_PRIVATE | MAP.MAP_NOFAULT,
        }),
      growPool: (pool, size) => libwaylandGrow(proc, pool, size),
      unmapPool: (pool) => unmapQuiet(proc, pool.addr, pool.size),
      beginAccess: (b) => mappedAccess(b),
      read: (a, dst) => loadSpan(proc, a, dst),
      endAccess: () => undefined,
    };
  },
};
export default mapNofault;
