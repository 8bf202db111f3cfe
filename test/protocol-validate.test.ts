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
    ["U+10000 (high surrogate 0xd800)", "\u{10000}", 4],
    ["U+10FC00 (high surrogate 0xdbff)", "\u{10fc00}", 4],
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
  it("one-byte characters count one each beside wider ones", () => {
    const mixed = `${"\u00e9".repeat(CAP / 2)}a`; // CAP + 1 bytes in CAP / 2 + 1 characters
    expect(Buffer.byteLength(mixed)).toBe(CAP + 1);
    expect(failure(bind(mixed)).code).toBe(PROTO_ERR.BAD_STRING);
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

/**
 * The errors' text: libwayland's own wording where the model follows it (wayland-server.c
 * "invalid object %u", "invalid method %d (since %d < %d), object %s#%u", connection.c
 * "file descriptor expected", "NULL new ID", "not a valid new object id (%u)"), and the
 * argument and value that were wrong, as the client needs them.
 */
describe("validateMessage's errors say what was wrong, where", () => {
  const fails = (fn: () => unknown) => failure(fn);
  it("unknown sender, unknown opcode, opcode newer than the object", () => {
    expect(fails(() => check(99, 0, [])).message).toContain("invalid object 99");
    expect(fails(() => check(7, 9, [])).message).toContain("invalid method 9, object wl_buffer#7");
    // wl_surface.set_buffer_scale is since 3; object 8 is a version-1 surface.
    const e = fails(() => check(8, 8, [1]));
    expect(e.code).toBe(PROTO_ERR.OPCODE_VERSION);
    expect(e.message).toContain("invalid method 8 (since 1 < 3), object wl_surface#8");
  });
  it("argument count, int32, uint32 and the message each names", () => {
    const n = fails(() => check(5, DAMAGE, [0, 0, 1]));
    expect(n.code).toBe(PROTO_ERR.ARG_COUNT);
    expect(n.message).toContain(
      "invalid arguments for wl_surface#5.damage: 3 arguments, expected 4",
    );
    expect(fails(() => check(5, DAMAGE, [0.5, 0, 1, 1])).message).toContain("x is not an int32");
    expect(fails(() => check(2, 0, [-1, "wl_shm", 1, 9])).message).toContain(
      "name is not a uint32",
    );
  });
  it('enums: wl_shm.format\'s own error ("invalid format 0x%x" code), else not in the enum', () => {
    const e = fails(() => check(6, CREATE_BUFFER, [9, 0, 1, 1, 4, 0x1234]));
    expect(e.code).toBe(PROTO_ERR.BAD_ENUM);
    expect(e.wlCode).toBe(SHM_ERROR.invalid_format);
    expect(e.message).toContain("invalid wl_shm.format 0x1234 in wl_shm_pool#6.create_buffer");
    for (const bad of [-1, 0x100000000, 1.5])
      expect(fails(() => check(6, CREATE_BUFFER, [9, 0, 1, 1, 4, bad])).message).toContain(
        "format is not a uint32",
      );
  });
  it("strings: not a string, null, NUL", () => {
    expect(fails(() => check(2, 0, [1, 5, 1, 9])).message).toContain("interface is not a string");
    expect(fails(() => check(2, 0, [1, null, 1, 9])).message).toContain("interface is null");
    expect(fails(() => check(2, 0, [1, "a\0b", 1, 9])).message).toContain("interface contains NUL");
  });
  it("objects: not an id, null where not allowed, unknown, wrong interface", () => {
    expect(fails(() => check(5, ATTACH, [-1, 0, 0])).message).toContain(
      "buffer is not an object id",
    );
    expect(fails(() => check(5, ATTACH, [42, 0, 0])).message).toContain(
      "unknown object 42 for buffer",
    );
    expect(fails(() => check(5, ATTACH, [6, 0, 0])).message).toContain(
      "object 6 is a wl_shm_pool, buffer must be a wl_buffer",
    );
  });
  it("new ids: not an id, NULL, already taken", () => {
    expect(fails(() => check(3, 0, [-1])).message).toContain("id is not an object id");
    const z = fails(() => check(3, 0, [0]));
    expect(z.code).toBe(PROTO_ERR.NULL_ARG);
    expect(z.message).toContain("NULL new ID for id");
    const taken = fails(() => check(3, 0, [5]));
    expect(taken.code).toBe(PROTO_ERR.BAD_NEW_ID);
    expect(taken.message).toContain("not a valid new object id (5)");
  });
  it('fds: a slot past the list is "file descriptor expected"; an fd no argument names is refused', () => {
    const e = fails(() => check(4, 0, [9, 0, 4096], []));
    expect(e.code).toBe(PROTO_ERR.BAD_FD);
    expect(e.message).toContain("file descriptor expected for fd");
    const extra = fails(() => check(4, 0, [9, 0, 4096], [11, 12]));
    expect(extra.code).toBe(PROTO_ERR.BAD_FD);
    expect(extra.message).toContain("2 fds attached, not all named by an argument");
    expect(check(4, 0, [9, 0, 4096], [11]).args[1]).toBe(11);
  });

  // A schema with two fds and two new_ids in one request: each slot and each id once.
  const twoOf: Schema = {
    interfaces: {
      ...BASE_SCHEMA.interfaces,
      t: {
        name: "t",
        version: 1,
        requests: [
          {
            name: "fds",
            args: [
              { name: "a", type: "fd" },
              { name: "b", type: "fd" },
            ],
          },
          {
            name: "ids",
            args: [
              { name: "x", type: "new_id", interface: "wl_buffer" },
              { name: "y", type: "new_id", interface: "wl_buffer" },
            ],
          },
          { name: "str", args: [{ name: "s", type: "string", nullable: true }] },
          { name: "obj", args: [{ name: "o", type: "object", interface: "wl_display" }] },
        ],
        events: [],
        enums: [],
      },
    },
  };
  const onT = (opcode: number, args: unknown[], fds: number[] = []) => {
    const m = new ObjectMap<ObjectInfo>("server");
    m.insertAt(1, { interface: "wl_display", version: 1 });
    m.insertPeer(2, { interface: "t", version: 1 });
    const frame: MessageFrame = {
      kind: "message",
      objectId: 2,
      opcode,
      args: args as MessageFrame["args"],
    };
    return validateMessage(twoOf, m, frame, fds, DEFAULT_LIMITS);
  };
  it("one fd slot named twice is refused; two slots in any order are fine", () => {
    expect(onT(0, [1, 0], [20, 21]).args).toEqual([21, 20]);
    const e = failure(() => onT(0, [1, 1], [20, 21]));
    expect(e.code).toBe(PROTO_ERR.BAD_FD);
    expect(e.message).toContain("fd slot 1 used twice");
    expect(failure(() => onT(0, [0, 0], [20, 21])).message).toContain("fd slot 0 used twice");
  });
  it("allow-null decides: a nullable string may be null; a plain object may not be 0", () => {
    expect(onT(2, [null]).args).toEqual([null]);
    const e = failure(() => onT(3, [0]));
    expect(e.code).toBe(PROTO_ERR.NULL_ARG);
    expect(e.message).toContain("o is null");
    expect(onT(3, [1]).args).toEqual([1]);
  });
  it("an object whose interface the schema does not know is this end's bug", () => {
    const m = new ObjectMap<ObjectInfo>("server");
    m.insertAt(1, { interface: "wl_display", version: 1 });
    m.insertPeer(2, { interface: "no_such_interface", version: 1 });
    const frame: MessageFrame = { kind: "message", objectId: 2, opcode: 0, args: [] };
    const e = failure(() => validateMessage(BASE_SCHEMA, m, frame, [], DEFAULT_LIMITS));
    expect(e.code).toBe(PROTO_ERR.IMPLEMENTATION);
    expect(e.message).toContain("object of unknown interface no_such_interface");
  });
  it("one new id given twice in a message is refused", () => {
    const e = failure(() => onT(1, [3, 3]));
    expect(e.code).toBe(PROTO_ERR.BAD_NEW_ID);
    expect(e.message).toContain("new id 3 given twice");
    // A message with no new id shares the one empty list.
    expect(onT(0, [0, 1], [20, 21]).newObjects).toEqual([]);
  });
});

describe("checkOutgoing enums the schema does not define, and bitfields, are range-checked first", () => {
  it("an enum arg with no enum in the schema: any uint32, nothing else", () => {
    const spec: MessageSpec = { name: "m", args: [{ name: "e", type: "enum", enum: "nope.nope" }] };
    const send = (v: unknown) => checkOutgoing(BASE_SCHEMA, spec, [v], (f) => f);
    expect(send(0).wire).toEqual([0]);
    expect(send(0xffffffff).wire).toEqual([0xffffffff]);
    for (const bad of [-1, 0x100000000, 1.5, "1"]) expect(() => send(bad)).toThrow("invalid value");
  });
  it("a bitfield refuses a non-integer or a value past 32 bits even when its low bits are allowed", () => {
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
              ],
            },
          ],
        },
      },
    };
    const spec: MessageSpec = { name: "m", args: [{ name: "c", type: "enum", enum: "t.caps" }] };
    const send = (v: unknown) => checkOutgoing(schema, spec, [v], (f) => f);
    expect(send(3).wire).toEqual([3]);
    for (const bad of [1.5, 2 ** 32 + 1, -4]) expect(() => send(bad)).toThrow("invalid value");
  });
});
