/**
 * A real MIT-SHM client against an X server: the X11 side of the wl_shm vocabulary the
 * catalogue behaviours speak, translated as the model policy `xorg-mit-shm` translates it
 * (docs/real-compositors.md, "Xvfb: MIT-SHM"):
 *
 *   create_pool(fd)        → ShmAttachFd(shmseg, fd as SCM_RIGHTS, readOnly false)
 *   create_surface         → CreateWindow (a background pixel of its own) + MapWindow
 *   create_buffer          → nothing on the wire: (offset, width, height, stride) kept here
 *   attach + commit        → ShmPutImage(totalWidth = stride / 4, src = the buffer, ZPixmap,
 *                            depth 24, send_event) at the buffer's offset
 *   frame done / release   → the ShmCompletion event of that put (Xvfb has copied the
 *                            pixels when it sends it: ProcShmPutImage reads synchronously)
 *   destroy pool           → ShmDetach
 *   roundtrip              → GetInputFocus
 * and the pool file's syscalls go to the native helper's real memfd.
 */
import { renderFrame, worsePixel } from "../client/pattern.ts";
import { X11Connection } from "./x11-conn.ts";
import { X11Helper } from "./x11-native.ts";
import {
  decodeGetImage,
  encodeCreateGC,
  encodeCreateWindow,
  encodeGetImage,
  encodeMapWindow,
  encodeShmAttachFd,
  encodeShmDetach,
  encodeShmPutImage,
  Z_PIXMAP,
} from "./x11-wire.ts";

/** The window's background: 0x7f7f7f is no pattern pixel (their top byte is 0xff). */
export const BACKGROUND = 0x7f7f7f;

export interface XBuffer {
  seg: number;
  offset: number;
  width: number;
  height: number;
  stride: number;
  /** The pattern frame drawn into it, or -1. */
  frame: number;
}

export type XPixels = "correct" | "stale" | "zero" | "foreign" | "other" | "none";

export class XClient {
  readonly conn: X11Connection;
  window = 0;
  gc = 0;
  width = 0;
  height = 0;
  puts = 0;
  completions = 0;
  /** The last frame put (what the window should show), or -1. */
  lastFrame = -1;
  readonly notes: string[] = [];

  private constructor(
    readonly helper: X11Helper,
    readonly index: number,
    readonly seed: number,
  ) {
    this.conn = new X11Connection(helper);
  }

  static async connect(socket: string, index: number, seed: number): Promise<XClient> {
    const helper = await X11Helper.start();
    const c = new XClient(helper, index, seed);
    try {
      await c.conn.open(socket);
    } catch (e) {
      await helper.stop();
      throw e;
    }
    if (c.conn.setup.rootDepth !== 24)
      c.notes.push(`root depth ${c.conn.setup.rootDepth}: pixels are checked as depth 24`);
    return c;
  }

  get closed(): boolean {
    return this.conn.closed;
  }

  /**
   * The "surface": a mapped window at this client's place on the screen, and a GC; they
   * become the client's window (the one `put` draws into and `pixels` reads). `place` is
   * the slot on the screen's grid (default: the client's index; a fuzz program's further
   * surfaces take slots of their own).
   */
  async createWindow(
    width: number,
    height: number,
    place = this.index,
  ): Promise<{ window: number; gc: number }> {
    const conn = this.conn;
    this.width = width;
    this.height = height;
    this.window = conn.allocId();
    const perRow = Math.max(1, Math.floor(conn.setup.width / (width + 8)));
    const rows = Math.max(1, Math.floor(conn.setup.height / (height + 8)));
    const slot = place % (perRow * rows);
    const x = 8 + (slot % perRow) * (width + 8);
    const y = 8 + Math.floor(slot / perRow) * (height + 8);
    await conn.request(
      "CreateWindow",
      encodeCreateWindow({
        wid: this.window,
        parent: conn.setup.root,
        x,
        y,
        width,
        height,
        background: BACKGROUND,
      }),
    );
    await conn.request("MapWindow", encodeMapWindow(this.window));
    this.gc = conn.allocId();
    await conn.request("CreateGC", encodeCreateGC(this.gc, this.window));
    return { window: this.window, gc: this.gc };
  }

