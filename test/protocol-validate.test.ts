import { describe, expect, it } from "vitest";
import { DEFAULT_LIMITS, type MessageFrame } from "../protocol/codec.ts";
import { PROTO_ERR, ProtocolError } from "../protocol/errors.ts";
import { ObjectMap } from "../protocol/object-map.ts";
import {
  type ArgSpec,
  BASE_SCHEMA,
  DISPLAY_ERROR,
  type MessageSpec,
  type Schema,
  SHM_ERROR,
} from "../protocol/schema.ts";
import { checkOutgoing, type ObjectInfo, validateMessage } from "../protocol/validate.ts";

// ids: 1 display, 2 registry, 3 compositor, 4 shm, 5 surface(v4), 6 pool, 7 buffer, 8 surface(v1)
function world() {
  const m = new ObjectMap<ObjectInfo>("server");
  m.insertAt(1, { interface: "wl_display", version: 1 });
  m.insertPeer(2, { interface: "wl_registry", version: 1 });
  m.insertPeer(3, { interface: "wl_compositor", version: 4 });
  m.insertPeer(4, { interface: "wl_shm", version: 2 });
  m.insertPeer(5, { interface: "wl_surface", version: 4 });
  m.insertPeer(6, { interface: "wl_shm_pool", version: 2 });
  m.insertPeer(7, { interface: "wl_buffer", version: 1 });
  m.insertPeer(8, { interface: "wl_surface", version: 1 });
  return m;
}

function check(
  objectId: number,
  opcode: number,
  args: unknown[],
  fds: number[] = [],
  schema: Schema = BASE_SCHEMA,
) {
  const frame: MessageFrame = {
    kind: "message",
    objectId,
    opcode,
    args: args as MessageFrame["args"],
  };
  return validateMessage(schema, world(), frame, fds, DEFAULT_LIMITS);
}

function failure(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ProtocolError) return e;
    throw e;
  }
  throw new Error("expected a ProtocolError");
}

const ATTACH = 1;
const DAMAGE = 2;
const CREATE_BUFFER = 0;

