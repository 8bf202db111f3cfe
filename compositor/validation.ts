/**
 * The wl_shm validation profiles of the real implementations, each in its own order with its
 * own error codes and messages, from docs/policy-sources.md (which quotes the sources).
 * A policy picks one; the alternative policies (none, seals-required, map-nofault...) are
 * libwayland compositors with a different mapping, so they use libwayland's.
 */
import { SHM_ERROR, SHM_FORMAT_BPP, SHM_FORMATS } from "../protocol/schema.ts";
import type { BufferArgs, Refusal, ValidationProfile } from "./policy.ts";

const INT32_MAX = 0x7fffffff;
export const ARGB8888 = 0;
export const XRGB8888 = 1;
const fmt = (name: string) => SHM_FORMATS.find((f) => f.name === name)!.value;
const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;
const refuse = (code: number, message: string): Refusal => ({ code, message });
/** C's int / int: truncation toward zero. */
const cdiv = (a: number, b: number) => Math.trunc(a / b);

/** Bytes per pixel, 0 when the format is unknown. */
export function bytesPerPixel(format: number): number {
  return SHM_FORMAT_BPP[format] ?? 0;
}

/** libwayland's geometry condition (shm_pool_create_buffer), shared with KWin's copy of it. */
function libwaylandGeometryBad(b: BufferArgs, poolSize: number): boolean {
  const { offset, width, height, stride } = b;
  return (
    offset < 0 ||
    width <= 0 ||
    height <= 0 ||
    stride < width ||
    cdiv(INT32_MAX, stride) < height ||
    offset > poolSize - stride * height
  );
}

/**
 * wayland src/wayland-shm.c: shm_create_pool, shm_pool_create_buffer, format_is_supported,
 * shm_pool_resize.
 */
export const LIBWAYLAND_PROFILE: ValidationProfile = {
  source: "wayland src/wayland-shm.c (shm_create_pool, shm_pool_create_buffer, shm_pool_resize)",
  formats: [ARGB8888, XRGB8888],
  createPool(size) {
    // "if (size <= 0) { wl_resource_post_error(resource, WL_SHM_ERROR_INVALID_STRIDE, "invalid size (%d)""
    return size <= 0 ? refuse(SHM_ERROR.invalid_stride, `invalid size (${size})`) : null;
  },
  createBuffer(b, poolSize) {
    // format_is_supported first: ARGB8888/XRGB8888 always.
    if (b.format !== ARGB8888 && b.format !== XRGB8888)
      return refuse(SHM_ERROR.invalid_format, `invalid format ${hex(b.format)}`);
    // One combined condition; stride < width compares bytes with pixels (no bpp check).
    if (libwaylandGeometryBad(b, poolSize))
      return refuse(
        SHM_ERROR.invalid_stride,
        `invalid width, height or stride (${b.width}x${b.height}, ${b.stride >>> 0})`,
      );
    return null;
  },
  resize(size, poolSize) {
    // "if (size < pool->size) ... WL_SHM_ERROR_INVALID_FD, "shrinking pool invalid"" — sizes
    // <= 0 fall in here too; there is no separate test.
    return size < poolSize ? refuse(SHM_ERROR.invalid_fd, "shrinking pool invalid") : null;
  },
};

/**
 * wlroots types/wlr_shm.c: shm_handle_create_pool, pool_handle_create_buffer (geometry in
 * 64 bits before the format), pixel_format_info_check_stride (render/pixel_format.c),
 * pool_handle_resize (INVALID_STRIDE where libwayland says INVALID_FD).
 */