  /** ShmAttachFd: returns the new segment id (whether the server accepts it shows later). */
  async attach(fd: number, readOnly = 0): Promise<number> {
    const seg = this.conn.allocId();
    await this.conn.request(
      "ShmAttachFd",
      encodeShmAttachFd(this.conn.shm.majorOpcode, seg, readOnly),
      fd,
    );
    return seg;
  }

  async detach(seg: number): Promise<void> {
    await this.conn.request("ShmDetach", encodeShmDetach(this.conn.shm.majorOpcode, seg));
  }

  /** The pattern bytes of frame `frame` for a buffer, rows at its stride. */
  patternBytes(b: XBuffer, frame: number): Uint8Array {
    const words = Math.max(b.width, b.stride / 4);
    const px = renderFrame(
      this.seed,
      this.index,
      frame,
      b.width,
      b.height,
      new Uint32Array(words * b.height),
      words,
    );
    return new Uint8Array(px.buffer, px.byteOffset, px.byteLength);
  }

  /** Draws pattern frame `frame` into the buffer's place in the file (pwrite). */
  async draw(fd: number, b: XBuffer, frame: number): Promise<void> {
    await this.helper.pwrite(fd, this.patternBytes(b, frame), b.offset);
    b.frame = frame;
  }

  /** The ShmPutImage bytes that show buffer `b` in the window. */
  putBytes(
    b: XBuffer,
    opts: { format?: number; depth?: number; window?: number; gc?: number } = {},
  ): Uint8Array {
    return encodeShmPutImage(this.conn.shm.majorOpcode, {
      drawable: opts.window ?? this.window,
      gc: opts.gc ?? this.gc,
      totalWidth: Math.floor(b.stride / 4),
      totalHeight: b.height,
      srcX: 0,
      srcY: 0,
      srcWidth: b.width,
      srcHeight: b.height,
      dstX: 0,
      dstY: 0,
      depth: opts.depth ?? 24,
      format: opts.format ?? Z_PIXMAP,
      sendEvent: 1,
      shmseg: b.seg,
      offset: b.offset,
    });
  }

  /** attach + commit: ShmPutImage with send_event; returns its sequence number. */
  async put(
    b: XBuffer,
    opts: { format?: number; window?: number; gc?: number } = {},
  ): Promise<number> {
    const seq = await this.conn.request("ShmPutImage", this.putBytes(b, opts));
    if (seq) this.committed(b);
    return seq;
  }

  /**
   * A put whose last byte is held back until `between` has run: the server cannot read the
   * request (so cannot read the pixels) before `between` is done. This is the model's "the
   * client truncates in the same step as its commit": the compositor's read comes after.
   */
  async putAround(
    b: XBuffer,
    between: () => Promise<void>,
    then?: { name: string; bytes: Uint8Array },
    /** The file's size once `between` has run, when it cut the file. */
    cutTo?: number,
  ): Promise<number> {
    const bytes = this.putBytes(b);
    await this.conn.sendRaw(bytes.subarray(0, bytes.length - 1));
    await between();
    // `then` rides in the same write: the server reads and dispatches both in one turn of
    // its loop (the model's "same step"), before its main loop's next WaitForSomething.
    const last = bytes.subarray(bytes.length - 1);
    const out = then ? Uint8Array.from([...last, ...then.bytes]) : last;
    await this.conn.sendRaw(out);
    if (this.closed) return 0;
    const seq = this.conn.countRequest("ShmPutImage");
    if (then) this.conn.countRequest(then.name);
    this.committed(b);
    const span = (b.height - 1) * b.stride + b.width * 4;
    if (cutTo !== undefined && cutTo < b.offset + span) this.readsBeyondEof.set(seq, cutTo);
    return seq;
  }

