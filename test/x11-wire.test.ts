/**
 * The X11 encoding against the byte layouts of the X11 protocol's Encoding appendix and of
 * xorgproto's shmproto.h (sz_xShmPutImageReq = 40, sz_xShmAttachFdReq = 12,
 * sz_xShmCreatePixmapReq = 28, xShmCompletionEvent), written out here byte by byte, never
 * produced by the encoder under test.
 */
import { describe, expect, it } from "vitest";
import { renderFrame } from "../client/pattern.ts";
import { classifyWindow } from "../real/x11-client.ts";
import {
  decodeServerMessage,
  decodeSetup,
  decodeShmCompletion,
  encodeCreateWindow,
  encodeGetImage,
  encodeQueryExtension,
  encodeSetup,
  encodeShmAttachFd,
  encodeShmCreatePixmap,
  encodeShmPutImage,
  X11WireError,
} from "../real/x11-wire.ts";

const le16 = (v: number) => [v & 0xff, (v >>> 8) & 0xff];
const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];

describe("X11 requests, as the protocol encodes them", () => {
  it("connection setup: 'l', protocol 11.0, no authorization, 12 bytes", () => {
    expect([...encodeSetup()]).toEqual([0x6c, 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it("QueryExtension: opcode 98, length 2+(n+p)/4, the name padded to 4", () => {
    const name = [..."MIT-SHM"].map((ch) => ch.charCodeAt(0));
    expect([...encodeQueryExtension("MIT-SHM")]).toEqual([
      98,
      0,
      ...le16(4),
      ...le16(7),
      0,
      0,
      ...name,
      0,
    ]);
  });

  it("CreateWindow with CWBackPixel: opcode 1, length 8+1", () => {
    expect([
      ...encodeCreateWindow({
        wid: 0x200001,
        parent: 0x50d,
        x: 8,
        y: -2,
        width: 64,
        height: 48,
        background: 0x7f7f7f,
      }),
    ]).toEqual([
      1,
      0,
      ...le16(9),
      ...le32(0x200001),
      ...le32(0x50d),
      ...le16(8),
      ...le16(0xfffe),
      ...le16(64),
      ...le16(48),
      ...le16(0),
      ...le16(1),
      ...le32(0),
      ...le32(2),
      ...le32(0x7f7f7f),
    ]);
  });

  it("GetImage ZPixmap: opcode 73, format 2 in the data byte, length 5, plane mask all", () => {
    expect([...encodeGetImage(0x200001, 0, 0, 64, 64)]).toEqual([
      73,
      2,
      ...le16(5),
      ...le32(0x200001),
      0,
      0,
      0,
      0,
      ...le16(64),
      ...le16(64),
      ...le32(0xffffffff),
    ]);
  });

  it("ShmAttachFd: minor 6, 12 bytes (length 3), readOnly then three pad bytes", () => {
    expect([...encodeShmAttachFd(130, 0x200005, 0)]).toEqual([
      130,
      6,
      ...le16(3),
      ...le32(0x200005),
      0,
      0,
      0,
      0,
    ]);
  });

  it("ShmPutImage: minor 3, 40 bytes (length 10), fields in xShmPutImageReq order", () => {
    const bytes = encodeShmPutImage(130, {
      drawable: 0x200001,
      gc: 0x200002,
      totalWidth: 64,
      totalHeight: 32,
      srcX: 1,
      srcY: 2,
      srcWidth: 60,
      srcHeight: 30,
      dstX: -1,
      dstY: 5,
      depth: 24,
      format: 2,
      sendEvent: 1,
      shmseg: 0x200003,
      offset: 8192,
    });
    expect([...bytes]).toEqual([
      130,
      3,
      ...le16(10),
      ...le32(0x200001),
      ...le32(0x200002),
      ...le16(64),
      ...le16(32),
      ...le16(1),
      ...le16(2),
      ...le16(60),
      ...le16(30),
      ...le16(0xffff),
      ...le16(5),
      24,
      2,
      1,
      0,
      ...le32(0x200003),
      ...le32(8192),
    ]);
  });

  it("ShmCreatePixmap: minor 5, 28 bytes (length 7), depth then three pad bytes", () => {
    const bytes = encodeShmCreatePixmap(130, {
      pid: 0x200009,
      drawable: 0x50d,
      width: 64,
      height: 64,
      depth: 24,
      shmseg: 0x200003,
      offset: 0,
    });
    expect([...bytes]).toEqual([
      130,
      5,
      ...le16(7),
      ...le32(0x200009),
      ...le32(0x50d),
      ...le16(64),
      ...le16(64),
      24,
      0,
      0,
      0,
      ...le32(0x200003),
      ...le32(0),
    ]);
  });

  it("a hostile value is encoded as given (no clamping): offset 0x7fffffff, format 0xef", () => {
    const b = encodeShmPutImage(130, {
      drawable: 1,
      gc: 2,
      totalWidth: 0x4000,
      totalHeight: 0x8000,
      srcX: 0,
      srcY: 0,
      srcWidth: 1,
      srcHeight: 0x8000,
      dstX: 0,
      dstY: 0,
      depth: 24,
      format: 0xef,
      sendEvent: 1,
      shmseg: 3,
      offset: 0x7fffffff,
    });
    expect(b[29]).toBe(0xef);
    expect([...b.subarray(36, 40)]).toEqual(le32(0x7fffffff));
  });
});

describe("X11 server messages", () => {
  it("an error: code, 16-bit sequence, bad value, minor, major (32 bytes)", () => {
    const e = new Uint8Array(32);
    e.set([0, 2, ...le16(0x1234), ...le32(0x4000), ...le16(3), 130]);
    const m = decodeServerMessage(e);
    expect(m).toEqual({
      used: 32,
      msg: { kind: "error", seq: 0x1234, code: 2, badValue: 0x4000, minor: 3, major: 130 },
    });
  });

  it("a reply is 32 bytes plus 4 × its length field; incomplete is null", () => {
    const r = new Uint8Array(40);
    r.set([1, 24, ...le16(7), ...le32(2)]);
    expect(decodeServerMessage(r.subarray(0, 39))).toBeNull();
    expect(decodeServerMessage(r)?.used).toBe(40);
  });

  it("ShmCompletion: drawable, minor event, major event, shmseg, offset", () => {
    const ev = new Uint8Array(32);
    ev.set([
      65,
      0,
      ...le16(9),
      ...le32(0x200001),
      ...le16(3),
      130,
      0,
      ...le32(0x200003),
      ...le32(4096),
    ]);
    const m = decodeServerMessage(ev);
    expect(m?.msg.kind).toBe("event");
    expect(decodeShmCompletion(ev)).toEqual({
      drawable: 0x200001,
      minorEvent: 3,
      majorEvent: 130,
      shmseg: 0x200003,
      offset: 4096,
    });
  });

  it("setup: resource ids, root window and depth from the screen after vendor and formats", () => {
    const vendor = [..."Xtest"].map((c) => c.charCodeAt(0)); // 5 bytes, padded to 8
    const body = [
      ...le32(12101007),
      ...le32(0x200000),
      ...le32(0x1fffff),
      ...le32(0),
      ...le16(5),
      ...le16(0xffff),
      1,
      1,
      0,
      0,
      32,
      32,
      8,
      255,
      0,
      0,
      0,
      0,
      ...vendor,
      0,
      0,
      0,
      24,
      32,
      32,
      0,
      0,
      0,
      0,
      0, // one pixmap format
      ...le32(0x50d),
      ...le32(0x20),
      ...le32(0xffffff),
      ...le32(0),
      ...le32(0),
      ...le16(640),
      ...le16(480),
      ...le16(170),
      ...le16(127),
      ...le16(1),
      ...le16(1),
      ...le32(0x21),
      0,
      0,
      24,
      0,
    ];
    const head = [1, 0, ...le16(11), ...le16(0), ...le16(body.length / 4)];
    const s = decodeSetup(Uint8Array.from([...head, ...body]));
    expect(s?.info).toMatchObject({
      ridBase: 0x200000,
      ridMask: 0x1fffff,
      vendor: "Xtest",
      root: 0x50d,
      width: 640,
      height: 480,
      rootVisual: 0x21,
      rootDepth: 24,
    });
  });

  it("a refused setup throws with the server's reason", () => {
    const reason = [..."No protocol"].map((c) => c.charCodeAt(0));
    const msg = [0, reason.length, ...le16(11), ...le16(0), ...le16(3), ...reason, 0];
    expect(() => decodeSetup(Uint8Array.from(msg))).toThrow(X11WireError);
  });
});

describe("a window's pixels, classified", () => {
  const c = { seed: 7, index: 1, width: 8, height: 4, lastFrame: 2 };
  const image = (frame: number) => {
    const px = renderFrame(7, 1, frame, 8, 4);
    // depth 24: the top byte is not kept
    return new Uint8Array(px.map((v) => v & 0xffffff).buffer);
  };
  it("the last frame is correct, an earlier one stale, zeros zero, background none", () => {
    expect(classifyWindow(image(2), c, [])).toBe("correct");
    expect(classifyWindow(image(1), c, [])).toBe("stale");
    expect(classifyWindow(new Uint8Array(8 * 4 * 4), c, [])).toBe("zero");
    const bg = new Uint8Array(new Uint32Array(32).fill(0x7f7f7f).buffer);
    expect(classifyWindow(bg, c, [])).toBe("none");
  });
  it("another client's pixels are foreign", () => {
    const other = new Uint8Array(renderFrame(7, 0, 2, 8, 4).map((v) => v & 0xffffff).buffer);
    expect(classifyWindow(other, c, [0])).toBe("foreign");
  });
});
