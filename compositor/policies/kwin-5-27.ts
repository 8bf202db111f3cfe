/**
 * `kwin-5.27`: KWin 5.27 (Plasma 5.27), whose wl_shm was still libwayland's: the
 * KWaylandServer-era src/wayland/shmclientbuffer.cpp (docs/policy-sources.md §3b, read at
 * KDE/kwin commit 0045eaec…, 2021) has ShmClientBufferIntegration call
 * `wl_display_init_shm` and ShmClientBuffer::data() bracket reads with
 * wl_shm_buffer_begin_access / end_access (end from the QImage cleanup, cleanupShmData).
 * So validation, mapping, the handler and the client's invalid_fd are libwayland's (the
 * `libwayland` policy); KWin's own wl_shm (`kwin`, §3a) came later (KWin 6). The installed
 * 5.27.5 (Debian's libkwin.so.5) imports wl_shm_buffer_begin_access, _end_access,
 * wl_shm_buffer_ref_pool and wl_shm_pool_unref, and no wl_shm global of its own: §3b's design.
 *
 * What KWin adds: the texture is updated at render time with the damaged region
 * (BasicEGLSurfaceTextureWayland::updateShmTexture(buffer, region), the KWaylandServer
 * copy of the same function: a rect-by-rect upload after loadShmTexture's first whole
 * one). §3b's static s_accessedBuffer (one buffer mapped at a time; another's data() is a
 * null image) matters only once an access is left open: a stride lie (below).
 *
 * A destroyed wl_buffer is still read, outside any access. §3b's constructor adds a
 * destroy listener ("The underlying shm pool will be referenced if the wl_shm_buffer is
 * destroyed so the compositor can access buffer data even after the buffer is gone"), and
 * ShmClientBufferPrivate::buffer_destroy_callback keeps the pool
 * (`wl_shm_buffer_ref_pool(buffer)`) and a QImage over `wl_shm_buffer_get_data(buffer)`
 * as `savedData`. ShmClientBuffer::data() then finds no wl_shm_buffer
 * (`if (wl_shm_buffer *buffer = wl_shm_buffer_get(resource()))` fails: ClientBuffer::
 * markAsDestroyed set the resource to nullptr) and returns `d->savedData` with no
 * wl_shm_buffer_begin_access. A truncation read there is a SIGBUS libwayland's handler does
 * not own (no current pool): it re-raises and KWin dies. (This policy said "a destroyed
 * wl_buffer's wl_shm_buffer is gone with its resource, so it is not read again" until
 * kwin_wayland 5.27.5 died of SIGBUS on destroy-buffer-then-shrink; docs/real-compositors.md.)
 * The read comes when the texture update is due (the commit's first upload), as for a
 * live buffer: `reads.destroyed: "saved"`, unbracketed by beginAccess below. Its pool is
 * held by `wl_shm_buffer_ref_pool`, an external reference that defers a resize
 * (compositor/pools.ts keepsByRefPool; kwin_wayland 5.27.5 refuses a buffer in the grown
 * part, test/real-deferred-resize.test.ts).
 *
 * A stride below width × 4 is never read, and freezes every shm window after it. data()
 * does `s_accessedBuffer = this; s_accessCounter++; wl_shm_buffer_begin_access(buffer);`
 * and returns `QImage(data, d->width, d->height, stride, d->format, cleanupShmData,
 * buffer)`; Qt 5's QImageData::create returns no image data when `bpl <
 * min_bytes_per_line` ((width * depth + 7) / 8, depth 32 for both formats libwayland
 * offers), so the QImage is null: the texture update gives up (nothing is read), and
 * cleanupShmData — which decrements the counter, clears s_accessedBuffer and calls
 * wl_shm_buffer_end_access — belongs to image data that was never made, so it never runs.
 * From then on `if (s_accessedBuffer && s_accessedBuffer != this) return QImage();` turns
 * every other buffer's data() (a destroyed one's savedData too) into a null image: no shm
 * buffer of any client is read again, and every surface keeps the texture it had. Measured
 * on kwin_wayland 5.27.5 (test/real-kwin-stride-lie.test.ts): a buffer cut later is never
 * read (6 of 6); after an honest first buffer it is read, invalid_fd (6 of 6). The liar's
 * own savedData, once its wl_buffer is destroyed, is the same null image, with no access.
 */

