/**
 * The Wayland binary wire format, as real compositors read it (wayland docs, "Wire Format"):
 *
 *   word 0: the sender's object id
 *   word 1: (message size in bytes, header included) << 16 | opcode
 *   then the arguments, each a whole number of 32-bit words in host byte order:
 *     int, fixed (signed 24.8), uint, object, new_id, enum   one word
 *     string   uint32 length including the NUL (0 = null string), bytes, NUL, pad to 4
 *     array    uint32 length in bytes, bytes, pad to 4
 *     fd       no bytes: the next file descriptor of the ancillary data (SCM_RIGHTS), in order
 *
 * An untyped new_id (wl_registry.bind) is three arguments on the wire — interface string,
 * version uint, id — and the schema already spells it that way (schema.ts), so every wire
 * item has its own ArgSpec. Opcodes are positions in the schema's arrays, as wayland-scanner
 * numbers them.
 *
 * This file is the codec only; protocol/codec.ts remains the msgpack framing that shmlab's
 * own compositor speaks. Decoding hostile bytes throws WireError (never anything else).
 */
import type { ArgType, MessageSpec } from "./schema.ts";

/** The schema's argument types plus `array`, which the core wl_shm subset never needs. */
export type WireArgType = ArgType | "array";

export interface WireArgSpec {
  readonly name: string;
  readonly type: WireArgType;
  readonly interface?: string;
  readonly nullable?: boolean;
  readonly enum?: string;
}

export interface WireMessageSpec {
  readonly name: string;
  readonly args: readonly WireArgSpec[];
  readonly since?: number;
  readonly destructor?: boolean;
}

export interface WireEnumSpec {
  readonly name: string;
  readonly entries: readonly { readonly name: string; readonly value: number }[];
  readonly bitfield?: boolean;
}

/** An interface of a protocol extension (xdg-shell, screencopy): may use `array`. */
export interface WireInterfaceSpec {
  readonly name: string;
  readonly version: number;
  readonly requests: readonly WireMessageSpec[];
  readonly events: readonly WireMessageSpec[];
  readonly enums: readonly WireEnumSpec[];
}

/**
 * libwayland's connection buffer is WL_BUFFER_DEFAULT_MAX_SIZE = 4096 bytes
 * (wayland-private.h, 1.21), so no message it sends or accepts is larger; the size field
 * itself could say 65535.
 */
export const WIRE_MAX_MESSAGE = 4096;
export const WIRE_HEADER = 8;

export const WIRE_ERR = {
  /** size < 8 or not a multiple of 4. */
  BAD_SIZE: "WIRE_ERR_BAD_SIZE",
  /** size > WIRE_MAX_MESSAGE. */
  TOO_LARGE: "WIRE_ERR_TOO_LARGE",
  /** The arguments run past the message's size. */
  SHORT_BODY: "WIRE_ERR_SHORT_BODY",
  /** Bytes left in the message after its last argument. */
  TRAILING: "WIRE_ERR_TRAILING",
  /** A string whose last byte is not NUL, or with a NUL inside. */
  BAD_STRING: "WIRE_ERR_BAD_STRING",
  /** A null string / object 0 / new_id 0 where the schema forbids it. */
  NULL_ARG: "WIRE_ERR_NULL_ARG",
  /** An fd argument with no fd left in the ancillary data. */
  MISSING_FD: "WIRE_ERR_MISSING_FD",
  /** The opcode names no message of the sender's interface. */
  UNKNOWN_OPCODE: "WIRE_ERR_UNKNOWN_OPCODE",
  /** The sender object is unknown to the reader. */
  UNKNOWN_OBJECT: "WIRE_ERR_UNKNOWN_OBJECT",
  /** An argument value that cannot be encoded (wrong JS type, out of 32-bit range). */
  BAD_VALUE: "WIRE_ERR_BAD_VALUE",
} as const;
export type WireErrorCode = (typeof WIRE_ERR)[keyof typeof WIRE_ERR];

export class WireError extends Error {
  constructor(
    readonly code: WireErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "WireError";
  }
}

/** Decoded argument values: numbers for word types, string|null, Uint8Array for arrays. */
export type WireValue = number | string | null | Uint8Array;

export interface WireMessage {
  objectId: number;
  opcode: number;
  /** The size field of the header (bytes, header included). */
  size: number;
  args: WireValue[];
  /** The fds this message took from the ancillary queue, in argument order. */
  fds: number[];
}

const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const pad4 = (n: number) => (n + 3) & ~3;
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: false });

function u32(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffffffff)
    throw new WireError(WIRE_ERR.BAD_VALUE, `${what}: ${String(v)} is not a uint32`);
  return v;
}

/**
 * Encodes one message. `args` are in schema order; an fd argument's value is the fd number
 * to put in the ancillary data (returned in `fds`, in order). Word-typed arguments accept
 * any 32-bit value whether signed or not (a hostile client may send -1 as a uint), but
 * nothing wider.
 */