  /**
   * Puts whose pixels the server could only read beyond the file's end (the file was cut
   * before the request could be read): if such a put completes, the server took the
   * SIGBUS and survived (LINUX.md rule 2: a load beyond EOF of a MAP_SHARED mapping is
   * SIGBUS). Counted in `faultsInferred` when its ShmCompletion arrives.
   */
  private readonly readsBeyondEof = new Map<number, number>();
  faultsInferred = 0;

  private committed(b: XBuffer): void {
    this.puts++;
    if (b.frame >= 0) this.lastFrame = b.frame;
  }

  /** Waits for put `seq`'s ShmCompletion (true), its error, or the connection's end. */
  async untilPutDone(seq: number, timeoutMs = 5000): Promise<boolean> {
    const type = this.conn.shm.firstEvent;
    const done = () => this.conn.events.some((e) => e.type === type && e.seq === seq);
    const ok = await this.conn.until(
      () => done() || this.conn.failedRequest(seq),
      timeoutMs,
      `ShmCompletion of ShmPutImage #${seq}`,
    );
    this.completions = this.conn.events.filter((e) => e.type === type).length;
    const cut = this.readsBeyondEof.get(seq);
    if (cut !== undefined && done()) {
      this.readsBeyondEof.delete(seq);
      if (this.faultsInferred++ === 0)
        this.notes.push(
          `sigbus (inferred): a put completed whose pixels lay beyond the file's end (cut to ${cut} bytes before the server could read the request)`,
        );
    }
    return ok && done();
  }

  /** What the window shows now (GetImage), classified against the last frame put. */
  async pixels(foreign: readonly number[]): Promise<XPixels> {
    if (this.closed || !this.window) return "none";
    const seq = await this.conn.request(
      "GetImage",
      encodeGetImage(this.window, 0, 0, this.width, this.height),
    );
    const r = await this.conn.reply(seq);
    if (!r) return "none";
    return classifyWindow(decodeGetImage(r).data, this, foreign);
  }

  async stop(): Promise<void> {
    await this.helper.stop();
  }
}

/**
 * Depth-24 pixels carry no alpha: a pixel's top byte is whatever the server keeps, so it is
 * normalised (0 stays 0, anything else gets the pattern's 0xff) before the lab's own
 * classification (client/pattern.ts); the window's background means "never drawn".
 */
export function classifyWindow(
  data: Uint8Array,
  c: { seed: number; index: number; width: number; height: number; lastFrame: number },
  foreign: readonly number[],
): XPixels {
  const n = c.width * c.height;
  const dv = new DataView(data.buffer, data.byteOffset, n * 4);
  let background = 0;
  const expected =
    c.lastFrame >= 0 ? renderFrame(c.seed, c.index, c.lastFrame, c.width, c.height) : null;
  let worst: XPixels = "none";
  for (let i = 0; i < n; i++) {
    const rgb = dv.getUint32(i * 4, true) & 0xffffff;
    let cls: XPixels;
    if (rgb === BACKGROUND) {
      background++;
      continue;
    }
    if (rgb === 0) cls = "zero";
    else if (expected && rgb === (expected[i] & 0xffffff)) cls = "correct";
    else {
      const tag = (rgb >>> 16) & 0xff;
      const isForeign = foreign.some((f) => ((f + 1) & 0xff) === tag);
      cls =
        tag === ((c.index + 1) & 0xff) && c.lastFrame > 0
          ? staleOrOther(rgb, c, i)
          : isForeign
            ? "foreign"
            : "other";
    }
    worst = worsePixel<XPixels>(worst, cls);
  }
  return background === n ? "none" : worst;
}

function staleOrOther(
  rgb: number,
  c: { seed: number; index: number; width: number; height: number; lastFrame: number },
  i: number,
): XPixels {
  for (let f = Math.max(0, c.lastFrame - 16); f < c.lastFrame; f++) {
    const px = renderFrame(c.seed, c.index, f, c.width, c.height);
    if ((px[i] & 0xffffff) === rgb) return "stale";
  }
  return "other";
}
