/**
 * The wl_shm validation profiles (compositor/validation.ts) at their boundaries, each
 * expectation derived from the implementation's own condition (quoted in each test), never
 * from what the profile returns: one pixel, byte or check on either side of every rule.
 */
import { describe, expect, it } from "vitest";
import type { BufferArgs, ValidationProfile } from "../compositor/policy.ts";
import {
  ARGB8888,
  bytesPerPixel,
  KWIN_PROFILE,
  LIBWAYLAND_PROFILE,
  SMITHAY_PROFILE,
  WLROOTS_PROFILE,
  XORG_PROFILE,
  XRGB8888,
} from "../compositor/validation.ts";
import { SHM_ERROR, SHM_FORMATS } from "../protocol/schema.ts";

const INT32_MAX = 2 ** 31 - 1;
const fourcc = (name: string) => SHM_FORMATS.find((f) => f.name === name)!.value;
const ARGB2101010 = fourcc("argb2101010");
/** A format wl_shm knows that no profile here supports, with 2 bytes per pixel. */
const RGB565 = fourcc("rgb565");
/** 64×64 ARGB8888 at offset 0 in a pool that fits it exactly. */
const OK: BufferArgs = { offset: 0, width: 64, height: 64, stride: 256, format: ARGB8888 };
const FIT = 256 * 64;

function buf(p: ValidationProfile, change: Partial<BufferArgs>, pool = FIT) {
  return p.createBuffer({ ...OK, ...change }, pool);
}
const code = (r: { code: number } | null) => r?.code ?? "accepted";

/** The libwayland condition, shared by KWin. */
describe.each([
  ["libwayland", LIBWAYLAND_PROFILE],
  ["kwin", KWIN_PROFILE],
])("%s: libwayland's shm_pool_create_buffer condition", (_name, p) => {
  // "if (offset < 0 || width <= 0 || height <= 0 || stride < width ||
  //      INT32_MAX / stride < height || offset > pool->size - stride * height)"
  it("accepts a buffer that fills the pool exactly, and refuses one byte more", () => {
    expect(buf(p, {})).toBeNull();
    expect(buf(p, { offset: 4 }, FIT + 4)).toBeNull();
    expect(code(buf(p, { offset: 5 }, FIT + 4))).toBe(SHM_ERROR.invalid_stride);
    expect(code(buf(p, {}, FIT - 1))).toBe(SHM_ERROR.invalid_stride);
  });
  it("offset < 0, width <= 0 and height <= 0 are invalid_stride; 1 is fine", () => {
    expect(code(buf(p, { offset: -1 }))).toBe(SHM_ERROR.invalid_stride);
    expect(code(buf(p, { width: 0 }))).toBe(SHM_ERROR.invalid_stride);
    expect(code(buf(p, { height: 0 }))).toBe(SHM_ERROR.invalid_stride);
    expect(code(buf(p, { width: -1 }))).toBe(SHM_ERROR.invalid_stride);
    expect(code(buf(p, { height: -1 }))).toBe(SHM_ERROR.invalid_stride);
    expect(buf(p, { width: 1, height: 1, stride: 4 }, 4)).toBeNull();
  });
  it("stride < width compares bytes with pixels: stride == width passes the condition", () => {
    expect(code(buf(p, { width: 64, stride: 63 }))).toBe(SHM_ERROR.invalid_stride);
    // 64 pixels of 4 bytes in a 64-byte stride: libwayland's condition lets it through.
    expect(buf(p, { width: 64, stride: 64, height: 1 }, 64)).toBeNull();
  });
  it("INT32_MAX / stride < height: the int32 overflow boundary, in C's integer division", () => {
    // INT32_MAX / 4 == 536870911 (truncated): that height fits, one more overflows.
    const pool = INT32_MAX;
    expect(buf(p, { width: 1, stride: 4, height: 536870911 }, pool)).toBeNull();
    expect(code(buf(p, { width: 1, stride: 4, height: 536870912 }, pool))).toBe(
      SHM_ERROR.invalid_stride,
    );
    // stride 3: INT32_MAX / 3 == 715827882 (truncated), and 715827883 overflows. (KWin
    // refuses any stride 3 of ARGB8888 later, for stride % 4.)
    if (p !== KWIN_PROFILE) {
      expect(buf(p, { width: 1, stride: 3, height: 715827882 }, pool)).toBeNull();
      expect(code(buf(p, { width: 1, stride: 3, height: 715827883 }, pool))).toBe(
        SHM_ERROR.invalid_stride,
      );
    }
  });
  it("the int32 check stands on its own: a pool past 2 GiB does not make height * stride fit", () => {
    // Xorg's pool is the file's st_size, which may exceed INT32_MAX; the condition's
    // INT32_MAX / stride < height does not depend on the pool at all.
    expect(code(buf(p, { width: 1, stride: 4, height: 536870912 }, 2 ** 32))).toBe(
      SHM_ERROR.invalid_stride,
    );
    expect(buf(p, { width: 1, stride: 4, height: 536870911 }, 2 ** 32)).toBeNull();
  });
  it("the message carries the geometry as the C format string prints it", () => {
    const r = buf(p, { width: 7, height: 9, stride: 5 });
    expect(r?.message).toContain("(7x9, 5)");
  });
  it('create_pool: size <= 0 is invalid_stride ("invalid size (%d)"); 1 byte is a pool', () => {
    expect(p.createPool(1)).toBeNull();
    expect(p.createPool(0)).toEqual({
      code: SHM_ERROR.invalid_stride,
      message: "invalid size (0)",
    });
    expect(code(p.createPool(-4096))).toBe(SHM_ERROR.invalid_stride);
  });
  it('resize: smaller is invalid_fd ("shrinking pool invalid"); equal and larger are fine', () => {
    expect(p.resize(FIT, FIT)).toBeNull();
    expect(p.resize(FIT + 1, FIT)).toBeNull();
    expect(p.resize(FIT - 1, FIT)).toEqual({
      code: SHM_ERROR.invalid_fd,
      message: "shrinking pool invalid",
    });
    expect(code(p.resize(0, FIT))).toBe(SHM_ERROR.invalid_fd);
  });
});

