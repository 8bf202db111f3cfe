/**
 * Fuzz programs on X11: the JSON action lists of the model fuzzer (lab/fuzz/actions.ts; a
 * wl_shm client's vocabulary) run as one real MIT-SHM client against Xvfb, translated the
 * way the model policy `xorg-mit-shm` reads the same wl_shm requests (real/x11-client.ts has
 * the table), so the real run and the model run of one program can be compared.
 *
 * Two steps, because a program is compared on both sides and both must run the same one:
 *
 *  1. `x11ProgramForm(actions)` (static, before any run): the program's MIT-SHM form. Actions
 *     that have none are dropped, each with the reason, and the lab runs the *kept* list on
 *     the model too (any sub-list of a program is a program: slots are taken modulo what
 *     exists). Dropped: `resize` (MIT-SHM has no pool resize), `raw` (Wayland wire garbage:
 *     the X dispatcher's answer to X garbage is not modelled), and an `attach` naming a
 *     destroyed buffer (a Wayland protocol error on a dead id; an X client has no buffer
 *     object to name). This is the program-level form of the catalogue's `n/a` cells.
 *  2. `x11Program` (an X11 script, real/x11-behaviours.ts XScript): performs the kept list.
 *     Every action is attempted; an errno is the action's result and the client goes on, as
 *     the model's executor does (lab/fuzz/behaviour.ts). What each action becomes:
 *
 *       memfd, pipe, truncate, punch, fallocate, seal, close, dup, draw (pwrite of the
 *       client's own pattern)        → the same syscalls on real fds in the helper
 *       fork, child-truncate, child-exit → a real forked child that stays (x11-client.c)
 *       surface                      → CreateWindow 64×64 + MapWindow + CreateGC
 *       create-pool(f)               → ShmAttachFd(f): no size on the wire (the server
 *                                      fstat()s the file); a closed fd is refused locally
 *       create-buffer                → nothing on the wire: geometry kept
 *       destroy-pool                 → ShmDetach once no live buffer of it is left (the
 *                                      model's pool lives while a buffer holds it)
 *       destroy-buffer               → nothing on the wire (may release its pool, above)
 *       attach(+commit), commit      → at the commit, ShmPutImage of the attached buffer
 *                                      (format ARGB/XRGB8888 → ZPixmap depth 24, any other
 *                                      → an X format the server refuses: BadValue); a null
 *                                      attach → ClearArea; a commit with nothing newly
 *                                      attached reads nothing (the model's `dirty`)
 *       frame                        → a commit, then a round trip (no frame callbacks)
 *       roundtrip                    → GetInputFocus; yield → nothing; disconnect → close
 *
 * real/ sits below lab/: the actions are read here as plain JSON, and
 * test/x11-program.test.ts holds this file to lab/fuzz/actions.ts's vocabulary.
 */
import { frameBytes } from "../client/pattern.ts";
import type { XScript, XScriptContext } from "./x11-behaviours.ts";
import type { XBuffer, XClient } from "./x11-client.ts";
import { SyscallError } from "./x11-native.ts";
import { encodeClearArea, encodeShmDetach, Z_PIXMAP } from "./x11-wire.ts";

/** The model's name for a fuzz program's client (lab/fuzz/behaviour.ts FUZZ_BEHAVIOUR_NAME). */
export const X11_PROGRAM_BEHAVIOUR = "fuzz-actions";

const PG = 4096;
const MFD_ALLOW_SEALING = 0x2;
/** wl_shm formats that are a depth-24 ZPixmap on X (validation.ts XORG_PROFILE.formats). */
const ARGB8888 = 0;
const XRGB8888 = 1;
/** An image format ProcShmPutImage does not know (0-2 are XYBitmap, XYPixmap, ZPixmap). */
const NO_X_FORMAT = 3;
/** Every window of a program: the fuzz generator's largest buffer (DIMS in actions.ts). */
const WINDOW = 64;

/** An action as JSON: its kind `k` and its fields (lab/fuzz/actions.ts Action). */
export interface ProgramAction {
  k: string;
  [field: string]: unknown;
}

export interface DroppedAction {
  /** Index in the program as given. */
  i: number;
  k: string;
  why: string;
}

