/**
 * One screenshot of a real compositor's output, taken by a separate real client over the
 * binary wire: weston_screenshooter where offered (weston --debug), else
 * zwlr_screencopy_manager_v1 (sway, wlroots). The pixels land in a memfd of this client,
 * read back with pread. A compositor that offers neither gives `unavailable`.
 *
 * Then `locateAndClassify` finds an honest client's window in the screenshot by the client
 * tag every pattern pixel carries (client/pattern.ts) and classifies its pixels with the
 * lab's own classifyRegion, so a real "correct" means what a model "correct" means.
 */
import {
  classifyRegion,
  clientTag,
  type PixelClass,
  pixelAt,
  worsePixel,
} from "../client/pattern.ts";
import { OP, WlClientProcess } from "../native/wl-client.ts";
import { BASE_SCHEMA, getInterface } from "../protocol/schema.ts";
import { CAPTURE_INTERFACES } from "../protocol/schema-capture.ts";
import {
  encodeWire,
  type WireInterfaceSpec,
  type WireMessage,
  WireReader,
} from "../protocol/wire.ts";
import { boundedWait } from "./bounded-wait.ts";

export interface Screenshot {
  width: number;
  height: number;
  stride: number;
  /** wl_shm format code of the pixels. */
  format: number;
  pixels: Uint8Array;
  via: "weston_screenshooter" | "zwlr_screencopy_manager_v1";
}

export type CaptureResult = { ok: true; shot: Screenshot } | { ok: false; why: string };

/** A capture client's own request failed in the helper (sendmsg, memfd_create, pread...). */
export class CaptureError extends Error {
  readonly code = "SHMLAB_ERR_CAPTURE";
  constructor(
    message: string,
    /** The helper's -errno, as a positive errno number. */
    readonly errno: number,
  ) {
    super(message);
    this.name = "CaptureError";
  }
}

const MFD_CLOEXEC = 1;
const XRGB8888 = 1;
/** A window is where a run of this many pixels carries the client's tag. */
const RUN = 8;

function spec(name: string): WireInterfaceSpec | undefined {
  return (
    (getInterface(BASE_SCHEMA, name) as WireInterfaceSpec | undefined) ?? CAPTURE_INTERFACES[name]
  );
}

/** A minimal event-driven client on one helper process: ids, requests, awaited events. */
class CaptureClient {
  private nextId = 2;
  private readonly ifaces = new Map<number, string>([[1, "wl_display"]]);
  private readonly reader = new WireReader();
  private readonly events: (WireMessage & { iface: string; name: string })[] = [];
  private wake: (() => void) | null = null;
  closed = false;

  constructor(private readonly proc: WlClientProcess) {
    proc.onData((bytes, fds) => {
      this.reader.push(bytes, fds);
      for (;;) {
        const m = this.reader.next((id, op) => {
          const i = this.ifaces.get(id);
          return (i && spec(i)?.events[op]) || null;
        });
        if (!m) break;
        if (m.spec)
          this.events.push({ ...m, iface: this.ifaces.get(m.objectId)!, name: m.spec.name });
      }
      this.wake?.();
    });
    proc.onSocketClosed(() => {
      this.closed = true;
      this.wake?.();
    });
  }

  request(objectId: number, name: string, args: unknown[], newIface?: string): number {
    const iface = spec(this.ifaces.get(objectId)!)!;
    const opcode = iface.requests.findIndex((r) => r.name === name);
    let id = 0;
    const filled = iface.requests[opcode].args.map((s, i) => {
      if (s.type !== "new_id") return args[i];
      id = this.nextId++;
      this.ifaces.set(id, s.interface ?? newIface ?? (args[i - 2] as string));
      return id;
    });
    const out = encodeWire(objectId, opcode, iface.requests[opcode].args, filled);
    const r = this.proc.call(OP.SEND, out.fds, out.bytes);
    if (r.status < 0) throw new CaptureError(`sendmsg: errno ${-r.status}`, -r.status);
    return id;
  }

