/**
 * The catalogue behaviours (client/behaviours/) as MIT-SHM scripts: one per behaviour, the
 * same steps in the same order, with the vocabulary of real/x11-client.ts. They are
 * separate scripts, not the generators run through a Client facade: a behaviour reaches
 * into wl_* objects (pool ids, wl_buffer release, the raw Wayland codec) and into a
 * synchronous simulated process, neither of which exists on an X11 connection to a real
 * server; the scripts keep each behaviour's attack and say where the translation chose.
 *
 * Timing. A model behaviour's `yield` lets the scheduler run the compositor or not; a real
 * server runs when it likes. Two rules make a real run repeatable:
 *  - scene() ends with a round trip, so the segment is attached (ProcShmAttachFd fstat()s
 *    the full file) and the window mapped before the attack starts;
 *  - where the model truncates in the same step as the commit (the compositor reads later),
 *    the put's last byte is held back until the truncation is done (XClient.putAround).
 *
 * Behaviours MIT-SHM cannot express are `notApplicable` with the reason; the model says the
 * same (compositor/policies/xorg-mit-shm.ts `notApplicable`).
 */
import { XORG_NOT_APPLICABLE } from "../compositor/policies/xorg-mit-shm.ts";
import type { XBuffer, XClient } from "./x11-client.ts";
import { encodeShmDetach } from "./x11-wire.ts";

export interface XScriptContext {
  seed: number;
  index: number;
  params: Readonly<Record<string, number | string | boolean>>;
  frames: number;
  random(): number;
  /** Checks the window after each frame (honest clients). */
  onFrame(): Promise<void>;
}

export type XScript = (c: XClient, ctx: XScriptContext) => Promise<void>;

const num = (ctx: XScriptContext, k: string, d: number) =>
  typeof ctx.params[k] === "number" ? (ctx.params[k] as number) : d;
const str = (ctx: XScriptContext, k: string, d: string) =>
  typeof ctx.params[k] === "string" ? (ctx.params[k] as string) : d;

const F_SEAL_SHRINK = 0x2;
const F_SEAL_GROW = 0x4;
const F_SEAL_WRITE = 0x8;
const MFD_ALLOW_SEALING = 0x2;
const PAGE = 4096;

interface XScene {
  fd: number;
  seg: number;
  buffers: XBuffer[];
  bufferSize: number;
}

/** common.ts scene(): memfd for n buffers, the window, the segment, the buffers; synced. */
async function scene(
  c: XClient,
  ctx: XScriptContext,
  o: { buffers?: number; seal?: number } = {},
): Promise<XScene> {
  const w = num(ctx, "width", 64);
  const h = num(ctx, "height", 64);
  const stride = w * 4;
  const bufferSize = stride * h;
  const n = o.buffers ?? 2;
  await c.createWindow(w, h);
  const fd = await c.helper.memfd(o.seal ? MFD_ALLOW_SEALING : 0);
  await c.helper.ftruncate(fd, bufferSize * n);
  if (o.seal) await c.helper.seal(fd, o.seal);
  const seg = await c.attach(fd);
  const buffers = Array.from({ length: n }, (_, i) => ({
    seg,
    offset: i * bufferSize,
    width: w,
    height: h,
    stride,
    frame: -1,
  }));
  // The helper keeps `fd` open throughout: it stands for the client's own mapping, through
  // which the model's client draws even after closing its fd.
  await c.conn.sync();
  return { fd, seg, buffers, bufferSize };
}

/** common.ts show(): draw, put; returns the put's sequence number. */
async function show(c: XClient, s: XScene, b: XBuffer, frame: number): Promise<number> {
  await c.draw(s.fd, b, frame);
  return c.put(b);
}

/** A buffer nobody drew: geometry only (create_buffer). */
function buffer(seg: number, offset: number, w: number, h: number, stride: number): XBuffer {
  return { seg, offset, width: w, height: h, stride, frame: -1 };
}

async function commitOnce(c: XClient, b: XBuffer): Promise<void> {
  const seq = await c.put(b);
  await c.untilPutDone(seq);
}