describe("libwayland: format_is_supported", () => {
  it("ARGB8888 and XRGB8888 always; anything else is invalid_format, printed as %x", () => {
    expect(buf(LIBWAYLAND_PROFILE, { format: XRGB8888 })).toBeNull();
    expect(buf(LIBWAYLAND_PROFILE, { format: ARGB2101010 })).toEqual({
      code: SHM_ERROR.invalid_format,
      message: `invalid format 0x${ARGB2101010.toString(16)}`,
    });
    // "invalid format 0x%x": a negative int reinterpreted as unsigned.
    expect(buf(LIBWAYLAND_PROFILE, { format: -1 })?.message).toBe("invalid format 0xffffffff");
  });
  it("the format is checked before the geometry", () => {
    expect(code(buf(LIBWAYLAND_PROFILE, { format: 2, width: 0 }))).toBe(SHM_ERROR.invalid_format);
  });
});

/**
 * Xorg (Xext/shm.c ProcShmPutImage, the commit of the translation): each failure is an X
 * error after which the client stays (Refusal.xError), measured so on Xvfb 21.1.7.
 */
describe("xorg: ProcShmPutImage's checks on the wire's CARD16/CARD32 fields", () => {
  const xe = (r: { xError?: string } | null) => r?.xError ?? "accepted";
  it("VERIFY_SHMPTR: (offset & 3) || offset > size is BadValue", () => {
    expect(buf(XORG_PROFILE, { offset: 4 }, FIT + 4)).toBeNull();
    expect(xe(buf(XORG_PROFILE, { offset: 2 }, FIT + 4))).toBe("BadValue");
    expect(xe(buf(XORG_PROFILE, { offset: FIT + 8, height: 1 }, FIT + 4))).toBe("BadValue");
  });
  it("length > (size - offset) / totalHeight is BadValue, in C's integer division", () => {
    // length = PixmapBytePad(totalWidth = 256 / 4, 24) = 256; FIT / 64 = 256 fits.
    expect(buf(XORG_PROFILE, {})).toBeNull();
    expect(xe(buf(XORG_PROFILE, {}, FIT - 1))).toBe("BadValue");
    expect(buf(XORG_PROFILE, {}, FIT + 63)).toBeNull(); // (FIT + 63) / 64 is still 256
  });
  it("srcX + srcWidth > totalWidth is BadValue: a stride in pixels is caught here", () => {
    expect(xe(buf(XORG_PROFILE, { width: 64, stride: 64, height: 1 }, 64))).toBe("BadValue");
    expect(buf(XORG_PROFILE, { width: 16, stride: 64, height: 1 }, 64)).toBeNull();
  });
  it("an image format the wl formats do not map to (ZPixmap, depth 24) is BadValue", () => {
    expect(xe(buf(XORG_PROFILE, { format: 2 }))).toBe("BadValue");
    expect(buf(XORG_PROFILE, { format: XRGB8888 })).toBeNull();
  });
  it("a height of 65536 is totalHeight 0 on the wire: nothing to check, nothing drawn", () => {
    expect(buf(XORG_PROFILE, { width: 1, stride: 4, height: 65536 }, 4)).toMatchObject({
      drawsNothing: true,
    });
  });
  it("fields beyond 16 bits are truncated, then checked: srcWidth > a truncated totalWidth is BadValue", () => {
    // measured on Xvfb 21.1.7: "BadValue on ShmPutImage ... value 0x10" (the srcWidth)
    // stride 0x40000: totalWidth 0x10000 & 0xffff = 0
    expect(xe(buf(XORG_PROFILE, { width: 16, height: 16, stride: 0x40000 }, 1024))).toBe(
      "BadValue",
    );
    // height 0x10000: totalHeight 0 skips the length check; srcWidth 16 > totalWidth 1
    expect(xe(buf(XORG_PROFILE, { width: 16, height: 0x10000, stride: 4 }, 1024))).toBe("BadValue");
    // the fuzz generator's strides 0x7fffffff and -4: totalWidth 0xffff, far past a small segment
    expect(xe(buf(XORG_PROFILE, { width: 16, height: 16, stride: 0x7fffffff }, 4096))).toBe(
      "BadValue",
    );
    expect(xe(buf(XORG_PROFILE, { width: 16, height: 16, stride: -4 }, 4096))).toBe("BadValue");
  });
  it("a truncated put that passes draws the geometry its fields carry, rows totalWidth * 4 apart", () => {
    // stride 0x40040: totalWidth 16, length 64 fits 1024 / 16 (measured: no error on Xvfb)
    const b = { offset: 0, width: 16, height: 16, stride: 0x40040, format: XRGB8888 };
    expect(XORG_PROFILE.createBuffer(b, 1024)).toBeNull();
    expect(XORG_PROFILE.drawn?.(b)).toEqual({ width: 16, height: 16, stride: 64 });
    // a stride in bytes that is not whole pixels: the server's rows are floor(stride / 4) pixels
    expect(XORG_PROFILE.drawn?.({ ...b, stride: 66 })).toEqual({
      width: 16,
      height: 16,
      stride: 64,
    });
    expect(XORG_PROFILE.drawn?.({ ...b, height: 0x10010, stride: 64 })).toEqual({
      width: 16,
      height: 16,
      stride: 64,
    });
  });
  it("ShmAttachFd carries no size and MIT-SHM has no resize: nothing to refuse", () => {
    expect(XORG_PROFILE.createPool(-1)).toBeNull();
    expect(XORG_PROFILE.resize(0, FIT)).toBeNull();
  });
});