  /** Waits for the first event that `pred` accepts (taking it), until `deadline`. */
  async event(
    pred: (e: WireMessage & { iface: string; name: string }) => boolean,
    deadline: number,
  ): Promise<(WireMessage & { iface: string; name: string }) | null> {
    for (;;) {
      const i = this.events.findIndex(pred);
      if (i >= 0) return this.events.splice(i, 1)[0];
      if (this.closed || Date.now() >= deadline) return null;
      // The timer goes with the wait: one left behind per event kept a CLI process alive
      // until the capture's deadline (up to weston's 20 s start budget) after all was done.
      await new Promise<void>((r) => {
        const timer = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.wake = () => {
          clearTimeout(timer);
          r();
        };
      });
      this.wake = null;
    }
  }

  async roundtrip(deadline: number): Promise<boolean> {
    const cb = this.request(1, "sync", [0]);
    return (await this.event((e) => e.objectId === cb && e.name === "done", deadline)) !== null;
  }

  taken(): (WireMessage & { iface: string; name: string })[] {
    return this.events;
  }

  call(op: number, args: number[], data?: Uint8Array) {
    const r = this.proc.call(op, args, data);
    if (r.status < 0) throw new CaptureError(`wl-client op ${op}: errno ${-r.status}`, -r.status);
    return r;
  }
}

/** Takes one screenshot through `proc` (already started, not yet connected). */
export async function captureScreen(
  proc: WlClientProcess,
  socket: string,
  timeoutMs: number,
): Promise<CaptureResult> {
  const deadline = Date.now() + timeoutMs;
  const r = proc.call(OP.CONNECT, [], new TextEncoder().encode(socket));
  if (r.status < 0) return { ok: false, why: `cannot connect: errno ${-r.status}` };
  const c = new CaptureClient(proc);
  const registry = c.request(1, "get_registry", [0]);
  if (!(await c.roundtrip(deadline))) return { ok: false, why: "no registry" };
  const globals = new Map<string, { name: number; version: number }>();
  for (const e of c.taken().splice(0))
    if (e.objectId === registry && e.name === "global")
      globals.set(e.args[1] as string, { name: e.args[0] as number, version: e.args[2] as number });
  const bind = (iface: string, version: number) =>
    c.request(registry, "bind", [globals.get(iface)!.name, iface, version, 0]);
  const via = globals.has("weston_screenshooter")
    ? "weston_screenshooter"
    : globals.has("zwlr_screencopy_manager_v1")
      ? "zwlr_screencopy_manager_v1"
      : null;
  if (!via) return { ok: false, why: "the compositor offers no capture protocol to clients" };
  if (!globals.has("wl_output") || !globals.has("wl_shm")) return { ok: false, why: "no output" };
  const shm = bind("wl_shm", 1);
  const output = bind("wl_output", 1);
  const shooter = bind(via, 1);
  if (!(await c.roundtrip(deadline))) return { ok: false, why: "bind failed" };
  let width = 0;
  let height = 0;
  let stride = 0;
  let format = XRGB8888;
  let frame = 0;
  if (via === "weston_screenshooter") {
    const mode = c
      .taken()
      .find((e) => e.objectId === output && e.name === "mode" && ((e.args[0] as number) & 1) === 1);
    if (!mode) return { ok: false, why: "wl_output sent no current mode" };
    width = mode.args[1] as number;
    height = mode.args[2] as number;
    stride = width * 4;
  } else {
    frame = c.request(shooter, "capture_output", [0, 0, output]);
    const b = await c.event(
      (e) => e.objectId === frame && (e.name === "buffer" || e.name === "failed"),
      deadline,
    );
    if (!b || b.name === "failed") return { ok: false, why: "screencopy offered no shm buffer" };
    [format, width, height, stride] = b.args as number[];
  }
  const size = stride * height;
  const fd = c.call(OP.MEMFD, [MFD_CLOEXEC], new TextEncoder().encode("shmlab-capture")).vals[0];
  c.call(OP.FTRUNCATE, [fd, size]);
  const pool = c.request(shm, "create_pool", [0, fd, size]);
  const buffer = c.request(pool, "create_buffer", [0, 0, width, height, stride, format]);
  let ok: boolean;
  if (via === "weston_screenshooter") {
    c.request(shooter, "shoot", [output, buffer]);
    ok = (await c.event((e) => e.objectId === shooter && e.name === "done", deadline)) !== null;
  } else {
    c.request(frame, "copy", [buffer]);
    const done = await c.event(
      (e) => e.objectId === frame && (e.name === "ready" || e.name === "failed"),
      deadline,
    );
    ok = done?.name === "ready";
    const flags = c.taken().find((e) => e.objectId === frame && e.name === "flags");
    if (ok && flags && ((flags.args[0] as number) & 1) === 1)
      return { ok: false, why: "screencopy frame is y-inverted (not handled)" };
  }
  if (!ok)
    return { ok: false, why: `${via} did not deliver (${c.closed ? "disconnected" : "timeout"})` };
  const pixels = c.call(OP.PREAD, [fd, size, 0]).data;
  return { ok: true, shot: { width, height, stride, format, pixels, via } };
}

