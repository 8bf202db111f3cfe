import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import {
  CODEC_OPTIONS,
  DEFAULT_LIMITS,
  decodeFrame,
  encodeControl,
  encodeMessage,
  encodeRaw,
  type MessageFrame,
} from "../protocol/codec.ts";
import { PROTO_ERR, ProtocolError } from "../protocol/errors.ts";
import { ObjectMap } from "../protocol/object-map.ts";
import { type ArgSpec, BASE_SCHEMA, type MessageSpec } from "../protocol/schema.ts";
import { decodeEnvelope, encodeEnvelope } from "../protocol/transport.ts";
import { type ObjectInfo, validateMessage } from "../protocol/validate.ts";

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof ProtocolError) return e.code;
    throw e;
  }
  return "no error";
}

/** A map holding one object of every interface, ids 2.. in schema order. */
function worldMap(side: "server" | "client") {
  const m = new ObjectMap<ObjectInfo>(side);
  m.insertAt(1, { interface: "wl_display", version: 1 });
  const ids: Record<string, number> = { wl_display: 1 };
  let next = 2;
  for (const i of Object.values(BASE_SCHEMA.interfaces)) {
    if (i.name === "wl_display") continue;
    ids[i.name] = next;
    m.insertAt(next++, { interface: i.name, version: i.version });
  }
  return { m, ids, nextId: next };
}

function sampleArgs(spec: MessageSpec, ids: Record<string, number>, nextId: number): unknown[] {
  let newId = nextId;
  return spec.args.map((a: ArgSpec, i) => {
    switch (a.type) {
      case "int":
        return -7 - i;
      case "fixed":
        return 384;
      case "uint":
        return 0xfffffff0 + i;
      case "enum":
        return 0x34324258;
      case "string":
        return a.name === "interface" ? "wl_shm" : `héllo ${i}`;
      case "object":
        return a.interface ? ids[a.interface] : ids.wl_shm;
      case "new_id":
        return newId++;
      case "fd":
        return 0;
      default:
        throw new Error(`no sample for ${a.type}`);
    }
  });
}

describe("codec round-trips every message of the schema", () => {
  for (const iface of Object.values(BASE_SCHEMA.interfaces)) {
    for (const dir of ["request", "event"] as const) {
      const list = dir === "request" ? iface.requests : iface.events;
      list.forEach((spec, opcode) => {
        it(`${iface.name}.${spec.name} (${dir})`, () => {
          const { m, ids, nextId } = worldMap(dir === "request" ? "server" : "client");
          const args = sampleArgs(spec, ids, nextId);
          const hasFd = spec.args.some((a) => a.type === "fd");
          const env = encodeEnvelope(
            encodeMessage(ids[iface.name], opcode, args),
            hasFd ? [42] : [],
          );
          const { bytes, fds } = decodeEnvelope(env);
          const frame = decodeFrame(bytes) as MessageFrame;
          expect(frame).toEqual({ kind: "message", objectId: ids[iface.name], opcode, args });
          const v = validateMessage(BASE_SCHEMA, m, frame, fds, DEFAULT_LIMITS, dir);
          expect(v.spec.name).toBe(spec.name);
          expect(v.args).toEqual(args.map((x, i) => (spec.args[i].type === "fd" ? 42 : x)));
          expect(v.newObjects.map((n) => n.id)).toEqual(
            spec.args.flatMap((a, i) => (a.type === "new_id" ? [args[i]] : [])),
          );
        });
      });
    }
  }

  it("syscall frames keep their bytes", () => {
    const data = new Uint8Array([0, 1, 2, 255]);
    const f = decodeFrame(encodeControl([0, 9, "pwrite", [3, data, 4096]]));
    expect(f.kind).toBe("control");
    expect(f.kind === "control" && f.items[3]).toEqual([3, Buffer.from(data), 4096]);
  });

  it("uses the same msgpackr options as any peer must (plain arrays, no records)", () => {
    const plain = new Packr(CODEC_OPTIONS).pack([5, 1, [7, 0, 0]]);
    expect(Buffer.from(encodeMessage(5, 1, [7, 0, 0]))).toEqual(Buffer.from(plain));
    expect(Buffer.from(plain).toString("hex")).toBe("930501930700" + "00");
  });
});

