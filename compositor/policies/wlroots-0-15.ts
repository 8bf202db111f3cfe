/**
 * `wlroots-0.15`: wlroots 0.15 (sway 1.7) has no wl_shm of its own; wl_shm is libwayland's
 * (wl_display_init_shm), so validation, mapping, the SIGBUS handler and the error at
 * end_access are libwayland 1.21's (see libwayland-1-21.ts). Read in wlroots'
 * types/wlr_buffer.c and render/pixman/renderer.c (the GitHub mirror's last copy, November
 * 2021, after the 0.15.0 version bump):
 *   - shm_client_buffer_begin_data_ptr_access: `wl_shm_buffer_begin_access(buffer->shm_buffer)`
 *     while the wl_buffer lives; end_data_ptr_access: `wl_shm_buffer_end_access`. So every
 *     read of a live buffer is bracketed, as in libwayland.
 *   - shm_client_buffer_resource_handle_destroy: on wl_buffer destruction it keeps the pool
 *     (`wl_shm_buffer_ref_pool`) and `saved_data`; later accesses return saved_data with NO
 *     begin_access. pixman_render_subtexture_with_matrix reads the texture's buffer at every
 *     render. A destroyed-then-shrunk buffer still on screen is therefore read outside any
 *     access: libwayland's handler finds no current pool and re-raises (derived; not
 *     modelled: the model compositor copies a buffer at commit and never reads a destroyed
 *     one — docs/real-compositors.md lists it).
 */
import type { Policy } from "../policy.ts";
import { libwayland } from "./libwayland.ts";

export const wlroots015: Policy = {
  ...libwayland,
  name: "wlroots-0.15",
  source:
    "wlroots 0.15 types/wlr_buffer.c (shm_client_buffer_begin_data_ptr_access) over wayland 1.21 src/wayland-shm.c",
  summary:
    "libwayland's wl_shm and SIGBUS handler; every live-buffer read bracketed by begin/end_access",
  versionOf: "wlroots",
  follows: [
    {
      compositor: "sway",
      version: "wlroots 0\\.15\\.",
      why: "wlroots 0.15 uses libwayland's wl_shm (wlr_shm arrived in 0.17)",
    },
  ],
};