export interface X11ProgramForm {
  actions: ProgramAction[];
  dropped: DroppedAction[];
}

/**
 * What each action kind of lab/fuzz/actions.ts becomes on X11 (the executor's cases; the
 * test holds this list to the generator's ACTION_KINDS, so a new kind cannot slip by).
 */
export const X11_ACTION_FORM: Readonly<Record<string, string>> = {
  memfd: "memfd_create + ftruncate",
  pipe: "pipe (the write end closed)",
  truncate: "ftruncate",
  punch: "fallocate(PUNCH_HOLE|KEEP_SIZE)",
  fallocate: "fallocate(0)",
  seal: "F_ADD_SEALS",
  close: "close",
  dup: "dup",
  draw: "pwrite of the client's pattern",
  fork: "fork (a child that stays)",
  "child-truncate": "the child's ftruncate",
  "child-exit": "the child exits",
  surface: "CreateWindow + MapWindow + CreateGC",
  "create-pool": "ShmAttachFd",
  "create-buffer": "nothing on the wire",
  resize: "dropped: no pool resize",
  "destroy-pool": "ShmDetach once no live buffer holds it",
  "destroy-buffer": "nothing on the wire",
  attach: "at its commit: ShmPutImage, or ClearArea for a null buffer",
  commit: "ShmPutImage of the attached buffer",
  raw: "dropped: Wayland wire garbage",
  disconnect: "close the socket",
  yield: "nothing",
  frame: "commit + round trip",
  roundtrip: "GetInputFocus",
};

const RESIZE_WHY = "MIT-SHM has no pool resize (a segment is the file's size at attach)";
const RAW_WHY =
  "Wayland wire garbage; X11 garbage meets the X dispatcher (BadRequest, BadLength: client kept), which the model does not simulate";
const DEAD_BUFFER_WHY =
  "wl_surface.attach of a destroyed wl_buffer is a Wayland protocol error on a dead id; an X client has no buffer object to name";

/** Slot `i` of a list of n things (modulo, as the model's executor resolves it), or -1. */
function slotIndex(n: number, i: unknown): number {
  if (!n) return -1;
  const k = typeof i === "number" ? i : 0;
  return ((k % n) + n) % n;
}

function num(a: ProgramAction, field: string, d = 0): number {
  const v = a[field];
  return typeof v === "number" ? v : d;
}

/**
 * The program's MIT-SHM form: the actions that have one, in order, and the others with the
 * reason. Idempotent: the form of a form is itself.
 */
export function x11ProgramForm(actions: readonly unknown[]): X11ProgramForm {
  const kept: ProgramAction[] = [];
  const dropped: DroppedAction[] = [];
  // What exists, as the model's executor counts it: pools and buffers by slot, destroyed or
  // not (a create-buffer on a destroyed pool is refused locally and makes no buffer).
  const pools: boolean[] = [];
  const buffers: boolean[] = [];
  /** Files by slot: closed or not (a closed fd makes no pool: EBADF, nothing sent). */
  const files: boolean[] = [];
  for (let i = 0; i < actions.length; i++) {
    const a = actions[i] as ProgramAction;
    const drop = (why: string) => {
      dropped.push({ i, k: String(a?.k), why });
    };
    switch (a?.k) {
      case "resize":
        drop(RESIZE_WHY);
        continue;
      case "raw":
        drop(RAW_WHY);
        continue;
      case "memfd":
      case "pipe":
        files.push(false);
        break;
      case "dup": {
        const f = slotIndex(files.length, a.f);
        if (f >= 0 && !files[f]) files.push(false);
        break;
      }
      case "close": {
        const f = slotIndex(files.length, a.f);
        if (f >= 0) files[f] = true;
        break;
      }
      case "create-pool": {
        const f = slotIndex(files.length, a.f);
        if (f >= 0 && !files[f]) pools.push(false);
        break;
      }
      case "create-buffer": {
        const p = slotIndex(pools.length, a.p);
        if (p >= 0 && !pools[p]) buffers.push(false);
        break;
      }
      case "destroy-pool": {
        const p = slotIndex(pools.length, a.p);
        if (p >= 0) pools[p] = true;
        break;
      }
      case "destroy-buffer": {
        const b = slotIndex(buffers.length, a.b);
        if (b >= 0) buffers[b] = true;
        break;
      }
      case "attach": {
        const b = num(a, "b", -1) < 0 ? -1 : slotIndex(buffers.length, a.b);
        if (b >= 0 && buffers[b]) {
          drop(DEAD_BUFFER_WHY);
          continue;
        }
        break;
      }
    }
    kept.push(a);
  }
  return { actions: kept, dropped };
}

