import { describe, expect, it } from "vitest";
import { peekOpcode } from "../lab/participant.ts";
import { Rng } from "../lab/rng.ts";
import { decodeFrame, encodeMessage, encodeRaw } from "../protocol/codec.ts";
import { isProtocolError } from "../protocol/errors.ts";

/** decodeFrame's opcode, or undefined when it is not a message (or does not decode). */
function decodedOpcode(bytes: Uint8Array): number | undefined {
  try {
    const f = decodeFrame(bytes);
    return f.kind === "message" ? f.opcode : undefined;
  } catch (e) {
    if (isProtocolError(e)) return undefined;
    throw e;
  }
}

describe("peekOpcode: a commit is never missed by reading the header only", () => {
  it("reads the opcode of encoded messages, whatever the object id's width", () => {
    for (const id of [1, 2, 127, 128, 255, 256, 65535, 65536, 0xfffffffe])
      for (const op of [0, 1, 6, 127]) {
        const bytes = encodeMessage(id, op, [1, "x", new Uint8Array(3)]);
        expect(peekOpcode(bytes)).toBe(op);
        expect(decodedOpcode(bytes)).toBe(op);
      }
  });

  it("never names an opcode other than the decoder's, on hostile bytes", () => {
    const rng = new Rng(5);
    let named = 0;
    for (let i = 0; i < 20000; i++) {
      const len = rng.int(1, 12);
      const bytes = new Uint8Array(len);
      for (let j = 0; j < len; j++) bytes[j] = rng.int(0, 255);
      // Bias towards frames that look like messages, so that some decode.
      if (rng.chance(0.7)) bytes[0] = 0x93;
      if (rng.chance(0.5) && len > 2) bytes[len - 1] = 0x90;
      const peek = peekOpcode(bytes);
      const dec = decodedOpcode(bytes);
      if (dec !== undefined) {
        named++;
        if (peek !== undefined) expect(peek).toBe(dec);
      }
    }
    expect(named).toBeGreaterThan(100);
  });

  it("gives up (undefined) on forms it does not read: array16, int-typed ids, wide opcodes", () => {
    expect(peekOpcode(encodeRaw([1, 200, []]))).toBeUndefined();
    expect(peekOpcode(Uint8Array.of(0xdc, 0, 3, 1, 6, 0x90))).toBeUndefined();
    expect(peekOpcode(Uint8Array.of(0x93, 0xd0, 5, 6, 0x90))).toBeUndefined();
    expect(peekOpcode(Uint8Array.of(0x93, 0xcd, 1))).toBeUndefined();
  });
});
