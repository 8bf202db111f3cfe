/**
 * The X11 wire, as much of it as MIT-SHM needs, little-endian ('l' byte order), encoded by
 * hand: a hostile client must be able to send any bytes, so nothing here refuses a value a
 * field can hold. Layouts are the X Window System Protocol (X11R7.7, "Encoding" appendix)
 * and the MIT-SHM extension (xorgproto shmproto.h: xShmAttachFdReq, xShmPutImageReq,
 * xShmCreatePixmapReq, xShmCompletionEvent). Lengths are in 4-byte units, requests padded
 * to 4 bytes (the "pad(E)" of the spec).
 */

export const X_CREATE_WINDOW = 1;
export const X_MAP_WINDOW = 8;
export const X_GET_INPUT_FOCUS = 43;
export const X_CLEAR_AREA = 61;
export const X_FREE_PIXMAP = 54;
export const X_CREATE_GC = 55;
export const X_COPY_AREA = 62;
export const X_GET_IMAGE = 73;
export const X_QUERY_EXTENSION = 98;

export const SHM_QUERY_VERSION = 0;
export const SHM_DETACH = 2;
export const SHM_PUT_IMAGE = 3;
export const SHM_CREATE_PIXMAP = 5;
export const SHM_ATTACH_FD = 6;

export const Z_PIXMAP = 2;
/** CreateWindow value-mask bit (Encoding: CreateWindow, BITMASK). */
export const CW_BACK_PIXEL = 0x00000002;
/** CreateGC value-mask bit. */
export const GC_GRAPHICS_EXPOSURES = 0x00010000;

/** Core error codes (Encoding: Errors). */
export const X_ERROR_NAMES: Record<number, string> = {
  1: "BadRequest",
  2: "BadValue",
  3: "BadWindow",
  4: "BadPixmap",
  5: "BadAtom",
  6: "BadCursor",
  7: "BadFont",
  8: "BadMatch",
  9: "BadDrawable",
  10: "BadAccess",
  11: "BadAlloc",
  12: "BadColor",
  13: "BadGC",
  14: "BadIDChoice",
  15: "BadName",
  16: "BadLength",
  17: "BadImplementation",
};

const pad4 = (n: number) => (4 - (n % 4)) % 4;

/** A little-endian request builder; lengths are filled in by `done`. */
class Req {
  private readonly bytes: number[] = [];
  u8(v: number): this {
    this.bytes.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v).u8(v >>> 8);
  }
  u32(v: number): this {
    return this.u16(v & 0xffff).u16(v >>> 16);
  }
  i16(v: number): this {
    return this.u16(v & 0xffff);
  }
  raw(b: Uint8Array): this {
    for (const x of b) this.bytes.push(x);
    return this;
  }
  private pad(): this {
    for (let i = pad4(this.bytes.length); i > 0; i--) this.bytes.push(0);
    return this;
  }
  /** Pads to 4 and writes the length in words into bytes 2..3 (a request header). */
  done(): Uint8Array {
    this.pad();
    const out = Uint8Array.from(this.bytes);
    const words = out.length / 4;
    out[2] = words & 0xff;
    out[3] = (words >>> 8) & 0xff;
    return out;
  }
}

