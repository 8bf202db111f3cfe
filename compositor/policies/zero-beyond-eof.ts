/**
 * `zero-beyond-eof`: the "zero page in the page cache beyond i_size" idea of the 2021 LKML
 * thread (docs/policy-sources.md §7: the semantics as Linus and Ming Lin described them;
 * Kirill Shutemov's own message is not in the index; the coherency objection is Hugh
 * Dickins'). libwayland's MAP_SHARED mapping (wayland src/wayland-shm.c shm_create_pool)
 * of a file marked with the per-inode flag before the fd is closed. Read faults beyond EOF
 * map the shared zero page; the kernel removes those entries when the file grows again, so
 * the compositor then sees the client's new data. Needs the kernel feature
 * "zero-beyond-eof".
 */
import { onErrno } from "../../shm/expected-errors.ts";
import type { Policy } from "../policy.ts";
import { LIBWAYLAND_PROFILE } from "../validation.ts";
import { libwaylandGrow, libwaylandMap, loadSpan, mappedAccess, unmapQuiet } from "./common.ts";

export const zeroBeyondEof: Policy = {
  name: "zero-beyond-eof",
  source: "LKML 2021 no-SIGBUS thread (zero page beyond i_size) on wayland-shm.c's mapping",
  summary: "MAP_SHARED on an inode flagged zero-beyond-EOF: reads beyond EOF see the zero page",
  clientReceives: "nothing: its truncated region shows zeros",
  features: ["zero-beyond-eof"],
  profile: LIBWAYLAND_PROFILE,
  deferResizeWhileReading: true,
  create(proc) {
    return {
      mapPool(pool) {
        // The flag is on the inode: set it through the fd, before libwayland closes it. A
        // pipe fails here with EINVAL, as its mmap would.
        // EINVAL: not a shmem file: mmap below refuses it with libwayland's error.
        onErrno(["EINVAL", "EBADF"], () => proc.setZeroBeyondEof(pool.fd), undefined);
        libwaylandMap(proc, pool);
      },
      growPool: (pool, size) => libwaylandGrow(proc, pool, size),
      unmapPool: (pool) => unmapQuiet(proc, pool.addr, pool.size),
      beginAccess: (b) => mappedAccess(b),
      read: (a, dst) => loadSpan(proc, a, dst),
      endAccess: () => undefined,
    };
  },
};
export default zeroBeyondEof;
