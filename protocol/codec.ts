/**
 * Frames on the wire: one msgpack value per frame, packed and unpacked by msgpackr with the
 * same options on both ends (CODEC_OPTIONS).
 *
 *   Wayland message:  [objectId, opcode, [arg, ...]]          objectId >= 1
 *   syscall request:  [0, seq, name, [arg, ...]]               client -> server
 *   syscall reply:    [0, seq, errno | null, value]            server -> client
 *
 * Object id 0 is the null object in Wayland and never a sender, so it is free to mark the
 * syscall channel that remote clients need (see syscalls.ts).
 *
 * Decoding never trusts msgpackr with hostile bytes. A structural pre-scan runs first, with
 * no recursion and no allocation: it refuses frames over the size cap before reading them,
 * truncated values, trailing bytes, nesting deeper than any valid frame, the reserved byte
 * 0xc1, every extension type (msgpackr would otherwise run its own handlers for them, some of
 * which keep state in the shared Unpackr), maps (whose keys could be `__proto__`) and 64-bit
 * integers (no Wayland argument is wider than 32 bits). Only then does msgpackr decode, and
 * what it can produce is limited to arrays, numbers, strings, byte arrays, booleans and nil.
 */
import { Packr, Unpackr } from "msgpackr";
import { PROTO_ERR, ProtocolError, protoError } from "./errors.ts";

/** msgpackr options shared by every encoder and decoder in shmlab. */
export const CODEC_OPTIONS = {
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  mapsAsObjects: false,
  useFloat32: 0,
  int64AsType: "number",
  encodeUndefinedAsNil: true,
} as const;

export interface CodecLimits {
  /**
   * Largest Wayland message frame in bytes. libwayland reads into a connection buffer of
   * WL_BUFFER_DEFAULT_MAX_SIZE = (1 << WL_BUFFER_DEFAULT_SIZE_POT) = 4096 bytes
   * (wayland-private.h), so no message is larger; msgpack is never larger than the word
   * format for the same message.
   */
  maxFrameBytes: number;
  /** Largest syscall frame (pwrite carries data). */
  maxSyscallFrameBytes: number;
  /** Deepest array nesting accepted; a valid frame needs 2 (at most 64 is honoured). */
  maxDepth: number;
  /** Longest string argument in bytes (libwayland has no cap below the message size). */
  maxStringBytes: number;
  /** Most fds one message may carry: libwayland's MAX_FDS_OUT is 28. */
  maxFds: number;
}

export const DEFAULT_LIMITS: Readonly<CodecLimits> = Object.freeze({
  maxFrameBytes: 4096,
  maxSyscallFrameBytes: 1024 * 1024 + 256,
  maxDepth: 2,
  maxStringBytes: 1024,
  maxFds: 28,
});

export type WireValue = number | string | boolean | null | Uint8Array | WireValue[];

export interface MessageFrame {
  kind: "message";
  objectId: number;
  opcode: number;
  args: WireValue[];
}

/** A frame on object 0: a syscall request or reply, shape checked by syscalls.ts. */
export interface ControlFrame {
  kind: "control";
  items: WireValue[];
}

export type Frame = MessageFrame | ControlFrame;

const packr = new Packr(CODEC_OPTIONS);
const unpackr = new Unpackr(CODEC_OPTIONS);

/** msgpackr's first encode buffer (pack.js: `new ByteArrayAllocate(8192)`). */
const ENCODE_BUFFER_BYTES = 8192;
/** Past this, the encode buffer is handed back after the frame that grew it. */
const ENCODE_BUFFER_KEEP_BYTES = 64 * 1024;

/**
 * msgpackr packs every frame into one module-wide buffer, returning a view of it, and
 * grows that buffer to 4 x the largest frame (pack.js makeRoom) without ever shrinking it;
 * when it fills, the next one is as large. After one 256 KiB `pread` reply the server
 * packed every later frame into 1 MiB buffers, and each small frame still queued or held
 * pinned a whole one (the soak's heap snapshots: a 1 MiB buffer retained by msgpackr's
 * `pack` after the attackers left). So once a frame has grown the buffer past 64 KiB,
 * msgpackr is given a fresh 8 KiB one (`useBuffer`, its API for a caller-owned buffer):
 * the big buffer lives only as long as the big frame.
 */