export const WLROOTS_PROFILE: ValidationProfile = {
  source:
    "wlroots types/wlr_shm.c (shm_handle_create_pool, pool_handle_create_buffer, pool_handle_resize)",
  formats: [ARGB8888, XRGB8888],
  createPool(size) {
    return size <= 0 ? refuse(SHM_ERROR.invalid_stride, `Invalid size (${size})`) : null;
  },
  createBuffer(b, poolSize) {
    const { offset, width, height, stride } = b;
    // "Convert to uint64_t to avoid integer overflow": exact in JS numbers at these sizes.
    if (
      offset < 0 ||
      width <= 0 ||
      height <= 0 ||
      stride < width ||
      offset + stride * height > poolSize
    )
      return refuse(
        SHM_ERROR.invalid_stride,
        `Invalid width, height or stride (${width}x${height}, ${stride})`,
      );
    if (!this.formats.includes(b.format))
      return refuse(SHM_ERROR.invalid_format, "Unsupported format");
    const bpp = bytesPerPixel(b.format);
    if (bpp === 0) return refuse(SHM_ERROR.invalid_format, "Unknown format");
    // pixel_format_info_check_stride: stride % bytes_per_block, then min_stride.
    const minStride = width > cdiv(INT32_MAX, bpp) ? 0 : width * bpp;
    if (stride % bpp !== 0 || minStride <= 0 || stride < minStride)
      return refuse(SHM_ERROR.invalid_stride, `Invalid stride (${stride})`);
    return null;
  },
  resize(size, poolSize) {
    if (size <= 0 || size < poolSize)
      return refuse(
        SHM_ERROR.invalid_stride,
        `Shrinking a pool (${poolSize} to ${size}) is forbidden`,
      );
    return null;
  },
};

/**
 * KWin src/wayland/shmclientbuffer.cpp (own wl_shm, §3a of the research):
 * shm_create_pool, ShmPool::shm_pool_create_buffer (format in s_formats, libwayland's
 * condition, then stride % bytesPerPixel), ShmPool::shm_pool_resize. s_formats entries that
 * exist in shmlab's wl_shm.format enum: ARGB8888, XRGB8888, ARGB2101010, XRGB2101010.
 */
export const KWIN_PROFILE: ValidationProfile = {
  source:
    "KWin src/wayland/shmclientbuffer.cpp (shm_create_pool, ShmPool::shm_pool_create_buffer, ShmPool::shm_pool_resize)",
  formats: [ARGB8888, XRGB8888, fmt("argb2101010"), fmt("xrgb2101010")],
  createPool(size) {
    return size <= 0 ? refuse(SHM_ERROR.invalid_stride, `invalid size (${size})`) : null;
  },
  createBuffer(b, poolSize) {
    if (!this.formats.includes(b.format))
      return refuse(SHM_ERROR.invalid_format, `invalid format ${hex(b.format)}`);
    if (libwaylandGeometryBad(b, poolSize))
      return refuse(
        SHM_ERROR.invalid_stride,
        `invalid width, height or stride (${b.width}x${b.height}, ${b.stride >>> 0})`,
      );
    const bpp = bytesPerPixel(b.format);
    if (bpp && b.stride % bpp !== 0)
      return refuse(
        SHM_ERROR.invalid_stride,
        `invalid stride, ${b.stride} is not a multiple of ${bpp}`,
      );
    return null;
  },
  resize(size, poolSize) {
    return size < poolSize ? refuse(SHM_ERROR.invalid_fd, "shrinking pool invalid") : null;
  },
};

/**
 * Smithay src/wayland/shm/handlers.rs, the Netflate/smithay fork read for the research
 * (§4.1–4.3): five InvalidStride checks before the format; resize posts InvalidFd for
 * size <= 0 without returning, so a zero size reaches `NonZeroUsize::try_from(0).unwrap()`.
 */
