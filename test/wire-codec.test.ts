/**
 * The Wayland wire codec against byte sequences written out by hand from the wire-format
 * description (wayland docs, "Wire Format": id word, size<<16|opcode word, 32-bit args,
 * strings length-with-NUL and padded, arrays length and padded, fds out of band). This
 * machine is little-endian, so a word 0x000c0001 is the bytes 01 00 0c 00.
 */
import { describe, expect, it } from "vitest";
import { BASE_SCHEMA } from "../protocol/schema.ts";
import { XDG_INTERFACES } from "../protocol/schema-xdg.ts";
import {
  decodeWire,
  encodeWire,
  WIRE_ERR,
  WireError,
  type WireMessageSpec,
  WireReader,
} from "../protocol/wire.ts";

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const bytes = (...b: number[]) => new Uint8Array(b);
const req = (iface: string, name: string) =>
  (BASE_SCHEMA.interfaces[iface] ?? XDG_INTERFACES[iface]).requests.find((r) => r.name === name)!;
const evt = (iface: string, name: string): WireMessageSpec =>
  (BASE_SCHEMA.interfaces[iface] ?? XDG_INTERFACES[iface]).events.find((r) => r.name === name)!;

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof WireError) return e.code;
    throw e;
  }
  return "no error";
}

describe.skipIf(!LE)("wire codec (little-endian host; hand-written bytes assume it)", () => {
  it("encodes wl_display.get_registry as three words", () => {
    const { bytes: b, fds } = encodeWire(1, 1, req("wl_display", "get_registry").args, [2]);
    expect([...b]).toEqual([1, 0, 0, 0, 1, 0, 12, 0, 2, 0, 0, 0]);
    expect(fds).toEqual([]);
  });

  it("encodes wl_registry.bind with its string padded to a word and its untyped new_id", () => {
    // "wl_compositor" is 13 bytes: length 14 with the NUL, padded to 16; size 40 = 0x28
    const { bytes: b } = encodeWire(2, 0, req("wl_registry", "bind").args, [
      1,
      "wl_compositor",
      4,
      3,
    ]);
    const name = [..."wl_compositor"].map((c) => c.charCodeAt(0));
    expect([...b]).toEqual([
      2,
      0,
      0,
      0,
      0,
      0,
      0x28,
      0,
      1,
      0,
      0,
      0,
      14,
      0,
      0,
      0,
      ...name,
      0,
      0,
      0,
      4,
      0,
      0,
      0,
      3,
      0,
      0,
      0,
    ]);
  });

  it("puts no bytes on the wire for an fd and returns it for the ancillary data", () => {
    const { bytes: b, fds } = encodeWire(4, 0, req("wl_shm", "create_pool").args, [5, 7, 4096]);
    expect([...b]).toEqual([4, 0, 0, 0, 0, 0, 16, 0, 5, 0, 0, 0, 0, 0x10, 0, 0]);
    expect(fds).toEqual([7]);
  });

  it("encodes negative ints as two's complement words", () => {
    const { bytes: b } = encodeWire(9, 1, req("wl_surface", "attach").args, [0, -1, -2]);
    expect([...b.subarray(8)]).toEqual([0, 0, 0, 0, 255, 255, 255, 255, 254, 255, 255, 255]);
  });

  it("decodes wl_display.error with its message", () => {
    const b = bytes(1, 0, 0, 0, 0, 0, 24, 0, 3, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 98, 97, 100, 0);
    const m = decodeWire(b, evt("wl_display", "error").args, []);
    expect(m).toMatchObject({ objectId: 1, opcode: 0, size: 24, args: [3, 2, "bad"] });
  });

  it("decodes an array (xdg_toplevel.configure states) and signed ints", () => {
    const b = bytes(
      ...[7, 0, 0, 0, 0, 0, 28, 0],
      ...[0x9c, 0xff, 0xff, 0xff, 200, 0, 0, 0],
      ...[8, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0],
    );
    const m = decodeWire(b, evt("xdg_toplevel", "configure").args, []);
    expect(m.args[0]).toBe(-100);
    expect(m.args[1]).toBe(200);
    expect([...(m.args[2] as Uint8Array)]).toEqual([1, 0, 0, 0, 4, 0, 0, 0]);
  });

  it("takes fds from the queue in order and only when the message is valid", () => {
    const spec = req("wl_shm", "create_pool").args;
    const b = bytes(4, 0, 0, 0, 0, 0, 16, 0, 5, 0, 0, 0, 0, 0x10, 0, 0);
    const q = [11, 12];
    expect(decodeWire(b, spec, q).args).toEqual([5, 11, 4096]);
    expect(q).toEqual([12]);
    const none: number[] = [];
    expect(codeOf(() => decodeWire(b, spec, none))).toBe(WIRE_ERR.MISSING_FD);
  });

  it("refuses malformed messages with typed errors", () => {
    const err = evt("wl_display", "error").args;
    const reg = req("wl_display", "get_registry").args;
    // size 6: smaller than the header
    expect(codeOf(() => decodeWire(bytes(1, 0, 0, 0, 1, 0, 6, 0), reg, []))).toBe(
      WIRE_ERR.BAD_SIZE,
    );
    // size 10: not a multiple of 4
    expect(codeOf(() => decodeWire(bytes(1, 0, 0, 0, 1, 0, 10, 0, 2, 0), reg, []))).toBe(
      WIRE_ERR.BAD_SIZE,
    );
    // size 8 but get_registry needs a new_id word
    expect(codeOf(() => decodeWire(bytes(1, 0, 0, 0, 1, 0, 8, 0), reg, []))).toBe(
      WIRE_ERR.SHORT_BODY,
    );
    // new_id 0
    expect(codeOf(() => decodeWire(bytes(1, 0, 0, 0, 1, 0, 12, 0, 0, 0, 0, 0), reg, []))).toBe(
      WIRE_ERR.NULL_ARG,
    );
    // a word left over after the last argument
    expect(
      codeOf(() => decodeWire(bytes(1, 0, 0, 0, 1, 0, 16, 0, 2, 0, 0, 0, 9, 0, 0, 0), reg, [])),
    ).toBe(WIRE_ERR.TRAILING);
    // the string "bad" with no NUL
    const noNul = bytes(
      1,
      0,
      0,
      0,
      0,
      0,
      24,
      0,
      3,
      0,
      0,
      0,
      2,
      0,
      0,
      0,
      4,
      0,
      0,
      0,
      98,
      97,
      100,
      1,
    );
    expect(codeOf(() => decodeWire(noNul, err, []))).toBe(WIRE_ERR.BAD_STRING);
    // a null string where the message is not nullable
    const nul = bytes(1, 0, 0, 0, 0, 0, 20, 0, 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0);
    expect(codeOf(() => decodeWire(nul, err, []))).toBe(WIRE_ERR.NULL_ARG);
    // a string length running past the message
    const long = bytes(
      1,
      0,
      0,
      0,
      0,
      0,
      24,
      0,
      3,
      0,
      0,
      0,
      2,
      0,
      0,
      0,
      40,
      0,
      0,
      0,
      98,
      97,
      100,
      0,
    );
    expect(codeOf(() => decodeWire(long, err, []))).toBe(WIRE_ERR.SHORT_BODY);
    // over libwayland's 4096-byte buffer
    expect(codeOf(() => decodeWire(bytes(1, 0, 0, 0, 1, 0, 0x04, 0x10), reg, []))).toBe(
      WIRE_ERR.TOO_LARGE,
    );
  });

  it("refuses values that do not fit a word", () => {
    const reg = req("wl_display", "get_registry").args;
    expect(codeOf(() => encodeWire(1, 1, reg, [2 ** 32]))).toBe(WIRE_ERR.BAD_VALUE);
    expect(codeOf(() => encodeWire(1, 1, reg, ["x"]))).toBe(WIRE_ERR.BAD_VALUE);
    expect(codeOf(() => encodeWire(1, 1, reg, []))).toBe(WIRE_ERR.BAD_VALUE);
  });

  it("reassembles messages split across reads, with fds arriving early", () => {
    const r = new WireReader();
    const spec = req("wl_shm", "create_pool");
    const lookup = () => spec;
    const b = bytes(4, 0, 0, 0, 0, 0, 16, 0, 5, 0, 0, 0, 0, 0x10, 0, 0);
    r.push(b.subarray(0, 5), [33]);
    expect(r.next(lookup)).toBeUndefined();
    r.push(b.subarray(5));
    r.push(b.subarray(0, 8));
    expect(r.next(lookup)?.args).toEqual([5, 33, 4096]);
    expect(r.pending).toBe(8);
    expect(r.next(lookup)).toBeUndefined();
  });

  it("marks the stream broken after a framing error", () => {
    const r = new WireReader();
    r.push(bytes(1, 0, 0, 0, 0, 0, 4, 0));
    const lookup = () => req("wl_display", "sync");
    expect(codeOf(() => r.next(lookup))).toBe(WIRE_ERR.BAD_SIZE);
    expect(codeOf(() => r.next(lookup))).toBe(WIRE_ERR.BAD_SIZE);
  });
});

