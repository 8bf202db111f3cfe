/**
 * `libwayland-1.21`: wayland src/wayland-shm.c at tag 1.21.0, the version under weston
 * 10.0.1 and sway 1.7 on Debian 12. Read against the 1.23.90 copy the `libwayland` policy
 * follows (git diff 1.21.0 1.23.92 -- src/wayland-shm.c); the paths the model runs are the
 * same:
 *   - shm_create_pool: the same `sigbus_is_impossible` seal shortcut (F_SEAL_SHRINK and
 *     st_size >= size), mmap, close(fd); "invalid size (%d)" as INVALID_STRIDE.
 *   - shm_pool_create_buffer / shm_pool_resize: the same checks and error codes.
 *   - wl_shm_buffer_begin_access / sigbus_handler / end_access: the same handler, the same
 *     zero mapping over the pool and the same "error accessing SHM buffer" INVALID_FD on
 *     the wl_buffer; 1.21 asserts where 1.23 calls wl_abort (both end in SIGABRT).
 * What 1.21 lacks does not reach the model: wl_shm is version 1 (no wl_shm.release), there
 * is no wl_shm_buffer_ref (a wl_shm_buffer dies with its wl_resource; a compositor that
 * wants the memory afterwards keeps the pool with wl_shm_buffer_ref_pool and reads it
 * outside any access, as wlroots 0.15 does; Mir PR #2645 found begin/end_access on such a
 * buffer crash), and end_access has no "already destroyed" branch (1.24's d2a3d33 added
 * it: see libwayland.ts). Kept as its own policy so the installed version has a name and a judge.
 */
import type { Policy } from "../policy.ts";
import { createLibwayland, libwayland } from "./libwayland.ts";

export const libwayland121: Policy = {
  ...libwayland,
  name: "libwayland-1.21",
  source:
    "wayland 1.21.0 src/wayland-shm.c (wl_shm_buffer_begin_access, sigbus_handler, end_access)",
  versionOf: "libwayland",
  // Held against weston and sway through weston-10 and wlroots-0.15, which add what those
  // compositors do around it.
  follows: [],
  // 1.21.0's wl_shm_buffer_end_access has only `wl_resource_post_error(buffer->resource,
  // WL_SHM_ERROR_INVALID_FD, ...)`: no destroyed-resource branch (added by d2a3d33, 1.24).
  // (An absent destroyedError is false too.)
  // Stryker disable next-line ObjectLiteral: equivalent (above)
  create: (proc, env) => createLibwayland(proc, env, { destroyedError: false }),
};