/**
 * One screenshot by a helper process of its own, started here and stopped (a bounded wait
 * for its exit) whatever happened.
 */
export async function screenshotOnce(
  binary: string,
  socket: string,
  timeoutMs: number,
): Promise<CaptureResult> {
  const proc = await WlClientProcess.start(binary);
  try {
    return await captureScreen(proc, socket, timeoutMs);
  } finally {
    proc.kill();
    await boundedWait(proc.exited(), 2000);
  }
}

/** A window's rectangle on screen. */
export interface WindowRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * Where client `index`'s window sits: the exact origin of its latest frame where 4 visible
 * pixels of it match, else the top-left of the runs of its tag. null: not on screen.
 *
 * Every run of its tag proposes an origin, and the one under which most of the window's
 * pixels are its latest frame wins: the first run on screen need not be the window. A
 * stride lie's window shows a copy of another client's pool (fuzz finding 4), which is
 * that client's frame too; measured on cage, the copy (row 0 of the frame, in the liar's
 * last row) came first in scan order and put the honest window at the copy's place.
 */
export function findWindow(
  shot: Screenshot,
  seed: number,
  index: number,
  latestFrame: number,
  width: number,
  height: number,
): { x: number; y: number; exact: boolean } | null {
  const tag = clientTag(index);
  const px = reader(shot);
  let x0 = Infinity;
  let y0 = Infinity;
  const starts: { x: number; y: number }[] = [];
  // xrgb8888 screenshots may carry any top byte: only the tag byte is compared
  const tagged = (x: number, y: number) => ((px(x, y) >>> 16) & 0xff) === tag;
  for (let y = 0; y < shot.height; y++) {
    let run = 0;
    for (let x = 0; x < shot.width; x++) {
      run = tagged(x, y) ? run + 1 : 0;
      // a run, not a pixel: a background or title-bar colour may share the tag byte
      if (run === RUN) {
        starts.push({ x: x - RUN + 1, y });
        if (y < y0) y0 = y;
        if (x - RUN + 1 < x0) x0 = x - RUN + 1;
      }
    }
  }
  if (starts.length === 0) return null;
  // The exact origin, where a run of the latest frame is visible: the window's top-left
  // corner may be covered by another window, which would shift a bounding-box origin.
  let best: { x: number; y: number; score: number } | null = null;
  const tried = new Set<string>();
  for (const start of starts) {
    const o = exactOrigin(px, start, seed, index, latestFrame, width, height);
    if (!o || tried.has(`${o.x},${o.y}`)) continue;
    tried.add(`${o.x},${o.y}`);
    const score = matching(shot, px, o, seed, index, latestFrame, width, height);
    if (!best || score > best.score) best = { ...o, score };
  }
  return best ? { x: best.x, y: best.y, exact: true } : { x: x0, y: y0, exact: false };
}

/** Pixels of the window at `o` on screen that are its latest frame (rgb compared). */
function matching(
  shot: Screenshot,
  px: (x: number, y: number) => number,
  o: { x: number; y: number },
  seed: number,
  index: number,
  frame: number,
  width: number,
  height: number,
): number {
  let n = 0;
  for (let by = 0; by < height; by++)
    for (let bx = 0; bx < width; bx++) {
      const x = o.x + bx;
      const y = o.y + by;
      if (x < 0 || y < 0 || x >= shot.width || y >= shot.height) continue;
      if ((px(x, y) & 0xffffff) === (pixelAt(seed, index, frame, bx, by) & 0xffffff)) n++;
    }
  return n;
}