export const SMITHAY_PROFILE: ValidationProfile = {
  source: "Smithay src/wayland/shm/handlers.rs (wl_shm and wl_shm_pool request handlers)",
  formats: [ARGB8888, XRGB8888],
  createPool(size) {
    return size <= 0 ? refuse(SHM_ERROR.invalid_stride, "invalid wl_shm_pool size") : null;
  },
  createBuffer(b, poolSize) {
    const { offset, width, height, stride, format } = b;
    if (offset < 0) return refuse(SHM_ERROR.invalid_stride, "offset must not be negative");
    if (width <= 0 || height <= 0)
      return refuse(SHM_ERROR.invalid_stride, `invalid width or height (${width}x${height})`);
    // stride.checked_div(wl_bytes_per_pixel(format)).unwrap_or(0) < width
    const bpp = bytesPerPixel(format);
    const perPixel = bpp === 0 ? 0 : cdiv(stride, bpp);
    if (perPixel < width)
      return refuse(
        SHM_ERROR.invalid_stride,
        `width must not be larger than stride (${width} > ${perPixel})`,
      );
    if (cdiv(INT32_MAX, stride) < height)
      return refuse(
        SHM_ERROR.invalid_stride,
        `height is too large for stride (max ${cdiv(INT32_MAX, stride)})`,
      );
    if (offset > poolSize - stride * height)
      return refuse(SHM_ERROR.invalid_stride, "offset is too large");
    if (!this.formats.includes(format)) {
      const name = SHM_FORMATS.find((f) => f.value === format)?.name;
      return refuse(
        SHM_ERROR.invalid_format,
        name ? `format ${name} not supported` : `unknown format ${hex(format)}`,
      );
    }
    return null;
  },
  resize(size, poolSize) {
    if (size === 0)
      return {
        code: SHM_ERROR.invalid_fd,
        message: "invalid wl_shm_pool size",
        thenPanic: "called `Result::unwrap()` on an `Err` value: TryFromIntError(())",
      };
    // A negative size was posted as well; `size as usize` is then huge, never a shrink, and
    // the remap fails — the first error is the one the client sees.
    if (size < 0) return refuse(SHM_ERROR.invalid_fd, "invalid wl_shm_pool size");
    if (size < poolSize) return refuse(SHM_ERROR.invalid_fd, "cannot shrink wl_shm_pool");
    return null;
  },
};

/**
 * Xorg MIT-SHM translated to wl_shm: create_buffer + commit is ShmPutImage(totalWidth =
 * stride / 4, totalHeight = height, src = the whole buffer, ZPixmap, depth 24) at the
 * buffer's offset, checked here in ProcShmPutImage's order against the segment's size (the
 * file's st_size at ShmAttachFd, not a size the client claims). Every failure is an X error
 * after which Xorg keeps the client (Refusal.xError). X has no pool size (ShmAttachFd
 * carries none) and no resize, so createPool and resize refuse nothing here: the behaviours
 * that need them are not applicable (xorg-mit-shm's notApplicable).
 */
const xRefuse = (xError: string, message: string): Refusal => ({
  code: SHM_ERROR.invalid_stride,
  message,
  xError,
});

/**
 * The ShmPutImage a wl_shm buffer becomes, as real/x11-client.ts puts it on the wire:
 * totalWidth = stride / 4 pixels, totalHeight = srcHeight = height, srcWidth = width, each a
 * CARD16, so only their low 16 bits reach the server (xShmPutImageReq, shmproto.h).
 */
function putImageFields(b: BufferArgs): {
  totalWidth: number;
  totalHeight: number;
  srcWidth: number;
} {
  return {
    totalWidth: Math.floor((b.stride >>> 0) / 4) & 0xffff,
    totalHeight: b.height & 0xffff,
    srcWidth: b.width & 0xffff,
  };
}

/**
 * ProcShmPutImage's checks (Xext/shm.c, xserver 21.1.7), in its order, on the fields as the
 * server reads them: a stride of 0x40000 bytes is totalWidth 0, a height of 65536 is
 * totalHeight 0 — truncated, not refused (measured on Xvfb 21.1.7: BadValue with the
 * srcWidth as its value where srcWidth > the truncated totalWidth; docs/real-compositors.md).
 */