function pack(value: unknown): Uint8Array {
  const out = packr.pack(value);
  if (out.buffer.byteLength > ENCODE_BUFFER_KEEP_BYTES)
    packr.useBuffer(Buffer.allocUnsafeSlow(ENCODE_BUFFER_BYTES));
  return out;
}

export function encodeMessage(
  objectId: number,
  opcode: number,
  args: readonly unknown[],
): Uint8Array {
  return pack([objectId, opcode, args]);
}

export function encodeControl(items: readonly unknown[]): Uint8Array {
  return pack(items);
}

/** Encodes any value: for tests and fuzzers that need to send frames no honest peer would. */
export function encodeRaw(value: unknown): Uint8Array {
  return pack(value);
}

/**
 * Whether the bytes begin a syscall frame: a 4-element fixarray whose first element is the
 * positive fixint 0. Looked at before decoding so the larger syscall cap applies only there.
 */
function isControlHeader(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x94 && b[1] === 0x00;
}

/** Open arrays' remaining item counts, reused by every scan (scans never interleave). */
const scanStack = new Int32Array(64);

// Set by scanHeader for array headers; -1 for any other value.
let scanArrayLen = -1;

/**
 * Reads the header of the (rarer) value at b[pos - 1] = t: returns the position after the
 * header and its payload, and sets scanArrayLen for arrays. Throws on what a frame may not
 * contain.
 */
function scanHeader(b: Uint8Array, t: number, pos: number): number {
  scanArrayLen = -1;
  switch (t) {
    case 0xc0:
    case 0xc2:
    case 0xc3:
      return pos;
    case 0xcc:
    case 0xd0:
      return pos + 1;
    case 0xcd:
    case 0xd1:
      return pos + 2;
    case 0xce:
    case 0xd2:
    case 0xca:
      return pos + 4;
    case 0xcb:
      return pos + 8;
    case 0xd9:
    case 0xc4:
      need(b, pos, 1);
      return pos + 1 + b[pos];
    case 0xda:
    case 0xc5:
      need(b, pos, 2);
      return pos + 2 + ((b[pos] << 8) | b[pos + 1]);
    case 0xdb:
    case 0xc6:
      need(b, pos, 4);
      return pos + 4 + readU32(b, pos);
    case 0xdc:
      need(b, pos, 2);
      scanArrayLen = (b[pos] << 8) | b[pos + 1];
      return pos + 2;
    case 0xdd:
      need(b, pos, 4);
      scanArrayLen = readU32(b, pos);
      return pos + 4;
    case 0xc1:
      throw protoError(PROTO_ERR.RESERVED, `reserved msgpack byte 0xc1 at ${pos - 1}`);
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
      throw protoError(PROTO_ERR.RESERVED, `msgpack extension type at byte ${pos - 1}`);
    case 0xcf:
    case 0xd3:
      throw protoError(PROTO_ERR.UNSUPPORTED_TYPE, `64-bit integer at byte ${pos - 1}`);
    default:
      // 0x80-0x8f fixmap, 0xde map16, 0xdf map32
      throw protoError(PROTO_ERR.UNSUPPORTED_TYPE, `msgpack map at byte ${pos - 1}`);
  }
}

/**
 * Walks one msgpack value without decoding it. Throws ProtocolError on anything a frame may
 * not contain. O(n) in the bytes, constant stack, no allocation.
 */