export function encodeWire(
  objectId: number,
  opcode: number,
  spec: readonly WireArgSpec[],
  args: readonly unknown[],
): { bytes: Uint8Array; fds: number[] } {
  if (args.length !== spec.length)
    throw new WireError(WIRE_ERR.BAD_VALUE, `${args.length} arguments for ${spec.length} specs`);
  u32(objectId, "object id");
  if (!Number.isInteger(opcode) || opcode < 0 || opcode > 0xffff)
    throw new WireError(WIRE_ERR.BAD_VALUE, `opcode ${opcode} is not a uint16`);
  const parts: Uint8Array[] = [];
  const fds: number[] = [];
  let size = WIRE_HEADER;
  for (let i = 0; i < spec.length; i++) {
    const s = spec[i];
    const v = args[i];
    const what = `argument ${s.name}`;
    switch (s.type) {
      case "fd":
        fds.push(u32(v, what));
        continue;
      case "string": {
        if (v === null) {
          parts.push(word(0));
          size += 4;
          continue;
        }
        if (typeof v !== "string") throw new WireError(WIRE_ERR.BAD_VALUE, `${what}: not a string`);
        const body = enc.encode(v);
        const p = new Uint8Array(4 + pad4(body.length + 1));
        setWord(p, 0, body.length + 1);
        p.set(body, 4);
        parts.push(p);
        size += p.length;
        continue;
      }
      case "array": {
        if (!(v instanceof Uint8Array))
          throw new WireError(WIRE_ERR.BAD_VALUE, `${what}: not a Uint8Array`);
        const p = new Uint8Array(4 + pad4(v.length));
        setWord(p, 0, v.length);
        p.set(v, 4);
        parts.push(p);
        size += p.length;
        continue;
      }
      default: {
        if (typeof v !== "number" || !Number.isInteger(v) || v < -0x80000000 || v > 0xffffffff)
          throw new WireError(WIRE_ERR.BAD_VALUE, `${what}: ${String(v)} is not a 32-bit word`);
        parts.push(word(v >>> 0));
        size += 4;
      }
    }
  }
  if (size > 0xffff)
    throw new WireError(WIRE_ERR.TOO_LARGE, `message of ${size} bytes overflows the size field`);
  const out = new Uint8Array(size);
  setWord(out, 0, objectId);
  setWord(out, 4, ((size << 16) | opcode) >>> 0);
  let at = WIRE_HEADER;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return { bytes: out, fds };
}

/** A header alone, for hostile messages whose size field lies about the body. */
export function encodeHeader(objectId: number, opcode: number, size: number): Uint8Array {
  const out = new Uint8Array(WIRE_HEADER);
  setWord(out, 0, u32(objectId, "object id"));
  setWord(out, 4, (((size & 0xffff) << 16) | (opcode & 0xffff)) >>> 0);
  return out;
}

/**
 * Encodes arguments by their JS type when no schema says what they are (a hostile client's
 * raw message on an opcode the interface does not have): numbers are words, strings are
 * strings, Uint8Arrays are arrays, null is a null string.
 */
export function inferSpec(args: readonly unknown[]): WireArgSpec[] {
  return args.map((v, i) => ({
    name: `arg${i}`,
    type:
      typeof v === "string" || v === null ? "string" : v instanceof Uint8Array ? "array" : "int",
    nullable: true,
  }));
}

function word(v: number): Uint8Array {
  const p = new Uint8Array(4);
  setWord(p, 0, v);
  return p;
}

function setWord(b: Uint8Array, at: number, v: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(at, v >>> 0, LITTLE);
}

function getWord(b: Uint8Array, at: number): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at, LITTLE);
}

/** Reads the header at `at`; undefined when fewer than 8 bytes are there. */
export function peekHeader(
  b: Uint8Array,
  at = 0,
): { objectId: number; opcode: number; size: number } | undefined {
  if (b.length - at < WIRE_HEADER) return undefined;
  const w = getWord(b, at + 4);
  return { objectId: getWord(b, at), opcode: w & 0xffff, size: w >>> 16 };
}

/**
 * Decodes one complete message (exactly `size` bytes) against its argument specs, taking
 * fds from the front of `fdQueue` (the queue is only consumed when the message is valid,
 * so a refused message does not shift the fds of the next).
 */