/**
 * Finds client `index`'s window by its tag and classifies it against its latest frame,
 * with the lab's ranking (the worst class present). "none": no pixel of it is on screen.
 *
 * `covers`: windows whose placement is known (another honest client's window, found at the
 * exact origin of its own latest frame, with the size it asked for). Wrong pixels where such
 * a window overlaps this one are "unchecked": stacking is not known, so they may be its.
 * Nothing else makes a window unchecked. Pixels alone cannot tell a window stacked over
 * this one from this one's own zero or foreign contents — a hostile client's zeroed window
 * next to the victim looks the same at the edge — so a guess from them would hide harm.
 */
export function locateAndClassify(
  shot: Screenshot,
  seed: number,
  index: number,
  latestFrame: number,
  width: number,
  height: number,
  others: readonly number[],
  covers: readonly WindowRect[] = [],
): {
  pixels: PixelClass | "none" | "unchecked";
  at?: { x: number; y: number };
  counts?: Record<string, number>;
  why?: string;
} {
  const found = findWindow(shot, seed, index, latestFrame, width, height);
  if (!found) return { pixels: "none" };
  const { x: x0, y: y0 } = found;
  const rx = Math.max(0, x0);
  const ry = Math.max(0, y0);
  const w = Math.min(x0 + width, shot.width) - rx;
  const h = Math.min(y0 + height, shot.height) - ry;
  const pixels = normalisedPixels(shot);
  const c = classifyRegion({
    seed,
    pixels,
    stride: shot.stride,
    x: rx,
    y: ry,
    width: w,
    height: h,
    expected: { client: index, frame: latestFrame },
    stale: Array.from({ length: latestFrame }, (_, i) => i),
    foreign: others.map((client) => ({ client })),
    bufferX: rx - x0,
    bufferY: ry - y0,
  });
  let worst: PixelClass = "correct";
  for (const k of ["stale", "other", "zero", "foreign"] as const)
    if (c[k] > 0) worst = worsePixel(worst, k);
  const at = { x: x0, y: y0 };
  const over = covers.find((r) => overlaps(r, { x: rx, y: ry, width: w, height: h }));
  if (worst !== "correct" && over) {
    const why = `overlapped by a known window at ${over.x},${over.y} ${over.width}x${over.height}`;
    return { pixels: "unchecked", at, counts: { ...c }, why };
  }
  return { pixels: worst, at, counts: { ...c } };
}

function overlaps(a: WindowRect, b: WindowRect): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

function reader(shot: Screenshot): (x: number, y: number) => number {
  const dv = new DataView(shot.pixels.buffer, shot.pixels.byteOffset, shot.pixels.byteLength);
  return (x, y) => dv.getUint32(y * shot.stride + x * 4, true);
}

/** Where (0, 0) of the latest frame sits, from 4 visible pixels at `first`, if they match. */
function exactOrigin(
  px: (x: number, y: number) => number,
  first: { x: number; y: number },
  seed: number,
  index: number,
  frame: number,
  width: number,
  height: number,
): { x: number; y: number } | null {
  const want = [0, 1, 2, 3].map((i) => px(first.x + i, first.y) & 0xffffff);
  for (let by = 0; by < height; by++)
    for (let bx = 0; bx + 3 < width; bx++) {
      let ok = true;
      for (let i = 0; i < 4 && ok; i++)
        ok = (pixelAt(seed, index, frame, bx + i, by) & 0xffffff) === want[i];
      if (ok) return { x: first.x - bx, y: first.y - by };
    }
  return null;
}

/** An xrgb8888 screenshot's undefined top byte set to 0xff, as the client drew it. */
export function normalisedPixels(shot: Screenshot): Uint8Array {
  if (shot.format !== XRGB8888) return shot.pixels;
  const out = new Uint8Array(shot.pixels);
  for (let y = 0; y < shot.height; y++)
    for (let x = 0; x < shot.width; x++) {
      const off = y * shot.stride + x * 4 + 3;
      if (out[off - 3] | out[off - 2] | out[off - 1]) out[off] = 0xff;
    }
  return out;
}