function xorgPutImage(b: BufferArgs, size: number): Refusal | null {
  const offset = b.offset >>> 0;
  // VERIFY_SHMPTR: "if ((offset & 3) || (offset > shmdesc->size)) ... return BadValue"
  if (offset & 3 || offset > size)
    return xRefuse("BadValue", `offset ${offset} in a ${size}-byte segment`);
  // format: only XYBitmap, XYPixmap, ZPixmap; "client->errorValue = stuff->format; return BadValue"
  if (b.format !== ARGB8888 && b.format !== XRGB8888)
    return xRefuse("BadValue", `image format ${hex(b.format)}`);
  const { totalWidth, totalHeight, srcWidth } = putImageFields(b);
  const length = totalWidth * 4; // PixmapBytePad(totalWidth, 24): 32 bits per pixel
  // "if (stuff->totalHeight != 0 && length > (shmdesc->size - stuff->offset) / stuff->totalHeight)"
  if (totalHeight !== 0 && length > Math.floor((size - offset) / totalHeight))
    return xRefuse("BadValue", `${totalWidth}x${totalHeight} at ${offset} outside the segment`);
  // srcX, srcY are 0, srcHeight is totalHeight: of the four src checks only this one can fail
  // "if ((stuff->srcX + stuff->srcWidth) > stuff->totalWidth) ... return BadValue"
  if (srcWidth > totalWidth)
    return xRefuse("BadValue", `srcWidth ${srcWidth} > totalWidth ${totalWidth}`);
  // PutImage of a srcWidth x srcHeight rectangle: an empty one reads and draws nothing
  if (srcWidth === 0 || totalHeight === 0)
    return { code: 0, message: `an empty ${srcWidth}x${totalHeight} put`, drawsNothing: true };
  return null;
}

export const XORG_PROFILE: ValidationProfile = {
  source:
    "xserver Xext/shm.c (ProcShmAttachFd, ProcShmPutImage: VERIFY_SHMPTR and the length check), translated to wl_shm",
  formats: [ARGB8888, XRGB8888],
  createPool() {
    return null;
  },
  createBuffer: xorgPutImage,
  resize() {
    return null;
  },
  // The put reads srcWidth x srcHeight pixels, rows `length` (totalWidth * 4) bytes apart,
  // from shmdesc->addr + offset (the PutImage fast path and doShmPutImage alike).
  drawn(b) {
    const f = putImageFields(b);
    return { width: f.srcWidth, height: f.totalHeight, stride: f.totalWidth * 4 };
  },
};

/** What `r->error(-1, ...)` puts on the wire: wl_resource_post_error's uint32_t code. */
export const HYPRLAND_ERROR_MINUS_ONE = 0xffffffff;

/**
 * Hyprland src/protocols/core/Shm.cpp (CWLSHMPoolResource's resize and create_buffer
 * lambdas, CWLSHMResource's create_pool). create_pool checks nothing here (a size mmap
 * refuses is "Couldn't mmap from fd", in the policy); create_buffer checks the format, then
 * `offset < 0 || w <= 0 || h <= 0 || stride <= 0` — and nothing against the pool's size;
 * resize refuses only shrinking, with code -1.
 */
export const HYPRLAND_PROFILE: ValidationProfile = {
  source:
    "Hyprland src/protocols/core/Shm.cpp (CWLSHMResource create_pool, CWLSHMPoolResource resize and create_buffer)",
  formats: [
    ARGB8888,
    XRGB8888,
    fmt("xbgr8888"),
    fmt("abgr8888"),
    fmt("xrgb2101010"),
    fmt("argb2101010"),
    // and XBGR2101010, ABGR2101010: not in this repository's wayland.xml subset.
  ],
  createPool() {
    return null;
  },
  createBuffer(b) {
    if (!this.formats.includes(b.format)) return refuse(SHM_ERROR.invalid_format, "Format invalid");
    if (b.offset < 0 || b.width <= 0 || b.height <= 0 || b.stride <= 0)
      return refuse(SHM_ERROR.invalid_stride, "Invalid stride, w, h, or offset");
    return null;
  },
  resize(size, poolSize) {
    // `if (size_ < (int32_t)pool->size)`: a signed comparison.
    return size < poolSize
      ? refuse(HYPRLAND_ERROR_MINUS_ONE, "Shrinking a shm pool is illegal")
      : null;
  },
};