describe("KWin: s_formats, then libwayland's condition, then stride % bytesPerPixel", () => {
  it("a stride that is not a multiple of the pixel size is invalid_stride; libwayland lets it pass", () => {
    // "if (stride % bytesPerPixel != 0)" — 4 bytes per pixel for ARGB8888.
    const odd = { width: 1, height: 1, stride: 6 };
    expect(buf(KWIN_PROFILE, odd, 6)).toEqual({
      code: SHM_ERROR.invalid_stride,
      message: "invalid stride, 6 is not a multiple of 4",
    });
    expect(buf(LIBWAYLAND_PROFILE, odd, 6)).toBeNull();
    expect(buf(KWIN_PROFILE, { width: 1, height: 1, stride: 8 }, 8)).toBeNull();
    expect(buf(KWIN_PROFILE, { width: 1, height: 1, stride: 4 }, 4)).toBeNull();
  });
  it("supports the 10-bit formats libwayland refuses; the format is checked first", () => {
    expect(buf(KWIN_PROFILE, { format: ARGB2101010 })).toBeNull();
    expect(buf(KWIN_PROFILE, { format: fourcc("xrgb2101010") })).toBeNull();
    expect(code(buf(KWIN_PROFILE, { format: RGB565 }))).toBe(SHM_ERROR.invalid_format);
    expect(code(buf(KWIN_PROFILE, { format: RGB565, width: 0 }))).toBe(SHM_ERROR.invalid_format);
    expect(buf(KWIN_PROFILE, { format: RGB565 })?.message).toBe(
      `invalid format 0x${RGB565.toString(16)}`,
    );
  });
});

