/**
 * One client of a run, as the lab sees it: its behaviour and runtime, the two ends of its
 * connection, which of its frames reached the compositor, who closed its connection, and
 * what its region of the output shows.
 */
import type { Behaviour, SystemEvents } from "../client/behaviour.ts";
import { Client, type PatternInset } from "../client/client.ts";
import { classifyRegion, worsePixel } from "../client/pattern.ts";
import { ClientRuntime, makeContext } from "../client/runtime.ts";
import { LocalSys } from "../client/sys.ts";
import type { Compositor } from "../compositor/compositor.ts";
import { decodeFrame } from "../protocol/codec.ts";
import { isProtocolError } from "../protocol/errors.ts";
import type { Kernel } from "../shm/kernel.ts";
import { createQueuePair, type QueueTransport } from "./queue-transport.ts";
import type { HonestResult, PixelClass, PixelCounts } from "./record.ts";
import type { ClosedBy } from "./verdict.ts";

function emptyCounts(): PixelCounts {
  return { correct: 0, stale: 0, zero: 0, foreign: 0, other: 0, total: 0 };
}

/**
 * A shown region of width x height, split into rectangles each expected to hold one frame:
 * the whole region, or the inset (clipped) and the bands around it.
 */
function regionsOf(
  width: number,
  height: number,
  shown: { frame: number; inset?: PatternInset },
): { x: number; y: number; width: number; height: number; frame: number }[] {
  const base = shown.frame;
  const i = shown.inset;
  const x0 = i ? Math.min(width, i.x) : 0;
  const y0 = i ? Math.min(height, i.y) : 0;
  const x1 = i ? Math.min(width, i.x + i.width) : 0;
  const y1 = i ? Math.min(height, i.y + i.height) : 0;
  if (!i || x1 <= x0 || y1 <= y0) return [{ x: 0, y: 0, width, height, frame: base }];
  const out = [
    { x: 0, y: 0, width, height: y0, frame: base },
    { x: 0, y: y1, width, height: height - y1, frame: base },
    { x: 0, y: y0, width: x0, height: y1 - y0, frame: base },
    { x: x1, y: y0, width: width - x1, height: y1 - y0, frame: base },
    { x: x0, y: y0, width: x1 - x0, height: y1 - y0, frame: i.frame },
  ];
  return out.filter((r) => r.width > 0 && r.height > 0);
}

/**
 * The opcode of a message frame ([objectId, opcode, args], codec.ts) read off its first
 * bytes when they are msgpack's compact forms: a fixarray of 3, an object id as a positive
 * fixint or uint8/16/32, an opcode as a positive fixint. Undefined for anything else (the
 * caller decodes then): where decodeFrame gives a message, its opcode is this one.
 */
export function peekOpcode(bytes: Uint8Array): number | undefined {
  if (bytes.length < 3 || bytes[0] !== 0x93) return undefined;
  const t = bytes[1];
  const idBytes = t <= 0x7f ? 0 : t === 0xcc ? 1 : t === 0xcd ? 2 : t === 0xce ? 4 : -1;
  if (idBytes < 0) return undefined;
  const at = 2 + idBytes;
  if (at >= bytes.length) return undefined;
  const op = bytes[at];
  return op <= 0x7f ? op : undefined;
}

export class Participant {
  readonly client: Client;
  readonly runtime: ClientRuntime;
  readonly serverId: number;
  readonly toServer: QueueTransport;
  readonly toClient: QueueTransport;
  /** wl_surface.commit requests delivered to the compositor so far. */
  private commitsDelivered = 0;
  /** The pattern frame (and a later-frame inset) of the latest delivered commit, per surface. */
  readonly shown = new Map<number, { frame: number; inset?: PatternInset }>();
  /** The worst class of its region on the last checked frame ("none": not shown). */
  lastPixels: PixelClass | "none" = "none";
  /** Who ended the connection first, while the run was going (null: still open). */
  closedBy: ClosedBy = null;
  /** Honest clients only: what their region showed, frame after frame. */
  readonly honestResult: HonestResult | null;
  /** Set once the run is over: closing the connection then is not part of what happened. */
  ended = false;

