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
