/**
 * `kwin-5.27`: KWin 5.27 (Plasma 5.27), whose wl_shm was still libwayland's: the
 * KWaylandServer-era src/wayland/shmclientbuffer.cpp (docs/policy-sources.md §3b, read at
 * KDE/kwin commit 0045eaec…, 2021) has ShmClientBufferIntegration call
 * `wl_display_init_shm` and ShmClientBuffer::data() bracket reads with
 * wl_shm_buffer_begin_access / end_access (end from the QImage cleanup, cleanupShmData).
 * So validation, mapping, the handler and the client's invalid_fd are libwayland's (the
 * `libwayland` policy); KWin's own wl_shm (`kwin`, §3a) came later (KWin 6). That 5.27 still
 * has §3b is inferred from §3a's namespace (KWin, after KWaylandServer was folded in) and
 * not checked against the v5.27.0 tag, which is not in the index.
 *
 * What KWin adds: the texture is updated at render time with the damaged region
 * (BasicEGLSurfaceTextureWayland::updateShmTexture(buffer, region), the KWaylandServer
 * copy of the same function: a rect-by-rect upload after loadShmTexture's first whole
 * one), and a destroyed wl_buffer's wl_shm_buffer is gone with its resource, so it is not
 * read again. §3b's static s_accessedBuffer (one buffer mapped at a time; another's data()
 * is a null image) needs two accesses at once, which one thread never makes.
 */
import type { Policy } from "../policy.ts";
import { libwayland } from "./libwayland.ts";

export const kwin527: Policy = {
  ...libwayland,
  name: "kwin-5.27",
  source:
    "KWin 5.27 (KWaylandServer) src/wayland/shmclientbuffer.cpp over wayland src/wayland-shm.c; BasicEGLSurfaceTextureWayland::updateShmTexture",
  summary: "libwayland's wl_shm and handler; damaged region uploaded at render time",
  clientReceives: "wl_shm.invalid_fd on the wl_buffer, at the outermost end_access",
  versionOf: "kwin",
  follows: [],
  reads: { at: "frame", damage: "damage" },
};