describe("wlroots: geometry in 64 bits first, then the format, then the stride", () => {
  const p = WLROOTS_PROFILE;
  it("offset + stride * height > size is the bound (no int32 division)", () => {
    expect(buf(p, {})).toBeNull();
    expect(code(buf(p, {}, FIT - 1))).toBe(SHM_ERROR.invalid_stride);
    expect(buf(p, { offset: 4 }, FIT + 4)).toBeNull();
    expect(code(buf(p, { offset: 4 }, FIT + 3))).toBe(SHM_ERROR.invalid_stride);
    // Heights libwayland calls overflow are fine here if the pool holds them.
    expect(buf(p, { width: 1, stride: 4, height: 536870912 }, 2 ** 31)).toBeNull();
    expect(buf(p, { width: 7, height: 9, stride: 5 })?.message).toBe(
      "Invalid width, height or stride (7x9, 5)",
    );
  });
  it("offset < 0, width <= 0, height <= 0, stride < width are invalid_stride, before the format", () => {
    for (const bad of [{ offset: -1 }, { width: 0 }, { height: 0 }, { stride: 63 }]) {
      expect(code(buf(p, { ...bad, format: RGB565 }))).toBe(SHM_ERROR.invalid_stride);
    }
    expect(code(buf(p, { format: RGB565 }))).toBe(SHM_ERROR.invalid_format);
    expect(buf(p, { format: RGB565 })?.message).toBe("Unsupported format");
  });
  it("pixel_format_info_check_stride: stride % bpp, then stride >= width * bpp", () => {
    expect(buf(p, { width: 1, height: 1, stride: 6 }, 6)).toEqual({
      code: SHM_ERROR.invalid_stride,
      message: "Invalid stride (6)",
    });
    // width * 4 = 256 bytes; a 252-byte stride passes libwayland-style stride >= width.
    expect(code(buf(p, { stride: 252 }))).toBe(SHM_ERROR.invalid_stride);
    expect(buf(p, { stride: 256 })).toBeNull();
    expect(buf(p, { width: 1, height: 1, stride: 4 }, 4)).toBeNull();
  });
  it("a width whose minimum stride overflows int32 gives min_stride 0: refused", () => {
    // "if (width > INT32_MAX / bytes_per_pixel) ... return 0" — 536870911 is the last width.
    const w = 536870912;
    expect(code(buf(p, { width: w, height: 1, stride: 4 * w }, 4 * w))).toBe(
      SHM_ERROR.invalid_stride,
    );
    const w1 = 536870911;
    expect(buf(p, { width: w1, height: 1, stride: 4 * w1 }, 4 * w1)).toBeNull();
  });
  it("create_pool size <= 0 and any resize that does not grow are invalid_stride", () => {
    expect(p.createPool(1)).toBeNull();
    expect(p.createPool(0)).toEqual({
      code: SHM_ERROR.invalid_stride,
      message: "Invalid size (0)",
    });
    expect(p.resize(FIT, FIT)).toBeNull();
    expect(p.resize(FIT + 1, FIT)).toBeNull();
    expect(p.resize(FIT - 1, FIT)).toEqual({
      code: SHM_ERROR.invalid_stride,
      message: `Shrinking a pool (${FIT} to ${FIT - 1}) is forbidden`,
    });
    expect(code(p.resize(0, FIT))).toBe(SHM_ERROR.invalid_stride);
  });
});