export function prescan(b: Uint8Array, maxDepth: number): void {
  const n = b.length;
  if (n === 0) throw protoError(PROTO_ERR.TRUNCATED, "empty frame");
  const limit = Math.min(maxDepth, scanStack.length);
  let depth = 0;
  let pos = 0;
  for (;;) {
    if (pos >= n) throw protoError(PROTO_ERR.TRUNCATED, `frame ends at byte ${pos} inside a value`);
    const t = b[pos++];
    let arrayLen = -1;
    if (t <= 0x7f || t >= 0xe0) {
      // fixint: the common case, nothing more to read
    } else if (t >= 0xa0 && t <= 0xbf) {
      pos += t & 0x1f;
    } else if (t >= 0x90 && t <= 0x9f) {
      arrayLen = t & 0x0f;
    } else {
      pos = scanHeader(b, t, pos);
      arrayLen = scanArrayLen;
    }
    if (pos > n) throw protoError(PROTO_ERR.TRUNCATED, `value before ${pos} runs past the end`);
    if (arrayLen >= 0) {
      if (depth + 1 > limit)
        throw protoError(PROTO_ERR.TOO_DEEP, `arrays nested deeper than ${limit}`);
      // Each item takes at least one byte: a count beyond the bytes left is a truncation,
      // refused before anything is allocated for it.
      if (arrayLen > n - pos)
        throw protoError(PROTO_ERR.TRUNCATED, `array of ${arrayLen} items in ${n - pos} bytes`);
      if (arrayLen > 0) {
        scanStack[depth++] = arrayLen;
        continue;
      }
    }
    // A complete value: close every array it completes.
    while (depth > 0 && --scanStack[depth - 1] === 0) depth--;
    if (depth === 0) break;
  }
  if (pos !== n) throw protoError(PROTO_ERR.TRAILING, `${n - pos} bytes after the frame`);
}

function need(b: Uint8Array, pos: number, k: number): void {
  if (pos + k > b.length)
    throw protoError(PROTO_ERR.TRUNCATED, `header at ${pos} runs past the end`);
}

function readU32(b: Uint8Array, pos: number): number {
  return ((b[pos] << 24) >>> 0) + (b[pos + 1] << 16) + (b[pos + 2] << 8) + b[pos + 3];
}

/**
 * Decodes one frame. Throws ProtocolError (never anything else) when the bytes are not a
 * well-formed frame; the argument values are checked later, against the schema (validate.ts).
 */
export function decodeFrame(bytes: Uint8Array, limits: CodecLimits = DEFAULT_LIMITS): Frame {
  const control = isControlHeader(bytes);
  const cap = control ? limits.maxSyscallFrameBytes : limits.maxFrameBytes;
  if (bytes.length > cap)
    throw protoError(PROTO_ERR.TOO_LARGE, `frame of ${bytes.length} bytes exceeds ${cap}`);
  prescan(bytes, limits.maxDepth);
  let v: unknown;
  try {
    v = unpackr.unpack(bytes);
  } catch (e) {
    // The pre-scan should leave msgpackr nothing to object to; if it still does, the frame
    // is refused all the same.
    throw protoError(PROTO_ERR.BAD_FRAME, `undecodable frame: ${(e as Error).message}`);
  }
  if (!Array.isArray(v)) throw protoError(PROTO_ERR.BAD_FRAME, "frame is not an array");
  const head = v[0];
  if (head === 0) {
    if (v.length !== 4) throw protoError(PROTO_ERR.BAD_FRAME, "syscall frame must have 4 items");
    return { kind: "control", items: v as WireValue[] };
  }
  if (v.length !== 3)
    throw protoError(PROTO_ERR.BAD_FRAME, `message frame has ${v.length} items, not 3`);
  const [objectId, opcode, args] = v;
  if (
    typeof objectId !== "number" ||
    !Number.isInteger(objectId) ||
    objectId < 1 ||
    objectId > 0xffffffff
  )
    throw protoError(PROTO_ERR.BAD_FRAME, "object id is not a uint32 above 0");
  if (typeof opcode !== "number" || !Number.isInteger(opcode) || opcode < 0 || opcode > 0xffff)
    throw protoError(PROTO_ERR.BAD_FRAME, "opcode is not a uint16");
  if (!Array.isArray(args)) throw protoError(PROTO_ERR.BAD_FRAME, "args is not an array");
  return { kind: "message", objectId, opcode, args: args as WireValue[] };
}

export { ProtocolError };