describe("validation follows libwayland's order and codes", () => {
  it("accepts a well-formed attach and reports no new objects", () => {
    const v = check(5, ATTACH, [7, 0, 0]);
    expect(v.args).toEqual([7, 0, 0]);
    expect(v.newObjects).toEqual([]);
  });

  it("an unknown sender is invalid_object", () => {
    const e = failure(() => check(99, 0, []));
    expect(e.code).toBe(PROTO_ERR.UNKNOWN_OBJECT);
    expect(e.wlCode).toBe(DISPLAY_ERROR.invalid_object);
    expect(e.objectId).toBe(1);
  });

  it("an opcode past the interface is invalid_method", () => {
    const e = failure(() => check(7, 1, []));
    expect(e.code).toBe(PROTO_ERR.UNKNOWN_OPCODE);
    expect(e.wlCode).toBe(DISPLAY_ERROR.invalid_method);
  });

  it("a request newer than the object's version is invalid_method", () => {
    const e = failure(() => check(8, 9, [0, 0, 1, 1])); // damage_buffer since 4 on a v1 surface
    expect(e.code).toBe(PROTO_ERR.OPCODE_VERSION);
    expect(e.wlCode).toBe(DISPLAY_ERROR.invalid_method);
    expect(check(5, 9, [0, 0, 1, 1]).spec.name).toBe("damage_buffer");
  });

  it("the argument count must be exact", () => {
    expect(failure(() => check(5, DAMAGE, [0, 0, 1])).code).toBe(PROTO_ERR.ARG_COUNT);
    expect(failure(() => check(5, DAMAGE, [0, 0, 1, 1, 1])).code).toBe(PROTO_ERR.ARG_COUNT);
  });

  it("int arguments must be int32", () => {
    for (const bad of [0x80000000, -0x80000001, 1.5, "1", null, true, new Uint8Array(1), [1]])
      expect(failure(() => check(5, DAMAGE, [bad, 0, 1, 1])).code).toBe(PROTO_ERR.BAD_ARG);
    expect(check(5, DAMAGE, [-0x80000000, 0x7fffffff, 1, 1]).args[1]).toBe(0x7fffffff);
  });

  it("uint arguments must be uint32", () => {
    for (const bad of [-1, 0x100000000, 0.5, "x"])
      expect(failure(() => check(2, 0, [bad, "wl_shm", 1, 9])).code).toBe(PROTO_ERR.BAD_ARG);
  });

  it("strings are capped, NUL-free and non-null unless allowed", () => {
    expect(failure(() => check(2, 0, [1, "wl\0shm", 1, 9])).code).toBe(PROTO_ERR.BAD_STRING);
    expect(
      failure(() => check(2, 0, [1, "é".repeat(DEFAULT_LIMITS.maxStringBytes / 2 + 1), 1, 9])).code,
    ).toBe(PROTO_ERR.BAD_STRING);
    expect(failure(() => check(2, 0, [1, null, 1, 9])).code).toBe(PROTO_ERR.NULL_ARG);
    expect(failure(() => check(2, 0, [1, 5, 1, 9])).code).toBe(PROTO_ERR.BAD_ARG);
  });

  it("object arguments must name a live object of the right interface", () => {
    const unknown = failure(() => check(5, ATTACH, [42, 0, 0]));
    expect(unknown.code).toBe(PROTO_ERR.BAD_OBJECT_ARG);
    expect(unknown.wlCode).toBe(DISPLAY_ERROR.invalid_method);
    expect(failure(() => check(5, ATTACH, [6, 0, 0])).code).toBe(PROTO_ERR.WRONG_INTERFACE);
    expect(failure(() => check(5, ATTACH, [-1, 0, 0])).code).toBe(PROTO_ERR.BAD_ARG);
    expect(check(5, ATTACH, [0, 0, 0]).args[0]).toBe(0); // allow-null
  });

  it("a new_id must be the next id, unused, in the client range and non-zero", () => {
    expect(check(3, 0, [9]).newObjects).toEqual([
      { argIndex: 0, id: 9, interface: "wl_surface", version: 4 },
    ]);
    expect(failure(() => check(3, 0, [10])).code).toBe(PROTO_ERR.BAD_NEW_ID);
    expect(failure(() => check(3, 0, [5])).code).toBe(PROTO_ERR.BAD_NEW_ID);
    expect(failure(() => check(3, 0, [0xff000000])).code).toBe(PROTO_ERR.BAD_NEW_ID);
    expect(failure(() => check(3, 0, [0])).code).toBe(PROTO_ERR.NULL_ARG);
  });

  it("an untyped new_id takes its interface and version from the arguments before it", () => {
    expect(check(2, 0, [1, "wl_shm", 2, 9]).newObjects[0]).toMatchObject({
      interface: "wl_shm",
      version: 2,
    });
  });

  it("fd arguments name fd slots, each once, and every attached fd must be named", () => {
    expect(check(4, 0, [9, 0, 4096], [77]).args[1]).toBe(77);
    expect(failure(() => check(4, 0, [9, 0, 4096], [])).code).toBe(PROTO_ERR.BAD_FD);
    expect(failure(() => check(4, 0, [9, 1, 4096], [77])).code).toBe(PROTO_ERR.BAD_FD);
    expect(failure(() => check(4, 0, [9, 0, 4096], [77, 78])).code).toBe(PROTO_ERR.BAD_FD);
    expect(failure(() => check(5, DAMAGE, [0, 0, 1, 1], [77])).code).toBe(PROTO_ERR.BAD_FD);
  });

  it("an enum value outside wl_shm.format is wl_shm.invalid_format against the sender", () => {
    const e = failure(() => check(6, CREATE_BUFFER, [9, 0, 4, 4, 16, 2]));
    expect(e.code).toBe(PROTO_ERR.BAD_ENUM);
    expect(e.objectId).toBe(6);
    expect(e.wlCode).toBe(SHM_ERROR.invalid_format);
    expect(check(6, CREATE_BUFFER, [9, 0, 4, 4, 16, 0x34324258]).args[5]).toBe(0x34324258);
  });

  it("an enum without a declared error is invalid_method; bitfields accept only their bits", () => {
    const schema: Schema = {
      interfaces: {
        ...BASE_SCHEMA.interfaces,
        wl_buffer: {
          ...BASE_SCHEMA.interfaces.wl_buffer,
          requests: [
            ...BASE_SCHEMA.interfaces.wl_buffer.requests,
            { name: "mode", args: [{ name: "m", type: "enum", enum: "wl_buffer.mode" }] },
            { name: "flags", args: [{ name: "f", type: "enum", enum: "wl_buffer.flags" }] },
            { name: "scale", args: [{ name: "s", type: "fixed" }] },
          ],
          enums: [
            {
              name: "mode",
              entries: [
                { name: "a", value: 0 },
                { name: "b", value: 5 },
              ],
            },
            {
              name: "flags",
              bitfield: true,
              entries: [
                { name: "x", value: 1 },
                { name: "y", value: 4 },
              ],
            },
          ],
        },
      },
    };
    expect(check(7, 1, [5], [], schema).args).toEqual([5]);
    const e = failure(() => check(7, 1, [1], [], schema));
    expect([e.code, e.wlCode]).toEqual([PROTO_ERR.BAD_ENUM, DISPLAY_ERROR.invalid_method]);
    expect(check(7, 2, [5], [], schema).args).toEqual([5]);
    expect(failure(() => check(7, 2, [2], [], schema)).code).toBe(PROTO_ERR.BAD_ENUM);
    expect(check(7, 3, [-384], [], schema).args).toEqual([-384]);
    expect(failure(() => check(7, 3, [1.5], [], schema)).code).toBe(PROTO_ERR.BAD_ARG);
  });
});