describe("codec refuses malformed frames with stable codes", () => {
  const good = encodeMessage(3, 1, [4, 0, 0]);

  it("checks the size cap before decoding anything", () => {
    // Garbage that would be TRUNCATED if it were read at all.
    const big = new Uint8Array(DEFAULT_LIMITS.maxFrameBytes + 1).fill(0xdd);
    expect(codeOf(() => decodeFrame(big))).toBe(PROTO_ERR.TOO_LARGE);
    const bigString = encodeMessage(3, 0, ["x".repeat(5000)]);
    expect(codeOf(() => decodeFrame(bigString))).toBe(PROTO_ERR.TOO_LARGE);
  });

  it("lets syscall frames be larger, up to their own cap", () => {
    const io = encodeControl([0, 1, "pwrite", [3, new Uint8Array(64 * 1024), 0]]);
    expect(decodeFrame(io).kind).toBe("control");
    const tooBig = encodeControl([
      0,
      1,
      "pwrite",
      [3, new Uint8Array(DEFAULT_LIMITS.maxSyscallFrameBytes), 0],
    ]);
    expect(codeOf(() => decodeFrame(tooBig))).toBe(PROTO_ERR.TOO_LARGE);
  });

  it("refuses every truncation of a valid frame", () => {
    for (let n = 0; n < good.length; n++) {
      expect(codeOf(() => decodeFrame(good.subarray(0, n)))).toBe(PROTO_ERR.TRUNCATED);
    }
  });

  it("refuses trailing bytes", () => {
    const t = new Uint8Array([...good, 0x00]);
    expect(codeOf(() => decodeFrame(t))).toBe(PROTO_ERR.TRAILING);
  });

  it("refuses nesting deeper than a frame needs, without recursion", () => {
    expect(codeOf(() => decodeFrame(encodeRaw([3, 0, [[1]]])))).toBe(PROTO_ERR.TOO_DEEP);
    const deep = new Uint8Array(4000).fill(0x91);
    expect(codeOf(() => decodeFrame(deep))).toBe(PROTO_ERR.TOO_DEEP);
  });

  it("refuses the reserved byte 0xc1 and every extension type", () => {
    expect(codeOf(() => decodeFrame(new Uint8Array([0x93, 0x03, 0x00, 0x91, 0xc1])))).toBe(
      PROTO_ERR.RESERVED,
    );
    for (const ext of [
      [0xd4, 0x01, 0x00],
      [0xd5, 0xff, 0, 0],
      [0xd6, 0x72, 0, 0, 0, 0],
      [0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 0],
      [0xd8, 0x65, ...new Array(16).fill(0)],
      [0xc7, 0x01, 0x70, 0x00],
      [0xc8, 0x00, 0x01, 0x73, 0x00],
      [0xc9, 0, 0, 0, 1, 0x74, 0x00],
    ]) {
      const b = new Uint8Array([0x93, 0x03, 0x00, 0x91, ...ext]);
      expect(codeOf(() => decodeFrame(b))).toBe(PROTO_ERR.RESERVED);
    }
  });

  it("refuses maps and 64-bit integers", () => {
    expect(codeOf(() => decodeFrame(encodeRaw([3, 0, [{ a: 1 }]])))).toBe(
      PROTO_ERR.UNSUPPORTED_TYPE,
    );
    expect(
      codeOf(() =>
        decodeFrame(new Uint8Array([0x93, 0x03, 0x00, 0x91, 0xcf, 0, 0, 0, 0, 0, 0, 0, 1])),
      ),
    ).toBe(PROTO_ERR.UNSUPPORTED_TYPE);
  });

  it("refuses frames of the wrong shape", () => {
    expect(codeOf(() => decodeFrame(encodeRaw(5)))).toBe(PROTO_ERR.BAD_FRAME);
    expect(codeOf(() => decodeFrame(encodeRaw([3, 0])))).toBe(PROTO_ERR.BAD_FRAME);
    expect(codeOf(() => decodeFrame(encodeRaw([3, 0, [], 1])))).toBe(PROTO_ERR.BAD_FRAME);
    expect(codeOf(() => decodeFrame(encodeRaw([3, -1, []])))).toBe(PROTO_ERR.BAD_FRAME);
    expect(codeOf(() => decodeFrame(encodeRaw([3, 0x10000, []])))).toBe(PROTO_ERR.BAD_FRAME);
    expect(codeOf(() => decodeFrame(encodeRaw(["3", 0, []])))).toBe(PROTO_ERR.BAD_FRAME);
    expect(codeOf(() => decodeFrame(encodeRaw([3, 0, 7])))).toBe(PROTO_ERR.BAD_FRAME);
    expect(codeOf(() => decodeFrame(encodeRaw([0, 1, "close"])))).toBe(PROTO_ERR.BAD_FRAME);
  });

  it("refuses a malformed envelope", () => {
    expect(codeOf(() => decodeEnvelope(new Uint8Array([])))).toBe(PROTO_ERR.BAD_ENVELOPE);
    expect(codeOf(() => decodeEnvelope(new Uint8Array([29, ...new Array(200).fill(0)])))).toBe(
      PROTO_ERR.BAD_ENVELOPE,
    );
    expect(codeOf(() => decodeEnvelope(new Uint8Array([2, 0, 0, 0, 0, 1])))).toBe(
      PROTO_ERR.BAD_ENVELOPE,
    );
    expect(decodeEnvelope(encodeEnvelope(good, [7, 0xffffffff])).fds).toEqual([7, 0xffffffff]);
  });
});