describe("Smithay: five InvalidStride checks, then the format", () => {
  const p = SMITHAY_PROFILE;
  it("each check at its boundary, with its message", () => {
    expect(buf(p, {})).toBeNull();
    expect(buf(p, { offset: -1 })?.message).toBe("offset must not be negative");
    expect(buf(p, { width: 0 })?.message).toBe("invalid width or height (0x64)");
    expect(buf(p, { height: 0 })?.message).toBe("invalid width or height (64x0)");
    expect(code(buf(p, { width: -1 }))).toBe(SHM_ERROR.invalid_stride);
    expect(code(buf(p, { height: -1 }))).toBe(SHM_ERROR.invalid_stride);
    // stride / bpp < width: 255 / 4 == 63 pixels.
    expect(buf(p, { stride: 255 })?.message).toBe("width must not be larger than stride (64 > 63)");
    expect(buf(p, { stride: 256 })).toBeNull();
    expect(buf(p, { offset: 1 })?.message).toBe("offset is too large");
    expect(buf(p, { offset: 1 }, FIT + 1)).toBeNull();
  });
  it("height against i32::MAX / stride, in integer division", () => {
    expect(buf(p, { width: 1, stride: 4, height: 536870911 }, INT32_MAX)).toBeNull();
    expect(buf(p, { width: 1, stride: 4, height: 536870912 }, INT32_MAX)?.message).toBe(
      "height is too large for stride (max 536870911)",
    );
  });
  it("an unknown format has bpp 0 (checked_div → 0): refused as a stride, before the format", () => {
    expect(bytesPerPixel(0x12345678)).toBe(0);
    expect(buf(p, { format: 0x12345678 })).toEqual({
      code: SHM_ERROR.invalid_stride,
      message: "width must not be larger than stride (64 > 0)",
    });
  });
  it("a known format outside its list is invalid_format, by name", () => {
    expect(buf(p, { format: ARGB2101010 })).toEqual({
      code: SHM_ERROR.invalid_format,
      message: "format argb2101010 not supported",
    });
  });
  it("resize: 0 posts invalid_fd and then panics; negative and shrinking are invalid_fd", () => {
    expect(p.createPool(0)).toEqual({
      code: SHM_ERROR.invalid_stride,
      message: "invalid wl_shm_pool size",
    });
    expect(p.createPool(1)).toBeNull();
    expect(p.resize(0, FIT)?.thenPanic).toMatch(/TryFromIntError/);
    expect(p.resize(0, FIT)).toMatchObject({
      code: SHM_ERROR.invalid_fd,
      message: "invalid wl_shm_pool size",
    });
    expect(p.resize(-1, FIT)).toEqual({
      code: SHM_ERROR.invalid_fd,
      message: "invalid wl_shm_pool size",
    });
    expect(p.resize(-1, FIT)?.thenPanic).toBeUndefined();
    expect(p.resize(FIT - 1, FIT)?.message).toBe("cannot shrink wl_shm_pool");
    expect(p.resize(FIT, FIT)).toBeNull();
    expect(p.resize(FIT + 1, FIT)).toBeNull();
  });
});

describe("bytesPerPixel", () => {
  it("is 4 for the 32-bit formats, 2 for rgb565, 0 for an unknown code", () => {
    expect(bytesPerPixel(ARGB8888)).toBe(4);
    expect(bytesPerPixel(XRGB8888)).toBe(4);
    expect(bytesPerPixel(ARGB2101010)).toBe(4);
    expect(bytesPerPixel(RGB565)).toBe(2);
    expect(bytesPerPixel(-5)).toBe(0);
  });
});