describe("string length is counted in UTF-8 bytes, up to the cap inclusive", () => {
  const CAP = DEFAULT_LIMITS.maxStringBytes;
  const bind = (name: string) => () => check(2, 0, [1, name, 1, 9]);
  // UTF-8 (RFC 3629): U+0000-U+007F 1 byte, U+0080-U+07FF 2, U+0800-U+FFFF 3, astral 4
  // (a surrogate pair in a JS string).
  it.each([
    ["ASCII", "a", 1],
    ["U+0080 (first 2-byte)", "\u0080", 2],
    ["U+07FF (last 2-byte)", "\u07ff", 2],
    ["U+0800 (first 3-byte)", "\u0800", 3],
    ["U+FFFD", "\ufffd", 3],
    ["U+1F600 (surrogate pair)", "\u{1f600}", 4],
  ])("%s: exactly the cap passes, one character more is BAD_STRING", (_n, ch, width) => {
    const fit = ch.repeat(Math.floor(CAP / width)) + "a".repeat(CAP % width);
    expect(Buffer.byteLength(fit)).toBe(CAP);
    expect(bind(fit)().args[1]).toBe(fit);
    const over = fit.slice(0, fit.length - (CAP % width)) + ch;
    expect(Buffer.byteLength(over)).toBeGreaterThan(CAP);
    const e = failure(bind(over));
    expect(e.code).toBe(PROTO_ERR.BAD_STRING);
    expect(e.message).toContain(`longer than ${CAP} bytes`);
  });
  it("a string of exactly CAP one-byte characters passes; CAP + 1 does not", () => {
    expect(bind("x".repeat(CAP))().args[1]).toHaveLength(CAP);
    expect(failure(bind("x".repeat(CAP + 1))).code).toBe(PROTO_ERR.BAD_STRING);
  });
});

/**
 * checkOutgoing: what this end may put on the wire, per wayland.xml arg type (the wire
 * format: int and fixed are 32-bit signed, uint/object/new_id 32-bit unsigned, new_id never
 * 0, object 0 only with allow-null, string NUL-terminated so never containing NUL, fd an
 * open descriptor that travels beside the message).
 */
