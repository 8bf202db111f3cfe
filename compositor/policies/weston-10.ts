/**
 * `weston-10`: weston 10.0.1 over libwayland 1.21 (libwayland-1-21.ts), with the one thing
 * weston's pixman renderer adds: libweston/pixman-renderer.c pixman_renderer_attach makes
 * the surface's pixman image from `wl_shm_buffer_get_data(shm_buffer)` when a buffer is
 * committed, and repaint_region reads through that pointer later, inside
 * wl_shm_buffer_begin/end_access. weston 10 takes no wl_shm_buffer_ref_pool, so a
 * wl_shm_pool.resize between the commit and the repaint lets libwayland's
 * shm_pool_finish_resize mremap(MREMAP_MAYMOVE) the pool away: the repaint reads the old,
 * unmapped address, which is SIGSEGV (not SIGBUS, so libwayland's handler is no help).
 * Found by conformance: weston 10.0.1 died of SIGSEGV on resize-during-read where the
 * libwayland model read at the new address (docs/real-compositors.md).
 */
import type { BufferView, Policy } from "../policy.ts";
import { libwayland121 } from "./libwayland-1-21.ts";

export const weston10: Policy = {
  ...libwayland121,
  name: "weston-10",
  source:
    "weston 10.0.1 libweston/pixman-renderer.c (pixman_renderer_attach, repaint_region) over wayland 1.21.0 src/wayland-shm.c",
  summary: "libwayland 1.21's handler; the data pointer is taken at commit and read at repaint",
  versionOf: "libwayland",
  clientReceives:
    "wl_shm.invalid_fd on the wl_buffer, at the outermost end_access; the compositor dies of SIGSEGV when a resize between a commit and its repaint moves the pool and nothing is mapped at its old place by the repaint (a pool grown back over it, or a new mapping there, is read instead)",
  // Its pixman renderer reads the client's buffer at every repaint (no copy), so the
  // buffer is released only when the next one is attached (weston_buffer_reference;
  // wlr_buffer unlocked when the surface's texture is replaced). Seen on the real one: a
  // single-buffered client waits for a release that never comes.
  releaseOnReplace: true,
  // repaint_region composites the surface's pixman image, made from the client's memory,
  // at every repaint, bracketed, but only over the repaint region: the output damage,
  // which a commit makes from its wl_surface.damage. A truncation outside the damage is
  // read only if a full repaint comes after it: on the real weston 10, truncate-outside-
  // damage gives invalid_fd or no effect from run to run (conformance, 2026-11-24).
  reads: { at: "repaint", damage: "damage" },
  follows: [
    {
      compositor: "weston",
      version: "^weston 10\\..* libwayland-server 1\\.21\\.",
      why: "weston 10's pixman renderer on libwayland 1.21's wl_shm",
    },
  ],
  create(proc, env) {
    const inner = libwayland121.create(proc, env);
    // The pointer pixman_renderer_attach gave the surface's image, per buffer.
    const attached = new WeakMap<BufferView, number>();
    return {
      ...inner,
      attach(b) {
        attached.set(b, b.pool.addr + b.offset);
      },
      beginAccess(b) {
        const a = inner.beginAccess(b);
        const base = attached.get(b);
        // Every buffer weston repaints was attached first (repaint reads committed buffers
        // only), so the fallback to the access's own base is never taken.
        // Stryker disable next-line ConditionalExpression: unreachable fallback (above)
        return base === undefined ? a : { ...a, base };
      },
    };
  },
};