  constructor(
    readonly index: number,
    readonly behaviour: Behaviour,
    kernel: Kernel,
    comp: Compositor,
    seed: number,
    params: Readonly<Record<string, number | string | boolean>>,
    system: SystemEvents,
  ) {
    const label = `${behaviour.name}#${index}`;
    const proc = kernel.spawn(label);
    const [ct, st] = createQueuePair();
    st.onDropped = (fds) => {
      for (const h of fds) kernel.dropHandle(h);
    };
    ct.onDropped = st.onDropped;
    this.toServer = st;
    this.toClient = ct;
    this.serverId = comp.connect(st, { label }).id;
    this.client = new Client(ct, new LocalSys(kernel, proc), {
      label,
      schema: comp.server.schema,
    });
    const ctx = { ...makeContext(seed, index, params), system };
    this.runtime = new ClientRuntime(behaviour, this.client, ctx);
    // Whichever end closes first closed the connection: the other end hears of it only
    // when the scheduler delivers the close.
    st.onClose(() => {
      if (!this.ended && this.closedBy === null) this.closedBy = "compositor";
    });
    ct.onClose(() => {
      if (!this.ended && this.closedBy === null) this.closedBy = "client";
    });
    this.honestResult = behaviour.honest
      ? {
          pixels: "none",
          framesChecked: 0,
          framesCorrect: 0,
          counts: emptyCounts(),
          firstBadFrame: null,
        }
      : null;
  }

  get label(): string {
    return this.client.label;
  }

  get honest(): boolean {
    return this.behaviour.honest;
  }

  /** A commit with contents reached the compositor. */
  get committed(): boolean {
    return this.shown.size > 0;
  }

  /** Notes the frame of a wl_surface.commit about to be delivered to the compositor. */
  trackCommit(bytes: Uint8Array, commitOpcode: number): void {
    // Most frames are not commits: their opcode, read off the header, says so without a
    // decode (the server decodes every frame once anyway).
    const op = peekOpcode(bytes);
    if (op !== undefined && op !== commitOpcode) return;
    let f: ReturnType<typeof decodeFrame>;
    try {
      f = decodeFrame(bytes);
    } catch (e) {
      if (isProtocolError(e)) return; // malformed: the server will refuse it
      throw e;
    }
    if (f.kind !== "message" || f.opcode !== commitOpcode) return;
    const o = this.client.proto.objects.lookup(f.objectId);
    if (o?.interface !== "wl_surface") return;
    const rec = this.client.commits.find((c) => c.at === this.commitsDelivered);
    this.commitsDelivered++;
    if (rec && rec.frame >= 0)
      this.shown.set(rec.surface, { frame: rec.frame, ...(rec.inset ? { inset: rec.inset } : {}) });
  }

  /** Its region of the output now, classified, or undefined when it is not shown. */
  classify(
    comp: Compositor,
    seed: number,
    others: readonly Participant[],
  ): { worst: PixelClass; counts: PixelCounts } | undefined {
    const fb = new Uint8Array(
      comp.framebuffer.buffer,
      comp.framebuffer.byteOffset,
      comp.framebuffer.byteLength,
    );
    const place = comp.placements().find((x) => x.clientId === this.serverId);
    if (!place) return undefined;
    const shown = this.shown.get(place.surface);
    if (shown === undefined) return undefined;
    const foreign = others.filter((q) => q !== this).map((q) => ({ client: q.index }));
    const c = emptyCounts();
    // The region, or its parts around an inset holding a later frame, each against its frame.
    for (const r of regionsOf(place.width, place.height, shown)) {
      const stale: number[] = [];
      for (let f = Math.max(0, r.frame - 16); f < r.frame; f++) stale.push(f);
      const part = classifyRegion({
        seed,
        pixels: fb,
        stride: comp.width * 4,
        x: place.x + r.x,
        y: place.y + r.y,
        width: r.width,
        height: r.height,
        bufferX: r.x,
        bufferY: r.y,
        expected: { client: this.index, frame: r.frame },
        stale,
        foreign,
      });
      for (const k of Object.keys(c) as (keyof PixelCounts)[]) c[k] += part[k];
    }
    let worst: PixelClass = "correct";
    for (const k of ["stale", "other", "zero", "foreign"] as const)
      if (c[k] > 0) worst = worsePixel<PixelClass | "none">(worst, k) as PixelClass;
    return { worst, counts: c };
  }

  /**
   * Checks its region on this frame. Returns the worst class when an honest client's region
   * is not entirely correct for the first time (for the timeline), else null.
   */
  check(frame: number, comp: Compositor, seed: number, all: readonly Participant[]) {
    const got = this.classify(comp, seed, all);
    this.lastPixels = got ? got.worst : "none";
    const acc = this.honestResult;
    if (!acc || !got) return null;
    const { worst, counts: c } = got;
    acc.framesChecked++;
    for (const k of Object.keys(acc.counts) as (keyof PixelCounts)[]) acc.counts[k] += c[k];
    acc.pixels = worsePixel(acc.pixels, worst);
    if (worst === "correct") {
      acc.framesCorrect++;
      return null;
    }
    if (acc.firstBadFrame !== null) return null;
    acc.firstBadFrame = frame;
    return `frame ${frame}: ${worst} (${c.correct}/${c.total} correct)`;
  }
}