describe("wire reader skipping", () => {
  it("skips a message the lookup does not speak, by its header size, and goes on", () => {
    if (!LE) return;
    const r = new WireReader();
    // an event of 16 bytes on object 9 (unknown), then wl_display.delete_id(5)
    r.push(
      bytes(9, 0, 0, 0, 3, 0, 16, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 0, 0, 0, 1, 0, 12, 0, 5, 0, 0, 0),
    );
    const lookup = (id: number) => (id === 1 ? evt("wl_display", "delete_id") : null);
    expect(r.next(lookup)).toMatchObject({ objectId: 9, opcode: 3, size: 16, spec: null });
    expect(r.next(lookup)).toMatchObject({ objectId: 1, opcode: 1, args: [5] });
  });
});

describe("cut msgpack frames (real/wire-transport.ts msgpackPrefix)", () => {
  it("reads the complete items of a frame cut short", async () => {
    const { msgpackPrefix } = await import("../real/wire-transport.ts");
    // [5, 0, [11, 0, 4096]] = 93 05 00 93 0b 00 cd 10 00
    const full = bytes(0x93, 0x05, 0x00, 0x93, 0x0b, 0x00, 0xcd, 0x10, 0x00);
    expect(msgpackPrefix(full.subarray(0, 4))).toEqual({
      objectId: 5,
      opcode: 0,
      opcodeComplete: true,
      args: [],
    });
    expect(msgpackPrefix(full.subarray(0, 7)).args).toEqual([11, 0]);
    expect(msgpackPrefix(full).args).toEqual([11, 0, 4096]);
    expect(msgpackPrefix(full.subarray(0, 2))).toEqual({
      objectId: 5,
      opcodeComplete: false,
      args: [],
    });
    // a negative fixint and a fixstr
    expect(msgpackPrefix(bytes(0x93, 0x03, 0x01, 0x92, 0xff, 0xa2, 0x68, 0x69)).args).toEqual([
      -1,
      "hi",
    ]);
  });
});