describe("checkOutgoing: every argument type at its range's edges", () => {
  const one = (arg: ArgSpec): MessageSpec => ({ name: "m", args: [arg] });
  const ok = (arg: ArgSpec, v: unknown, schema: Schema = BASE_SCHEMA) =>
    checkOutgoing(schema, one(arg), [v], (fd) => 100 + fd);
  const refused = (arg: ArgSpec, v: unknown, schema: Schema = BASE_SCHEMA) => {
    expect(() => ok(arg, v, schema), `${arg.type} ${String(v)}`).toThrow(
      `m: argument ${arg.name} (${arg.type}) has invalid value ${String(v)}`,
    );
  };
  it("int and fixed: -2^31 .. 2^31-1, integers only", () => {
    for (const type of ["int", "fixed"] as const) {
      const a: ArgSpec = { name: "x", type };
      expect(ok(a, -0x80000000).wire).toEqual([-0x80000000]);
      expect(ok(a, 0x7fffffff).wire).toEqual([0x7fffffff]);
      for (const bad of [-0x80000001, 0x80000000, 0.5, "1", null]) refused(a, bad);
    }
  });
  it("uint: 0 .. 2^32-1", () => {
    const a: ArgSpec = { name: "u", type: "uint" };
    expect(ok(a, 0).wire).toEqual([0]);
    expect(ok(a, 0xffffffff).wire).toEqual([0xffffffff]);
    for (const bad of [-1, 0x100000000, 1.5, "1"]) refused(a, bad);
  });
  it("new_id: never 0; object: 0 only when nullable", () => {
    refused({ name: "id", type: "new_id" }, 0);
    expect(ok({ name: "id", type: "new_id" }, 0xffffffff).wire).toEqual([0xffffffff]);
    refused({ name: "id", type: "new_id" }, 0x100000000);
    refused({ name: "o", type: "object" }, 0);
    refused({ name: "o", type: "object", nullable: false }, 0);
    expect(ok({ name: "o", type: "object", nullable: true }, 0).wire).toEqual([0]);
    expect(ok({ name: "o", type: "object" }, 7).wire).toEqual([7]);
    refused({ name: "o", type: "object", nullable: true }, -1);
  });
  it("enum: one of the enum's values; a bitfield any subset of its bits", () => {
    const fmt: ArgSpec = { name: "format", type: "enum", enum: "wl_shm.format" };
    expect(ok(fmt, 0).wire).toEqual([0]); // argb8888
    expect(ok(fmt, 1).wire).toEqual([1]); // xrgb8888
    refused(fmt, 2);
    refused(fmt, -1);
    refused(fmt, 0x100000000);
    const schema: Schema = {
      interfaces: {
        t: {
          name: "t",
          version: 1,
          requests: [],
          events: [],
          enums: [
            {
              name: "caps",
              bitfield: true,
              entries: [
                { name: "a", value: 1 },
                { name: "b", value: 2 },
                { name: "c", value: 8 },
              ],
            },
          ],
        },
      },
    };
    const caps: ArgSpec = { name: "caps", type: "enum", enum: "t.caps" };
    expect(ok(caps, 0, schema).wire).toEqual([0]);
    expect(ok(caps, 11, schema).wire).toEqual([11]);
    refused(caps, 4, schema);
    refused(caps, 12, schema);
    // An enum arg whose enum the schema lacks is range-checked only.
    expect(ok({ name: "e", type: "enum", enum: "t.nothing" }, 77, schema).wire).toEqual([77]);
  });
  it("string: no NUL; null only when nullable", () => {
    const s: ArgSpec = { name: "s", type: "string" };
    expect(ok(s, "").wire).toEqual([""]);
    refused(s, "a\0b");
    refused(s, null);
    refused(s, 5);
    expect(ok({ ...s, nullable: true }, null).wire).toEqual([null]);
    refused({ ...s, nullable: false }, null);
  });
  it("fd: a non-negative integer, sent as the index of its slot in the fd list", () => {
    const spec: MessageSpec = {
      name: "m",
      args: [
        { name: "a", type: "fd" },
        { name: "n", type: "int" },
        { name: "b", type: "fd" },
      ],
    };
    expect(checkOutgoing(BASE_SCHEMA, spec, [5, -3, 0], (fd) => 100 + fd)).toEqual({
      wire: [0, -3, 1],
      fds: [105, 100],
    });
    refused({ name: "f", type: "fd" }, -1);
    refused({ name: "f", type: "fd" }, 1.5);
  });
  it("the argument count must match the message", () => {
    expect(() =>
      checkOutgoing(BASE_SCHEMA, one({ name: "x", type: "int" }), [1, 2], (f) => f),
    ).toThrow("m: 2 arguments, expected 1");
  });
});