/** The connection setup request: byte order 'l', protocol 11.0, no authorization. */
export function encodeSetup(): Uint8Array {
  // byte-order, unused, major, minor, auth-name length, auth-data length, unused: 12 bytes.
  return Uint8Array.from([0x6c, 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
}

export function encodeQueryExtension(name: string): Uint8Array {
  const n = new TextEncoder().encode(name);
  return new Req().u8(X_QUERY_EXTENSION).u8(0).u16(0).u16(n.length).u16(0).raw(n).done();
}

export interface CreateWindowArgs {
  wid: number;
  parent: number;
  x: number;
  y: number;
  width: number;
  height: number;
  /** The window's background pixel (CWBackPixel), so a never-drawn window is recognisable. */
  background: number;
}

export function encodeCreateWindow(a: CreateWindowArgs): Uint8Array {
  return new Req()
    .u8(X_CREATE_WINDOW)
    .u8(0) // depth: CopyFromParent
    .u16(0)
    .u32(a.wid)
    .u32(a.parent)
    .i16(a.x)
    .i16(a.y)
    .u16(a.width)
    .u16(a.height)
    .u16(0) // border-width
    .u16(1) // class: InputOutput
    .u32(0) // visual: CopyFromParent
    .u32(CW_BACK_PIXEL)
    .u32(a.background)
    .done();
}

export function encodeMapWindow(wid: number): Uint8Array {
  return new Req().u8(X_MAP_WINDOW).u8(0).u16(0).u32(wid).done();
}

/** CreateGC with graphics-exposures off (no NoExpose events after CopyArea). */
export function encodeCreateGC(gc: number, drawable: number): Uint8Array {
  return new Req()
    .u8(X_CREATE_GC)
    .u8(0)
    .u16(0)
    .u32(gc)
    .u32(drawable)
    .u32(GC_GRAPHICS_EXPOSURES)
    .u32(0)
    .done();
}

/**
 * ClearArea of the whole window (width and height 0: "the rest of the window", X11 protocol
 * ClearArea) to its background, exposures off: what an X client does for a null attach.
 */
export function encodeClearArea(wid: number): Uint8Array {
  return new Req()
    .u8(X_CLEAR_AREA)
    .u8(0) // exposures: False
    .u16(0)
    .u32(wid)
    .i16(0)
    .i16(0)
    .u16(0)
    .u16(0)
    .done();
}

/** GetInputFocus: the cheapest request with a reply, used as a round trip. */
export function encodeGetInputFocus(): Uint8Array {
  return new Req().u8(X_GET_INPUT_FOCUS).u8(0).u16(0).done();
}

export function encodeGetImage(
  drawable: number,
  x: number,
  y: number,
  width: number,
  height: number,
): Uint8Array {
  return new Req()
    .u8(X_GET_IMAGE)
    .u8(Z_PIXMAP)
    .u16(0)
    .u32(drawable)
    .i16(x)
    .i16(y)
    .u16(width)
    .u16(height)
    .u32(0xffffffff)
    .done();
}

export interface CopyAreaArgs {
  src: number;
  dst: number;
  gc: number;
  srcX: number;
  srcY: number;
  dstX: number;
  dstY: number;
  width: number;
  height: number;
}

export function encodeCopyArea(a: CopyAreaArgs): Uint8Array {
  return new Req()
    .u8(X_COPY_AREA)
    .u8(0)
    .u16(0)
    .u32(a.src)
    .u32(a.dst)
    .u32(a.gc)
    .i16(a.srcX)
    .i16(a.srcY)
    .i16(a.dstX)
    .i16(a.dstY)
    .u16(a.width)
    .u16(a.height)
    .done();
}

export function encodeFreePixmap(pixmap: number): Uint8Array {
  return new Req().u8(X_FREE_PIXMAP).u8(0).u16(0).u32(pixmap).done();
}

// ---- MIT-SHM ---------------------------------------------------------------------------

export function encodeShmQueryVersion(major: number): Uint8Array {
  return new Req().u8(major).u8(SHM_QUERY_VERSION).u16(0).done();
}

/** ShmAttachFd: the fd travels beside these 12 bytes as SCM_RIGHTS. */
export function encodeShmAttachFd(major: number, shmseg: number, readOnly: number): Uint8Array {
  return new Req().u8(major).u8(SHM_ATTACH_FD).u16(0).u32(shmseg).u8(readOnly).u8(0).u16(0).done();
}

export function encodeShmDetach(major: number, shmseg: number): Uint8Array {
  return new Req().u8(major).u8(SHM_DETACH).u16(0).u32(shmseg).done();
}

export interface ShmPutImageArgs {
  drawable: number;
  gc: number;
  totalWidth: number;
  totalHeight: number;
  srcX: number;
  srcY: number;
  srcWidth: number;
  srcHeight: number;
  dstX: number;
  dstY: number;
  depth: number;
  format: number;
  sendEvent: number;
  shmseg: number;
  offset: number;
}

export function encodeShmPutImage(major: number, a: ShmPutImageArgs): Uint8Array {
  return new Req()
    .u8(major)
    .u8(SHM_PUT_IMAGE)
    .u16(0)
    .u32(a.drawable)
    .u32(a.gc)
    .u16(a.totalWidth)
    .u16(a.totalHeight)
    .u16(a.srcX)
    .u16(a.srcY)
    .u16(a.srcWidth)
    .u16(a.srcHeight)
    .i16(a.dstX)
    .i16(a.dstY)
    .u8(a.depth)
    .u8(a.format)
    .u8(a.sendEvent)
    .u8(0)
    .u32(a.shmseg)
    .u32(a.offset)
    .done();
}

export interface ShmCreatePixmapArgs {
  pid: number;
  drawable: number;
  width: number;
  height: number;
  depth: number;
  shmseg: number;
  offset: number;
}

export function encodeShmCreatePixmap(major: number, a: ShmCreatePixmapArgs): Uint8Array {
  return new Req()
    .u8(major)
    .u8(SHM_CREATE_PIXMAP)
    .u16(0)
    .u32(a.pid)
    .u32(a.drawable)
    .u16(a.width)
    .u16(a.height)
    .u8(a.depth)
    .u8(0)
    .u16(0)
    .u32(a.shmseg)
    .u32(a.offset)
    .done();
}

// ---- server -> client ------------------------------------------------------------------

export interface SetupInfo {
  release: number;
  ridBase: number;
  ridMask: number;
  vendor: string;
  maxRequestLength: number;
  root: number;
  rootDepth: number;
  rootVisual: number;
  width: number;
  height: number;
}

export class X11WireError extends Error {
  readonly code = "SHM_ERR_X11_WIRE";
}

const u16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const u32 = (b: Uint8Array, o: number) =>
  (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;

/**
 * The setup reply, once `buf` holds all of it: { info, used } or null if more bytes are
 * needed. A Failed (0) or Authenticate (2) answer throws with the server's reason.
 */
export function decodeSetup(buf: Uint8Array): { info: SetupInfo; used: number } | null {
  if (buf.length < 8) return null;
  const total = 8 + u16(buf, 6) * 4;
  if (buf.length < total) return null;
  if (buf[0] !== 1) {
    const reason = new TextDecoder().decode(buf.subarray(8, 8 + buf[1]));
    throw new X11WireError(`X11 connection refused (${buf[0]}): ${reason}`);
  }
  const vendorLen = u16(buf, 24);
  const formats = buf[29];
  const screen = 40 + vendorLen + pad4(vendorLen) + 8 * formats;
  return {
    used: total,
    info: {
      release: u32(buf, 8),
      ridBase: u32(buf, 12),
      ridMask: u32(buf, 16),
      vendor: new TextDecoder().decode(buf.subarray(40, 40 + vendorLen)),
      maxRequestLength: u16(buf, 26),
      root: u32(buf, screen),
      width: u16(buf, screen + 20),
      height: u16(buf, screen + 22),
      rootVisual: u32(buf, screen + 32),
      rootDepth: buf[screen + 38],
    },
  };
}

export type ServerMessage =
  | { kind: "reply"; seq: number; data: Uint8Array }
  | {
      kind: "error";
      seq: number;
      code: number;
      badValue: number;
      minor: number;
      major: number;
    }
  | { kind: "event"; seq: number; type: number; data: Uint8Array };

/**
 * One message from the front of `buf` (after setup): replies are 32 bytes plus 4×length,
 * errors and events exactly 32. null if `buf` does not yet hold a whole message.
 */
export function decodeServerMessage(buf: Uint8Array): { msg: ServerMessage; used: number } | null {
  if (buf.length < 32) return null;
  const seq = u16(buf, 2);
  if (buf[0] === 0)
    return {
      used: 32,
      msg: {
        kind: "error",
        seq,
        code: buf[1],
        badValue: u32(buf, 4),
        minor: u16(buf, 8),
        major: buf[10],
      },
    };
  if (buf[0] === 1) {
    const total = 32 + u32(buf, 4) * 4;
    if (buf.length < total) return null;
    return { used: total, msg: { kind: "reply", seq, data: buf.slice(0, total) } };
  }
  return { used: 32, msg: { kind: "event", seq, type: buf[0] & 0x7f, data: buf.slice(0, 32) } };
}

export interface QueryExtensionReply {
  present: boolean;
  majorOpcode: number;
  firstEvent: number;
  firstError: number;
}

export function decodeQueryExtension(r: Uint8Array): QueryExtensionReply {
  return { present: r[8] === 1, majorOpcode: r[9], firstEvent: r[10], firstError: r[11] };
}

export interface ShmVersionReply {
  sharedPixmaps: boolean;
  major: number;
  minor: number;
  pixmapFormat: number;
}

export function decodeShmQueryVersion(r: Uint8Array): ShmVersionReply {
  return { sharedPixmaps: r[1] === 1, major: u16(r, 8), minor: u16(r, 10), pixmapFormat: r[16] };
}

/** GetImage reply: depth, visual, and the image bytes (ZPixmap, scanlines padded). */
export function decodeGetImage(r: Uint8Array): { depth: number; visual: number; data: Uint8Array } {
  return { depth: r[1], visual: u32(r, 8), data: r.subarray(32) };
}

/** xShmCompletionEvent: drawable, minor/major of the request, shmseg, offset. */
export function decodeShmCompletion(e: Uint8Array): {
  drawable: number;
  minorEvent: number;
  majorEvent: number;
  shmseg: number;
  offset: number;
} {
  return {
    drawable: u32(e, 4),
    minorEvent: u16(e, 8),
    majorEvent: e[10],
    shmseg: u32(e, 12),
    offset: u32(e, 16),
  };
}