export const X11_SCRIPTS: Record<string, XScript> = {
  async "honest-renderer"(c, ctx) {
    const frames = num(ctx, "frames", ctx.frames);
    const seal = ctx.params.seal === true ? F_SEAL_SHRINK : undefined;
    const s = await scene(c, ctx, { buffers: num(ctx, "buffers", 2), seal });
    for (let f = 0; f < frames && !c.closed; f++) {
      const seq = await show(c, s, s.buffers[f % s.buffers.length], f);
      if (!(await c.untilPutDone(seq))) break;
      await ctx.onFrame();
    }
    await c.conn.sync();
  },

  async "truncate-after-commit"(c, ctx) {
    const s = await scene(c, ctx, { buffers: 1 });
    const b = s.buffers[0];
    await c.draw(s.fd, b, 0);
    const size = num(ctx, "size", 12);
    const seq = await c.putAround(b, () => c.helper.ftruncate(s.fd, size), undefined, size);
    await c.untilPutDone(seq);
    await c.conn.sync();
  },

  async "truncate-during-read"(c, ctx) {
    const s = await scene(c, ctx, { buffers: 1 });
    const b = s.buffers[0];
    // Xvfb copies a 64x64 image in microseconds: a truncation between two of its pages
    // cannot be arranged from outside. The put's last byte is held back until the file is
    // cut, so each round's read meets the truncation (the model's rounds that fault); the
    // model's `spin`/`after` idle steps have no real counterpart.
    for (let r = 0; r < num(ctx, "rounds", 8) && !c.closed; r++) {
      await c.helper.ftruncate(s.fd, s.bufferSize);
      await c.draw(s.fd, b, r);
      const seq = await c.putAround(b, () => c.helper.ftruncate(s.fd, 0), undefined, 0);
      await c.untilPutDone(seq);
    }
    await c.conn.sync();
  },

  async "pool-larger-than-file"(c, ctx) {
    const w = num(ctx, "width", 64);
    const h = num(ctx, "height", 64);
    const fileSize = num(ctx, "fileSize", 4096);
    await c.createWindow(w, h);
    const fd = await c.helper.memfd();
    await c.helper.ftruncate(fd, fileSize);
    const b = buffer(0, 0, w, h, w * 4);
    if (fileSize > 0) {
      const px = c.patternBytes(b, 0);
      await c.helper.pwrite(fd, px.subarray(0, Math.min(fileSize, px.length)), 0);
    }
    b.seg = await c.attach(fd);
    b.frame = 0;
    await c.helper.close(fd);
    await commitOnce(c, b);
    await c.conn.sync();
  },

  async "offset-past-end"(c, ctx) {
    const s = await scene(c, ctx, { buffers: 1 });
    const b0 = s.buffers[0];
    const b = buffer(s.seg, num(ctx, "offset", b0.stride), b0.width, b0.height, b0.stride);
    await c.put(b);
    await c.conn.sync();
  },

  async "stride-overflow"(c, ctx) {
    const s = await scene(c, ctx, { buffers: 1 });
    // create_buffer(0, width 1, height 0x8000, stride 0x10000): totalWidth 0x4000 pixels.
    await c.put(buffer(s.seg, 0, 1, 0x8000, 0x10000));
    await c.conn.sync();
  },

  async "huge-pool"(c, ctx) {
    const w = num(ctx, "width", 64);
    const h = num(ctx, "height", 64);
    const fd = await c.helper.memfd();
    await c.helper.ftruncate(fd, 4096);
    await c.createWindow(w, h);
    const size = 0x7fffffff;
    const seg = await c.attach(fd);
    await c.helper.close(fd);
    await commitOnce(c, buffer(seg, size - w * h * 4 - 4096, w, h, w * 4));
    await c.conn.sync();
  },

  async "pipe-fd"(c) {
    const [r, w] = await c.helper.pipe();
    await c.attach(r);
    await c.helper.close(r);
    await c.helper.close(w);
    await c.conn.sync();
  },

  async "zero-length-file"(c, ctx) {
    const w = num(ctx, "width", 64);
    const h = num(ctx, "height", 64);
    const fd = await c.helper.memfd();
    await c.createWindow(w, h);
    const seg = await c.attach(fd);
    await c.helper.close(fd);
    await commitOnce(c, buffer(seg, 0, w, h, w * 4));
    await c.conn.sync();
  },

  async "write-sealed-fd"(c, ctx) {
    const w = num(ctx, "width", 64);
    const h = num(ctx, "height", 64);
    const fd = await c.helper.memfd(MFD_ALLOW_SEALING);
    await c.helper.ftruncate(fd, w * h * 4);
    const b = buffer(0, 0, w, h, w * 4);
    await c.draw(fd, b, 0);
    await c.helper.seal(fd, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW);
    await c.createWindow(w, h);
    b.seg = await c.attach(fd);
    await c.helper.close(fd);
    await commitOnce(c, b);
    await c.conn.sync();
  },

  async "punch-holes"(c, ctx) {
    const s = await scene(c, ctx, { buffers: 1 });
    const b = s.buffers[0];
    await c.draw(s.fd, b, 0);
    const len = Math.max(PAGE, s.bufferSize - 2 * PAGE);
    const seq = await c.putAround(b, () => c.helper.punch(s.fd, PAGE, len));
    c.notes.push(`punched ${len} bytes at ${PAGE}`);
    await c.untilPutDone(seq);
    await c.conn.sync();
  },

  async "shrink-regrow"(c, ctx) {
    const s = await scene(c, ctx, { buffers: 1 });
    for (let r = 0; r < num(ctx, "rounds", 6) && !c.closed; r++) {
      await c.helper.ftruncate(s.fd, 0);
      await c.helper.ftruncate(s.fd, s.bufferSize);
      const seq = await show(c, s, s.buffers[0], r);
      await c.untilPutDone(seq);
    }
    await c.conn.sync();
  },

  async "fork-child-truncates"(c, ctx) {
    const s = await scene(c, ctx, { buffers: 1 });
    const b = s.buffers[0];
    for (let r = 0; r < num(ctx, "rounds", 6) && !c.closed; r++) {
      await c.helper.ftruncate(s.fd, s.bufferSize);
      await c.draw(s.fd, b, r);
      const seq = await c.putAround(
        b,
        async () => {
          const pid = await c.helper.forkTruncate(s.fd, 0);
          if (r === 0) c.notes.push(`forked pid ${pid}`);
        },
        undefined,
        0,
      );
      await c.untilPutDone(seq);
    }
    await c.conn.sync();
  },

  async "destroy-buffer-then-shrink"(c, ctx) {
    const s = await scene(c, ctx, { buffers: 1 });
    const b = s.buffers[0];
    await c.draw(s.fd, b, 0);
    // put, wl_buffer.destroy (nothing on the X wire), ShmDetach, truncate: one step, so the
    // put's read meets the truncation and ShmDetach is dispatched in the same turn.
    const detach = { name: "ShmDetach", bytes: encodeShmDetach(c.conn.shm.majorOpcode, s.seg) };
    const seq = await c.putAround(b, () => c.helper.ftruncate(s.fd, 0), detach, 0);
    await c.untilPutDone(seq);
    await c.conn.sync();
    await c.conn.sync();
  },

  async "shown-then-truncated"(c, ctx) {
    const s = await scene(c, ctx, { buffers: 1 });
    const b = s.buffers[0];
    await c.untilPutDone(await show(c, s, b, 0));
    await c.helper.ftruncate(s.fd, num(ctx, "size", 12));
    await c.untilPutDone(await c.put(b));
    await c.conn.sync();
  },

  async "truncate-outside-damage"(c, ctx) {
    // A commit is a put of the whole image (the translation every script makes; MIT-SHM has
    // no damage): the model's Xorg reads B whole too, so both meet the truncated rows.
    const s = await scene(c, ctx, { buffers: 2 });
    await c.untilPutDone(await show(c, s, s.buffers[0], 0));
    await c.draw(s.fd, s.buffers[1], 1);
    await c.helper.ftruncate(s.fd, s.bufferSize + PAGE);
    await c.untilPutDone(await c.put(s.buffers[1]));
    await c.conn.sync();
  },

  async "disconnect-mid-request"(c, ctx) {
    const mode = str(ctx, "mode", "after-commit");
    const s = await scene(c, ctx, { buffers: 1 });
    c.notes.push(`mode ${mode}`);
    if (mode === "half-frame") {
      const full = c.putBytes(s.buffers[0]);
      await c.conn.sendRaw(full.subarray(0, full.length >> 1));
    } else {
      await show(c, s, s.buffers[0], 0);
    }
    await c.conn.disconnect();
  },

  async "flood-pools"(c, ctx) {
    const fd = await c.helper.memfd();
    await c.helper.ftruncate(fd, 4096);
    const count = num(ctx, "count", 2000);
    const burst = num(ctx, "burst", 50);
    let sent = 0;
    for (; sent < count && !c.closed; sent++) {
      await c.attach(fd);
      if (sent % burst === burst - 1) await c.conn.sync();
    }
    c.notes.push(`segments attached: ${sent}`);
    await c.helper.close(fd);
    await c.conn.sync();
  },
};

/**
 * Why a behaviour has no MIT-SHM form: the model policy's own list (one source, so a real
 * cell and a model cell are n/a together), plus the model's worker-thread behaviours.
 */
export const X11_NOT_APPLICABLE: Readonly<Record<string, string>> = {
  ...XORG_NOT_APPLICABLE,
  "worker-exits": "about the model's client worker threads",
  "worker-hangs": "about the model's client worker threads",
  "worker-throws": "about the model's client worker threads",
};

export function x11Applies(behaviour: string): boolean {
  return behaviour in X11_SCRIPTS;
}