interface Segment {
  seg: number;
  /** destroy-pool was asked for; ShmDetach goes once no live buffer holds it. */
  destroyed: boolean;
  detached: boolean;
  buffers: Buf[];
}

interface Buf extends XBuffer {
  pool: Segment;
  format: number;
  destroyed: boolean;
}

interface Surface {
  window: number;
  gc: number;
  /** wl_surface.attach since the last commit: a buffer, null (detach), or nothing. */
  pending: Buf | null | undefined;
  /** What was done to the window, in order: puts (by sequence number) and clears. */
  history: ({ seq: number; width: number; height: number } | "clear")[];
  /**
   * The frame the lab expects here: the pattern frame of the last buffer committed with its
   * attach (lab/participant.ts `shown`, from the client library's commit records), or -1.
   */
  frame: number;
}

/** The executor's state for one client (lab/fuzz/behaviour.ts Executor, on X11). */
class XExecutor {
  files: number[] = [];
  pools: Segment[] = [];
  buffers: Buf[] = [];
  surfaces: Surface[] = [];
  forked = false;
  results: string[] = [];

  constructor(
    readonly c: XClient,
    readonly ctx: XScriptContext,
  ) {}

  private slot<T>(xs: readonly T[], i: unknown): T | undefined {
    const k = slotIndex(xs.length, i);
    return k < 0 ? undefined : xs[k];
  }

  private async fileSize(fd: number): Promise<number> {
    try {
      return await this.c.helper.fstatSize(fd);
    } catch (e) {
      // EBADF: the program closed it (the model's executor reads 0 too).
      if (e instanceof SyscallError && e.errno === "EBADF") return 0;
      throw e;
    }
  }

  private async size(arg: unknown, fd: number): Promise<number> {
    if (typeof arg === "number") return arg;
    const file = await this.fileSize(fd);
    if (arg === "file") return file;
    if (arg === "file+page") return file + PG;
    if (arg === "half") return Math.floor(file / 2);
    // "pool" sizes belong to resize, which has no X11 form.
    return file;
  }

  /** Performs one action; what it came to ("ok", "EBADF", "skipped (no file)"...). */
  async run(a: ProgramAction): Promise<string> {
    try {
      return (await this.perform(a)) ?? "ok";
    } catch (e) {
      if (e instanceof SyscallError) return e.errno;
      throw e;
    }
  }