import type { Access, BufferView, Policy } from "../policy.ts";
import type { Buffer } from "../pools.ts";
import { libwayland } from "./libwayland.ts";

/**
 * Qt 5 qimage.cpp QImageData::create: `bpl < min_bytes_per_line` with min_bytes_per_line =
 * (width * depth + 7) / 8 is "invalid parameter(s)", no image data (a null QImage). Depth
 * is 32 for Format_ARGB32_Premultiplied and Format_RGB32, the formats of the two wl_shm
 * formats libwayland offers (imageFormatForShmFormat).
 */
function nullImage(b: BufferView): boolean {
  return b.stride < Math.floor((b.width * 32 + 7) / 8);
}

/** An access that is savedData's plain read: no begin_access was made, none ends. */
const SAVED_DATA = Symbol("kwin-5.27 savedData");

export const kwin527: Policy = {
  ...libwayland,
  name: "kwin-5.27",
  source:
    "KWin 5.27 (KWaylandServer) src/wayland/shmclientbuffer.cpp over wayland src/wayland-shm.c; BasicEGLSurfaceTextureWayland::updateShmTexture",
  summary:
    "libwayland's wl_shm and handler; damaged region uploaded at render time; a destroyed buffer read unbracketed; a stride below width × 4 stops every later read",
  clientReceives:
    "wl_shm.invalid_fd on the wl_buffer, at the outermost end_access; the compositor dies of SIGBUS when a destroyed buffer's first upload reads a shrunk pool",
  versionOf: "kwin",
  follows: [
    {
      compositor: "kwin",
      version: "^kwin_wayland 5\\.27\\.",
      why: "KWin 5.27's ShmClientBuffer over libwayland's wl_shm",
    },
  ],
  // SurfaceInterfacePrivate::applyState holds the current ClientBuffer
  // (`if (bufferRef != current.buffer) { if (bufferRef) bufferRef->unref(); bufferRef =
  // current.buffer; ... bufferRef->ref(); }`), and ClientBuffer::unref sends
  // wl_buffer_send_release only when the count reaches 0: a buffer is released when the
  // next one replaces it. Seen on the real one: a single-buffered client waits for a
  // release that never comes (memory-pressure).
  releaseOnReplace: true,
  reads: { at: "frame", damage: "damage", destroyed: "saved" },
  create(proc, env) {
    const inner = libwayland.create(proc, env);
    // savedData: wl_shm_buffer_get_data at the wl_buffer's destruction, per buffer.
    const saved = new WeakMap<object, number>();
    // s_accessedBuffer as a null image left it (cleanupShmData clears it after every read
    // that made an image, before the next one: one thread reads one buffer at a time).
    let accessed: BufferView | null = null;
    return {
      ...inner,
      declines(b) {
        if (accessed !== null && accessed !== b) return true;
        if (!nullImage(b)) return false;
        // A destroyed buffer's data() returns savedData, no access begun.
        if ((b as Partial<Buffer>).alive === false) return true;
        accessed = b;
        inner.beginAccess(b);
        return true;
      },
      beginAccess(b) {
        // The compositor hands its own Buffer record; `alive` goes false with the resource.
        if ((b as Partial<Buffer>).alive !== false) return inner.beginAccess(b);
        let base = saved.get(b);
        if (base === undefined) {
          base = b.pool.addr + b.offset;
          saved.set(b, base);
        }
        return { buffer: b, base, state: SAVED_DATA } satisfies Access;
      },
      endAccess(a) {
        return a.state === SAVED_DATA ? undefined : inner.endAccess(a);
      },
    };
  },
};
