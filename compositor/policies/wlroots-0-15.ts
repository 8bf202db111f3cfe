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
 *     access: libwayland's handler finds no current pool and re-raises. Derived from the
 *     source first, then seen: sway 1.7 died of SIGBUS on destroy-buffer-then-shrink
 *     (docs/real-compositors.md). Modelled by `readDestroyed`: the compositor keeps the
 *     destroyed buffer (and its pool) on screen and reads it at every repaint.
 */
import type { Policy } from "../policy.ts";
import { libwayland121 } from "./libwayland-1-21.ts";

export const wlroots015: Policy = {
  ...libwayland121,
  name: "wlroots-0.15",
  source:
    "wlroots 0.15 types/wlr_buffer.c (shm_client_buffer_begin_data_ptr_access) over wayland 1.21 src/wayland-shm.c",
  summary:
    "libwayland's wl_shm and SIGBUS handler; every live-buffer read bracketed by begin/end_access",
  versionOf: "wlroots",
  clientReceives:
    "wl_shm.invalid_fd on the wl_buffer, at the outermost end_access; the compositor dies of SIGBUS when a destroyed buffer still on screen is shrunk",
  // Its pixman renderer reads the client's buffer at every repaint (no copy), so the
  // buffer is released only when the next one is attached (weston_buffer_reference;
  // wlr_buffer unlocked when the surface's texture is replaced). Seen on the real one: a
  // single-buffered client waits for a release that never comes.
  releaseOnReplace: true,
  // render/pixman/renderer.c pixman_render_subtexture_with_matrix composites from the
  // texture's wlr_buffer, the client's memory, at every render (begin_pixman_data_ptr_access
  // → shm_client_buffer_begin_data_ptr_access → wl_shm_buffer_begin_access): re-read at every
  // repaint. Seen on sway 1.7, fuzz seed 102: a truncation after the buffer was first shown
  // is caught at a later repaint (invalid_fd), not never (docs/real-compositors.md).
  reads: { at: "repaint" },
  follows: [
    {
      compositor: "sway",
      version: "wlroots 0\\.15\\.",
      why: "wlroots 0.15 uses libwayland's wl_shm (wlr_shm arrived in 0.17)",
    },
    {
      compositor: "cage",
      version: "wlroots 0\\.15\\.",
      why: "cage 0.1.4 is a wlroots 0.15 kiosk: the same wl_shm, buffers and pixman renderer",
    },
  ],
  create(proc, env) {
    const inner = libwayland121.create(proc, env);
    // saved_data: wl_shm_buffer_get_data at the wl_resource's destruction, per buffer.
    const saved = new WeakMap<object, number>();
    return {
      ...inner,
      readDestroyed(b, dst) {
        let base = saved.get(b);
        if (base === undefined) {
          base = b.pool.addr + b.offset;
          saved.set(b, base);
        }
        // No wl_shm_buffer_begin_access: shm_client_buffer_begin_data_ptr_access returns
        // saved_data once shm_buffer is NULL.
        proc.loadInto(base, dst);
      },
    };
  },
};