  private async perform(a: ProgramAction): Promise<string | undefined> {
    const h = this.c.helper;
    switch (a.k) {
      case "memfd": {
        const fd = await h.memfd(a.sealing === true ? MFD_ALLOW_SEALING : 0);
        this.files.push(fd);
        if (num(a, "size") > 0) await h.ftruncate(fd, num(a, "size"));
        return;
      }
      case "pipe": {
        const [r, w] = await h.pipe();
        this.files.push(r);
        await h.close(w);
        return;
      }
      case "truncate": {
        const f = this.slot(this.files, a.f);
        if (f === undefined) return "skipped (no file)";
        await h.ftruncate(f, await this.size(a.size, f));
        return;
      }
      case "punch": {
        const f = this.slot(this.files, a.f);
        if (f === undefined) return "skipped (no file)";
        await h.punch(f, num(a, "offset"), num(a, "length"));
        return;
      }
      case "fallocate": {
        const f = this.slot(this.files, a.f);
        if (f === undefined) return "skipped (no file)";
        await h.fallocate(f, num(a, "offset"), num(a, "length"));
        return;
      }
      case "seal": {
        const f = this.slot(this.files, a.f);
        if (f === undefined) return "skipped (no file)";
        await h.seal(f, num(a, "seals"));
        return;
      }
      case "close": {
        const f = this.slot(this.files, a.f);
        if (f === undefined) return "skipped (no file)";
        await h.close(f);
        return;
      }
      case "dup": {
        const f = this.slot(this.files, a.f);
        if (f === undefined) return "skipped (no file)";
        this.files.push(await h.dup(f));
        return;
      }
      case "draw":
        return this.draw(a);
      case "fork":
        if (this.forked) return "skipped (already forked)";
        await h.fork();
        this.forked = true;
        return;
      case "child-truncate": {
        const f = this.slot(this.files, a.f);
        if (!this.forked) return "skipped (no child)";
        if (f === undefined) return "skipped (no file)";
        await h.childTruncate(f, await this.size(a.size, f));
        return;
      }
      case "child-exit":
        if (!this.forked) return "skipped (no child)";
        await h.childExit();
        this.forked = false;
        return;
      case "surface": {
        const place = this.c.index + this.surfaces.length * 8;
        const w = await this.c.createWindow(WINDOW, WINDOW, place);
        this.surfaces.push({ ...w, pending: undefined, history: [], frame: -1 });
        return;
      }
      case "create-pool":
        return this.createPool(a);
      case "create-buffer":
        return this.createBuffer(a);
      case "destroy-pool": {
        const p = this.slot(this.pools, a.p);
        if (!p) return "skipped (no pool)";
        if (p.destroyed) return "refused locally: no live object";
        p.destroyed = true;
        await this.detachIfUnused(p);
        return;
      }
      case "destroy-buffer": {
        const b = this.slot(this.buffers, a.b);
        if (!b) return "skipped (no buffer)";
        if (b.destroyed) return "refused locally: no live object";
        b.destroyed = true;
        await this.detachIfUnused(b.pool);
        return;
      }
      case "attach": {
        const s = this.slot(this.surfaces, a.s);
        if (!s) return "skipped (no surface)";
        const b = num(a, "b", -1) < 0 ? null : (this.slot(this.buffers, a.b) ?? null);
        s.pending = b;
        if (a.commit !== true) return;
        // Client.commit(surface, buffer) records the buffer's frame: what the lab expects.
        if (b && b.frame >= 0) s.frame = b.frame;
        await this.commit(s);
        return;
      }
      case "commit": {
        const s = this.slot(this.surfaces, a.s);
        if (!s) return "skipped (no surface)";
        await this.commit(s);
        return;
      }
      case "frame": {
        const s = this.slot(this.surfaces, a.s);
        if (!s) return "skipped (no surface)";
        await this.commit(s);
        await this.c.conn.sync();
        return;
      }
      case "roundtrip":
        await this.c.conn.sync();
        return;
      case "yield":
        return;
      case "disconnect":
        await this.c.conn.disconnect();
        return;
      default:
        // resize and raw are dropped by x11ProgramForm; an unknown kind is not an action.
        return `skipped (no X11 form for ${String(a.k)})`;
    }
  }

  private async draw(a: ProgramAction): Promise<string | undefined> {
    const f = this.slot(this.files, a.f);
    const b = this.slot(this.buffers, a.b);
    if (f === undefined || !b) return "skipped (no file or buffer)";
    // The model's executor's clamps (lab/fuzz/behaviour.ts "draw"), byte for byte.
    const w = Math.max(1, Math.min(64, b.width | 0));
    const hgt = Math.max(1, Math.min(64, b.height | 0));
    const frame = num(a, "frame");
    const px = frameBytes(this.ctx.seed, this.ctx.index, frame, w, hgt);
    const off = b.offset >= 0 && b.offset < 64 * PG ? b.offset : 0;
    await this.c.helper.pwrite(f, px, off);
    b.frame = frame;
    return;
  }

  private async createPool(a: ProgramAction): Promise<string | undefined> {
    const f = this.slot(this.files, a.f);
    if (f === undefined) return "skipped (no file)";
    // The model's client refuses to send an fd it does not have (EBADF, nothing sent);
    // sendmsg would refuse the same fd, but only after the request was counted.
    try {
      await this.c.helper.fstatSize(f);
    } catch (e) {
      if (e instanceof SyscallError && e.errno === "EBADF") return "EBADF";
      throw e;
    }
    const seg = await this.c.attach(f);
    this.pools.push({ seg, destroyed: false, detached: false, buffers: [] });
    return;
  }