export function decodeWire(
  bytes: Uint8Array,
  spec: readonly WireArgSpec[],
  fdQueue: number[],
): WireMessage {
  const h = peekHeader(bytes);
  if (!h) throw new WireError(WIRE_ERR.BAD_SIZE, `${bytes.length} bytes, shorter than a header`);
  checkSize(h.size);
  if (bytes.length < h.size)
    throw new WireError(WIRE_ERR.SHORT_BODY, `header says ${h.size} bytes, ${bytes.length} given`);
  const args: WireValue[] = [];
  let fdTaken = 0;
  let at = WIRE_HEADER;
  const need = (n: number, what: string) => {
    if (at + n > h.size)
      throw new WireError(
        WIRE_ERR.SHORT_BODY,
        `${what} at byte ${at} runs past the message end (${h.size})`,
      );
  };
  for (const s of spec) {
    const what = `argument ${s.name}`;
    switch (s.type) {
      case "fd":
        if (fdTaken >= fdQueue.length)
          throw new WireError(WIRE_ERR.MISSING_FD, `${what}: no fd in the ancillary data`);
        args.push(fdQueue[fdTaken++]);
        continue;
      case "string": {
        need(4, what);
        const len = getWord(bytes, at);
        at += 4;
        if (len === 0) {
          if (!s.nullable) throw new WireError(WIRE_ERR.NULL_ARG, `${what}: null string`);
          args.push(null);
          continue;
        }
        need(pad4(len), what);
        const body = bytes.subarray(at, at + len);
        if (body[len - 1] !== 0)
          throw new WireError(WIRE_ERR.BAD_STRING, `${what}: not NUL-terminated`);
        if (body.subarray(0, len - 1).includes(0))
          throw new WireError(WIRE_ERR.BAD_STRING, `${what}: NUL inside the string`);
        args.push(dec.decode(body.subarray(0, len - 1)));
        at += pad4(len);
        continue;
      }
      case "array": {
        need(4, what);
        const len = getWord(bytes, at);
        at += 4;
        need(pad4(len), what);
        args.push(bytes.slice(at, at + len));
        at += pad4(len);
        continue;
      }
      case "int":
      case "fixed": {
        need(4, what);
        args.push(getWord(bytes, at) | 0);
        at += 4;
        continue;
      }
      default: {
        need(4, what);
        const v = getWord(bytes, at);
        if (v === 0 && (s.type === "new_id" || (s.type === "object" && !s.nullable)))
          throw new WireError(WIRE_ERR.NULL_ARG, `${what}: ${s.type} 0`);
        args.push(v);
        at += 4;
      }
    }
  }
  if (at !== h.size)
    throw new WireError(WIRE_ERR.TRAILING, `${h.size - at} bytes after the last argument`);
  const fds = fdQueue.splice(0, fdTaken);
  return { objectId: h.objectId, opcode: h.opcode, size: h.size, args, fds };
}

function checkSize(size: number): void {
  if (size < WIRE_HEADER || size % 4 !== 0)
    throw new WireError(WIRE_ERR.BAD_SIZE, `message size ${size} (must be >= 8, a multiple of 4)`);
  if (size > WIRE_MAX_MESSAGE)
    throw new WireError(WIRE_ERR.TOO_LARGE, `message size ${size} over ${WIRE_MAX_MESSAGE}`);
}

/**
 * Where the reader finds the sender's message spec: a spec; `null` to skip the message
 * whole (its size is in the header: an event of an interface the reader does not speak,
 * which a real client library would also fail to dispatch); or an error that ends the stream.
 */
export type SpecLookup = (
  objectId: number,
  opcode: number,
) => WireMessageSpec | MessageSpec | null | { error: WireErrorCode; message: string };

/**
 * A byte stream cut into messages: bytes and fds arrive in chunks (recvmsg can split a
 * message, and the fds of one message may come with an earlier chunk), messages come out
 * whole. After a WireError the stream is unusable (the framing is lost), as it is for
 * libwayland, which ends the connection.
 */
export class WireReader {
  private buf = new Uint8Array(0);
  readonly fds: number[] = [];
  broken: WireError | null = null;

  push(bytes: Uint8Array, fds: readonly number[] = []): void {
    if (bytes.length) {
      const n = new Uint8Array(this.buf.length + bytes.length);
      n.set(this.buf, 0);
      n.set(bytes, this.buf.length);
      this.buf = n;
    }
    this.fds.push(...fds);
  }

  /** Bytes waiting for the rest of their message. */
  get pending(): number {
    return this.buf.length;
  }

  /**
   * The next whole message, or undefined until more bytes come; `spec` is null for a
   * message the lookup chose to skip (args empty, no fds taken). Throws WireError.
   */
  next(lookup: SpecLookup): (WireMessage & { spec: WireMessageSpec | null }) | undefined {
    if (this.broken) throw this.broken;
    const h = peekHeader(this.buf);
    if (!h) return undefined;
    try {
      checkSize(h.size);
      if (this.buf.length < h.size) return undefined;
      const spec = lookup(h.objectId, h.opcode);
      if (spec === null) {
        this.buf = this.buf.slice(h.size);
        return { ...h, args: [], fds: [], spec: null };
      }
      if ("error" in spec) throw new WireError(spec.error, spec.message);
      const msg = decodeWire(this.buf.subarray(0, h.size), spec.args, this.fds);
      this.buf = this.buf.slice(h.size);
      return { ...msg, spec };
    } catch (e) {
      if (e instanceof WireError) this.broken = e;
      throw e;
    }
  }
}