/**
 * The pre-scan and the frame shape at every boundary, with frames written byte by byte from
 * the msgpack spec (github.com/msgpack/msgpack/blob/master/spec.md), not by the encoder: the
 * error code, and the byte position or count the message names, follow from the bytes.
 */
describe("decodeFrame at the msgpack spec's boundaries", () => {
  const bytes = (...parts: (number | number[])[]) => new Uint8Array(parts.flat());
  function refusal(b: Uint8Array): { code: string; message: string } {
    try {
      decodeFrame(b);
    } catch (e) {
      if (e instanceof ProtocolError) return { code: e.code, message: e.message };
      throw e;
    }
    return { code: "no error", message: "" };
  }
  /** [1, 0, [arg]]: fixarray 3, fixint 1, fixint 0, fixarray 1, then the argument's bytes. */
  const msg1 = (...arg: (number | number[])[]) => bytes(0x93, 0x01, 0x00, 0x91, arg.flat());
  const argsOf = (b: Uint8Array) => (decodeFrame(b) as MessageFrame).args;

  it("the message cap is 4096 bytes (libwayland's connection buffer): 4096 decodes, 4097 does not", () => {
    // str16 (0xda, 2-byte length): 4 + 3 + L bytes.
    const frame = (len: number) =>
      bytes(0x93, 0x01, 0x00, 0x91, 0xda, len >> 8, len & 0xff, new Array(len).fill(0x61));
    expect(frame(4089).length).toBe(4096);
    expect((argsOf(frame(4089))[0] as string).length).toBe(4089);
    expect(frame(4090).length).toBe(4097);
    expect(refusal(frame(4090))).toEqual({
      code: PROTO_ERR.TOO_LARGE,
      message: expect.stringContaining("frame of 4097 bytes exceeds 4096"),
    });
  });

  it("the syscall cap (1 MiB + 256) applies only to frames that open with [0, ...] as a 4-array", () => {
    // [0, 1, "pwrite", [bin32]]: 0x94 0x00 0x01 0xa6 'pwrite' 0x91 0xc6 len32 payload = 16 + L.
    const sys = (len: number) =>
      bytes(
        0x94,
        0x00,
        0x01,
        0xa6,
        [...Buffer.from("pwrite")],
        0x91,
        0xc6,
        [len >>> 24, (len >> 16) & 0xff, (len >> 8) & 0xff, len & 0xff],
        new Array(len).fill(7),
      );
    const cap = 1024 * 1024 + 256;
    expect(DEFAULT_LIMITS.maxSyscallFrameBytes).toBe(cap);
    expect(sys(cap - 16).length).toBe(cap);
    expect(decodeFrame(sys(cap - 16)).kind).toBe("control");
    expect(refusal(sys(cap - 15))).toEqual({
      code: PROTO_ERR.TOO_LARGE,
      message: expect.stringContaining(`frame of ${cap + 1} bytes exceeds ${cap}`),
    });
    // The same 5000 bytes under a message header (first item 1, or a 3-array) get 4096.
    const big = sys(5000 - 16);
    big[1] = 0x01;
    expect(refusal(big).code).toBe(PROTO_ERR.TOO_LARGE);
    const three = sys(5000 - 16);
    three[0] = 0x93;
    expect(refusal(three).code).toBe(PROTO_ERR.TOO_LARGE);
  });

  it("0xc1 is reserved; extension types and 64-bit integers are refused, each named at its byte", () => {
    expect(refusal(bytes(0x93, 0x01, 0xc1, 0x90))).toEqual({
      code: PROTO_ERR.RESERVED,
      message: expect.stringContaining("reserved msgpack byte 0xc1 at 2"),
    });
    for (const t of [0xc7, 0xc8, 0xc9, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8]) {
      expect(refusal(msg1(t, 0, 0, 0, 0))).toEqual({
        code: PROTO_ERR.RESERVED,
        message: expect.stringContaining("msgpack extension type at byte 4"),
      });
    }
    for (const t of [0xcf, 0xd3]) {
      expect(refusal(msg1(t, 0, 0, 0, 0, 0, 0, 0, 1))).toEqual({
        code: PROTO_ERR.UNSUPPORTED_TYPE,
        message: expect.stringContaining("64-bit integer at byte 4"),
      });
    }
    for (const t of [0x80, 0x8f, 0xde, 0xdf]) {
      expect(refusal(msg1(t))).toEqual({
        code: PROTO_ERR.UNSUPPORTED_TYPE,
        message: expect.stringContaining("msgpack map at byte 4"),
      });
    }
  });

  it("truncations are TRUNCATED, each with its own account of where", () => {
    expect(refusal(bytes())).toEqual({
      code: PROTO_ERR.TRUNCATED,
      message: expect.stringContaining("empty frame"),
    });
    // An outer 2-array whose second item never comes: the inner [1] completes at byte 3.
    expect(refusal(bytes(0x92, 0x91, 0x01))).toEqual({
      code: PROTO_ERR.TRUNCATED,
      message: expect.stringContaining("frame ends at byte 3 inside a value"),
    });
    // fixstr of 3 bytes with 1 present: the value would end at byte 8 of 6.
    expect(refusal(msg1(0xa3, 0x61))).toEqual({
      code: PROTO_ERR.TRUNCATED,
      message: expect.stringContaining("value before 8 runs past the end"),
    });
    // fixarray of 15 with nothing after it: refused before anything is allocated for it.
    expect(refusal(bytes(0x93, 0x01, 0x00, 0x9f))).toEqual({
      code: PROTO_ERR.TRUNCATED,
      message: expect.stringContaining("array of 15 items in 0 bytes"),
    });
    expect(refusal(bytes(0x93, 0x01, 0x00, 0x95, 0x01, 0x02))).toEqual({
      code: PROTO_ERR.TRUNCATED,
      message: expect.stringContaining("array of 5 items in 2 bytes"),
    });
    expect(refusal(bytes(0x93, 0x01, 0x00, 0xdc, 0xff, 0xff, 0x01))).toEqual({
      code: PROTO_ERR.TRUNCATED,
      message: expect.stringContaining("array of 65535 items in 1 bytes"),
    });
    // str8 whose length byte is missing.
    expect(refusal(msg1(0xd9))).toEqual({
      code: PROTO_ERR.TRUNCATED,
      message: expect.stringContaining("header at 5 runs past the end"),
    });
  });

  it("a header that ends exactly at the frame's end is complete (str8 of length 0, uint8)", () => {
    expect(argsOf(msg1(0xd9, 0x00))).toEqual([""]);
    expect(argsOf(msg1(0xcc, 0xff))).toEqual([255]);
  });

  it("bytes after the one value are TRAILING, counted", () => {
    expect(refusal(bytes(0x93, 0x01, 0x00, 0x90, 0x00, 0x00))).toEqual({
      code: PROTO_ERR.TRAILING,
      message: expect.stringContaining("2 bytes after the frame"),
    });
  });

  it("nesting: args may hold no array, not even an empty one (a valid frame needs depth 2)", () => {
    expect(refusal(msg1(0x90))).toEqual({
      code: PROTO_ERR.TOO_DEEP,
      message: expect.stringContaining("arrays nested deeper than 2"),
    });
  });

  it("fixint, fixstr and fixarray at both ends of their ranges", () => {
    // positive fixint 0x7f = 127; negative fixint 0xe0 = -32.
    expect(decodeFrame(bytes(0x93, 0x7f, 0x00, 0x90))).toMatchObject({ objectId: 127 });
    expect(argsOf(msg1(0xe0))).toEqual([-32]);
    expect(argsOf(msg1(0xa0))).toEqual([""]);
    expect(argsOf(msg1(0xbf, new Array(31).fill(0x62)))).toEqual(["b".repeat(31)]);
    expect(argsOf(bytes(0x93, 0x01, 0x00, 0x9f, new Array(15).fill(0x05)))).toEqual(
      new Array(15).fill(5),
    );
  });

  it("every other header the format uses decodes to its value", () => {
    expect(argsOf(msg1(0xc3))).toEqual([true]);
    expect(argsOf(msg1(0xc2))).toEqual([false]);
    expect(argsOf(msg1(0xc0))).toEqual([null]);
    expect(argsOf(msg1(0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0))).toEqual([1.5]);
    expect(argsOf(msg1(0xca, 0x3f, 0xc0, 0, 0))).toEqual([1.5]);
    expect(argsOf(msg1(0xc4, 0x02, 9, 8))).toEqual([new Uint8Array([9, 8])]);
    expect(argsOf(msg1(0xc5, 0x00, 0x03, 1, 2, 3))).toEqual([new Uint8Array([1, 2, 3])]);
    expect(argsOf(msg1(0xcd, 0x01, 0x02))).toEqual([0x0102]);
    expect(argsOf(msg1(0xd1, 0xff, 0xfe))).toEqual([-2]);
    expect(argsOf(msg1(0xce, 0x01, 0x02, 0x03, 0x04))).toEqual([0x01020304]);
    expect(argsOf(msg1(0xd2, 0xff, 0xff, 0xff, 0xfe))).toEqual([-2]);
    expect(argsOf(msg1(0xd0, 0xfe))).toEqual([-2]);
    // str16 and str32 lengths are big-endian: 0x0105 = 261 bytes.
    const s261 = new Array(261).fill(0x63);
    expect(argsOf(msg1(0xda, 0x01, 0x05, s261))).toEqual(["c".repeat(261)]);
    expect(argsOf(msg1(0xdb, 0x00, 0x00, 0x01, 0x05, s261))).toEqual(["c".repeat(261)]);
    expect(argsOf(msg1(0xc6, 0x00, 0x00, 0x01, 0x05, s261))).toEqual([new Uint8Array(s261)]);
    expect(argsOf(bytes(0x93, 0x01, 0x00, 0xdc, 0x00, 0x02, 0x07, 0x08))).toEqual([7, 8]);
    expect(argsOf(bytes(0x93, 0x01, 0x00, 0xdd, 0x00, 0x00, 0x00, 0x02, 0x07, 0x08))).toEqual([
      7, 8,
    ]);
  });

  it("the frame's shape: an array; 4 items for a syscall, 3 for a message", () => {
    expect(refusal(bytes(0x01))).toEqual({
      code: PROTO_ERR.BAD_FRAME,
      message: expect.stringContaining("frame is not an array"),
    });
    expect(refusal(bytes(0x93, 0x00, 0x01, 0x90))).toEqual({
      code: PROTO_ERR.BAD_FRAME,
      message: expect.stringContaining("syscall frame must have 4 items"),
    });
    expect(refusal(bytes(0x92, 0x01, 0x00))).toEqual({
      code: PROTO_ERR.BAD_FRAME,
      message: expect.stringContaining("message frame has 2 items, not 3"),
    });
    expect(refusal(bytes(0x93, 0x01, 0x00, 0x01))).toEqual({
      code: PROTO_ERR.BAD_FRAME,
      message: expect.stringContaining("args is not an array"),
    });
  });

  it("object id: a uint32 above 0 (wl_object ids); 0xffffffff is one", () => {
    const idBad = {
      code: PROTO_ERR.BAD_FRAME,
      message: expect.stringContaining("object id is not a uint32 above 0"),
    };
    expect(decodeFrame(bytes(0x93, 0xce, 0xff, 0xff, 0xff, 0xff, 0x00, 0x90))).toMatchObject({
      objectId: 0xffffffff,
    });
    expect(refusal(bytes(0x93, 0xff, 0x00, 0x90))).toEqual(idBad); // -1
    expect(refusal(bytes(0x93, 0xa1, 0x78, 0x00, 0x90))).toEqual(idBad); // "x"
    expect(refusal(bytes(0x93, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x00, 0x90))).toEqual(idBad); // 1.5
    expect(refusal(bytes(0x93, 0xc3, 0x00, 0x90))).toEqual(idBad); // true
    // 2^32 as a float64: an integer, but past uint32.
    expect(refusal(bytes(0x93, 0xcb, 0x41, 0xf0, 0, 0, 0, 0, 0, 0, 0x00, 0x90))).toEqual(idBad);
  });

  it("opcode: a uint16 (the wire header's 16 bits); 0xffff is one, 0x10000 is not", () => {
    const opBad = {
      code: PROTO_ERR.BAD_FRAME,
      message: expect.stringContaining("opcode is not a uint16"),
    };
    expect(decodeFrame(bytes(0x93, 0x01, 0xcd, 0xff, 0xff, 0x90))).toMatchObject({
      opcode: 0xffff,
    });
    expect(refusal(bytes(0x93, 0x01, 0xce, 0x00, 0x01, 0x00, 0x00, 0x90))).toEqual(opBad);
    expect(refusal(bytes(0x93, 0x01, 0xff, 0x90))).toEqual(opBad); // -1
    expect(refusal(bytes(0x93, 0x01, 0xa1, 0x78, 0x90))).toEqual(opBad); // "x"
    expect(refusal(bytes(0x93, 0x01, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x90))).toEqual(opBad); // 1.5
  });
});

describe("the encoder gives back the buffer a big frame grew", () => {
  it("a small frame after a 256 KiB one does not live in (and pin) a 1 MiB buffer", () => {
    const big = encodeControl([0, 7, 1, new Uint8Array(256 * 1024)]);
    expect(big.length).toBeGreaterThan(256 * 1024);
    // msgpackr grew its buffer for the big frame; the frame itself stays whole.
    expect(big.buffer.byteLength).toBeGreaterThanOrEqual(256 * 1024);
    const small = encodeMessage(1, 0, [2]);
    expect(small.buffer.byteLength).toBeLessThanOrEqual(64 * 1024);
    expect(decodeFrame(small)).toMatchObject({ kind: "message", objectId: 1, opcode: 0 });
    expect(decodeFrame(big)).toMatchObject({ kind: "control" });
  });
});