  private createBuffer(a: ProgramAction): string | undefined {
    const p = this.slot(this.pools, a.p);
    if (!p) return "skipped (no pool)";
    if (p.destroyed) return "refused locally: no live object";
    const b: Buf = {
      seg: p.seg,
      offset: num(a, "offset"),
      width: num(a, "width"),
      height: num(a, "height"),
      stride: num(a, "stride"),
      format: num(a, "format", XRGB8888),
      frame: -1,
      pool: p,
      destroyed: false,
    };
    p.buffers.push(b);
    this.buffers.push(b);
    return;
  }

  /** ShmDetach once the pool is destroyed and no live buffer holds it. */
  private async detachIfUnused(p: Segment): Promise<void> {
    if (!p.destroyed || p.detached || p.buffers.some((b) => !b.destroyed)) return;
    p.detached = true;
    await this.c.conn.request("ShmDetach", encodeShmDetach(this.c.conn.shm.majorOpcode, p.seg));
  }

  /** wl_surface.commit: the pending attach, if any, shown (ShmPutImage) or cleared. */
  private async commit(s: Surface): Promise<void> {
    const b = s.pending;
    s.pending = undefined;
    if (b === undefined) return;
    if (b === null || b.destroyed) {
      // A null attach (or a buffer destroyed while pending: the model reads nothing).
      await this.c.conn.request("ClearArea", encodeClearArea(s.window));
      s.history.push("clear");
      return;
    }
    const format = b.format === ARGB8888 || b.format === XRGB8888 ? Z_PIXMAP : NO_X_FORMAT;
    const seq = await this.c.put(b, { format, window: s.window, gc: s.gc });
    if (seq) s.history.push({ seq, width: b.width, height: b.height });
  }

  /** What the window shows after the run: the last put the server did not refuse, if any. */
  private content(s: Surface): { width: number; height: number } | null {
    for (let k = s.history.length - 1; k >= 0; k--) {
      const h = s.history[k];
      if (h === "clear") return null;
      if (!this.c.conn.failedRequest(h.seq)) return h;
    }
    return null;
  }

  /**
   * The window the lab judges at the end, as the model places it (lab/participant.ts
   * classify): the client's first surface showing something, judged against the frame
   * expected there, at the geometry of its last put; nothing expected there is "none".
   */
  settleWindow(): void {
    const s = this.surfaces.find((x) => this.content(x) !== null);
    const shown = s ? this.content(s) : null;
    if (!s || !shown || s.frame < 0) {
      this.c.window = 0;
      this.c.lastFrame = -1;
      return;
    }
    this.c.window = s.window;
    this.c.gc = s.gc;
    this.c.width = Math.max(1, Math.min(WINDOW, shown.width));
    this.c.height = Math.max(1, Math.min(WINDOW, shown.height));
    this.c.lastFrame = s.frame;
  }
}

/** Results kept per client in the notes (the rest counted). */
const NOTED = 40;

/**
 * The X11 script of a fuzz program: `ctx.params.actions` (JSON), already in its MIT-SHM form
 * (the lab applies x11ProgramForm before it runs either side; anything without a form that
 * still arrives is skipped and noted here).
 */
export const x11Program: XScript = async (c, ctx) => {
  const list = JSON.parse(String(ctx.params.actions ?? "[]")) as ProgramAction[];
  const ex = new XExecutor(c, ctx);
  let i = 0;
  for (; i < list.length && !c.closed; i++) {
    const r = await ex.run(list[i]);
    if (ex.results.length < NOTED) ex.results.push(`${i} ${list[i].k}: ${r}`);
  }
  if (i < list.length) c.notes.push(`connection closed: stopped at action ${i}`);
  c.notes.push(`actions: ${ex.results.join("; ")}${list.length > NOTED ? " ..." : ""}`);
  // Every request processed, its errors in (the model's client stays until the run ends).
  if (!c.closed) await c.conn.sync();
  const first = c.conn.shm.firstEvent;
  c.completions = c.conn.events.filter((e) => e.type === first).length;
  ex.settleWindow();
};
