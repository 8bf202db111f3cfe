/**
 * One client of a run, as the lab sees it: its behaviour and runtime, the two ends of its
 * connection, which of its frames reached the compositor, who closed its connection, and
 * what its region of the output shows.
 */
import type { Behaviour, SystemEvents } from "../client/behaviour.ts";
import { Client } from "../client/client.ts";
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

export class Participant {
  readonly client: Client;
  readonly runtime: ClientRuntime;
  readonly serverId: number;
  readonly toServer: QueueTransport;
  readonly toClient: QueueTransport;
  /** wl_surface.commit requests delivered to the compositor so far. */
  private commitsDelivered = 0;
  /** The pattern frame of the latest delivered commit, per surface. */
  readonly shown = new Map<number, number>();
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
    if (rec && rec.frame >= 0) this.shown.set(rec.surface, rec.frame);
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
    const expected = this.shown.get(place.surface);
    if (expected === undefined) return undefined;
    const stale: number[] = [];
    for (let f = Math.max(0, expected - 16); f < expected; f++) stale.push(f);
    const c = classifyRegion({
      seed,
      pixels: fb,
      stride: comp.width * 4,
      x: place.x,
      y: place.y,
      width: place.width,
      height: place.height,
      expected: { client: this.index, frame: expected },
      stale,
      foreign: others.filter((q) => q !== this).map((q) => ({ client: q.index })),
    });
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
