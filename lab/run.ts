/**
 * One deterministic run: a compositor with a policy, honest bystanders and the client under
 * test, all as processes of one simulated kernel on one thread. A seeded scheduler picks,
 * action by action, which message is delivered and which client steps next, and may run a
 * client step inside any page of the compositor's reads. The same spec replays exactly.
 *
 * Everything in the record is read off what the simulation did: the compositor's death from
 * its ProcessKilled, errors from what the server sent, pixels from the output framebuffer.
 */
import { createHash } from "node:crypto";
import type { Behaviour, SystemEvents } from "../client/behaviour.ts";
import { getBehaviour } from "../client/behaviours/index.ts";
import type { Client } from "../client/client.ts";
import { pixelAt, renderFrame } from "../client/pattern.ts";
import type { ClientRuntime } from "../client/runtime.ts";
import { Compositor } from "../compositor/compositor.ts";
import { getPolicy } from "../compositor/policies/index.ts";
import type { Policy } from "../compositor/policy.ts";
import { getInterface } from "../protocol/schema.ts";
import { ProcessKilled } from "../shm/errors.ts";
import { Kernel } from "../shm/kernel.ts";
import { reclaim } from "../shm/reclaim.ts";
import type { KernelFeature } from "../shm/scenario.ts";
import { Participant } from "./participant.ts";
import { encodePng } from "./png.ts";
import {
  type ClientRecord,
  type PixelClass,
  RUN_RECORD_SCHEMA,
  type RunRecord,
  type RunSpec,
} from "./record.ts";
import { Rng } from "./rng.ts";
import { type Actor, SeededScheduler } from "./scheduler.ts";
import { errorName, Timeline } from "./timeline.ts";
import {
  type ClientFacts,
  type CompositorFacts,
  hostileOutcomeOf,
  type RunFacts,
  verdictOf,
} from "./verdict.ts";
import { WireTracer } from "./wire-trace.ts";

const HONEST = "honest-renderer";
const WIDTH = 256;
const HEIGHT = 128;
const SURFACE = 48;
const ACTIONS_PER_FRAME = 400;

const DEFAULT_SPEC: Omit<RunSpec, "policy" | "behaviour"> = {
  honest: 2,
  variant: "standard",
  seed: 1,
  frames: 16,
  kernelFeatures: [],
  preempt: 0.3,
  params: {},
};

export function makeSpec(p: Partial<RunSpec> & Pick<RunSpec, "policy" | "behaviour">): RunSpec {
  return { ...DEFAULT_SPEC, ...p, params: { ...DEFAULT_SPEC.params, ...(p.params ?? {}) } };
}

/** The shortest command that reproduces a run. */
export function replayCommand(s: RunSpec): string {
  const parts = [
    "npx shmlab compare",
    `--policies ${s.policy}`,
    `--behaviours ${s.behaviour}`,
    `--seed ${s.seed}`,
  ];
  if (s.frames !== DEFAULT_SPEC.frames) parts.push(`--frames ${s.frames}`);
  if (s.variant !== DEFAULT_SPEC.variant) parts.push(`--variant ${s.variant}`);
  if (s.honest !== DEFAULT_SPEC.honest) parts.push(`--honest ${s.honest}`);
  for (const f of s.kernelFeatures) parts.push(`--kernel-feature ${f}`);
  return parts.join(" ");
}

/** What hooks see of a run in progress (for the fuzzer's invariants). */
export interface RunView {
  frame: number;
  kernel: Kernel;
  compositor: Compositor;
  clients: readonly {
    index: number;
    label: string;
    honest: boolean;
    runtime: ClientRuntime;
    client: Client;
    /** The worst pixel class of this client's region on the last frame ("none": not shown). */
    lastPixels: PixelClass | "none";
    /** A commit with contents reached the compositor. */
    committed: boolean;
    /** Who ended its connection (null: still open). */
    closedBy: Participant["closedBy"];
  }[];
}

export interface RunOptions {
  /** Policy and behaviour objects already loaded (user files); by name otherwise. */
  policy?: Policy;
  behaviour?: Behaviour;
  /** Keep PNG images of the last frame in the record. */
  images?: boolean;
  /**
   * Called after every scheduler action and after every frame; may throw to stop the run.
   * They watch and must not change the run: a frame's quiescent end (Run.rest) calls
   * afterAction for steps it does not run, trusting that nothing changed in between.
   */
  afterAction?: (v: RunView) => void;
  afterFrame?: (v: RunView) => void;
  /**
   * More clients under test, placed between the honest bystanders and the client under
   * test (the fuzzer runs several hostile clients at once). Their records are kept; the
   * verdict stays the last client's.
   */
  companions?: readonly Behaviour[];
  /** The plain facts the verdict was computed from (a real run is held against them). */
  onFacts?: (f: RunFacts) => void;
  /**
   * Record the run's wire traffic here, in WAYLAND_DEBUG form with kernel events as
   * comments (wire-trace.ts). The caller's array: a run that throws keeps what it wrote.
   * The record then carries it as `trace`.
   */
  trace?: string[];
  /**
   * Run every idle step of a frame's quiescent end (Run.rest skips them): the step-by-step
   * reference the fast path is tested against. Same record and digest either way.
   */
  stepByStep?: boolean;
}

/**
 * Runs a spec to its end and returns its record. A hook that throws stops the run; its
 * clients are stopped all the same (and the error propagates).
 */
export function runOne(spec: RunSpec, opts: RunOptions = {}): RunRecord {
  const run = new Run(spec, opts);
  try {
    run.play();
  } finally {
    run.end();
  }
  return run.record();
}

/** One run: build it, `play()` it, `end()` it (always), then read its `record()`. */
export class Run {
  readonly kernel: Kernel;
  readonly comp: Compositor;
  readonly timeline: Timeline;
  readonly view: RunView;
  private readonly sched: SeededScheduler;
  private readonly pick: Rng;
  private readonly people: Participant[];
  private readonly actors: PlayActor[];
  private readonly ready: PlayActor[] = [];
  private readonly commitOpcode: number;
  private virtualMs = 0;
  /** Bumped whenever a step changed something (PlayActor.restedAt). */
  private epoch = 0;
  private ended = false;
  private readonly tracer?: WireTracer;

  constructor(
    readonly spec: RunSpec,
    private readonly opts: RunOptions = {},
  ) {
    const policy = opts.policy ?? getPolicy(spec.policy);
    const rng = new Rng(spec.seed);
    this.sched = new SeededScheduler(rng.fork("preempt"), { preemptProbability: spec.preempt });
    const features = [...new Set<KernelFeature>([...policy.features, ...spec.kernelFeatures])];
    this.kernel = new Kernel({
      features,
      scheduler: this.sched,
      trace: true,
      memoryLimit: 512 * 1024 * 1024,
    });
    if (opts.trace) this.tracer = new WireTracer(this.kernel, () => this.virtualMs, opts.trace);
    this.comp = new Compositor({
      kernel: this.kernel,
      policy,
      width: WIDTH,
      height: HEIGHT,
      // Virtual time, so that the server's per-second message limit trips at the same
      // message in every replay: 60 frames per second, a tenth of a microsecond per action.
      server: { variant: spec.variant, now: () => this.virtualMs, onMessage: this.tracer?.message },
    });
    this.tracer?.watch(this.comp);
    this.sched.compositorPid = this.comp.proc.pid;
    this.pick = rng.fork("actions");
    this.timeline = new Timeline(this.kernel, this.comp);
    this.people = this.join(opts.behaviour ?? getBehaviour(spec.behaviour));
    this.commitOpcode = getInterface(this.comp.server.schema, "wl_surface")!.requests.findIndex(
      (r) => r.name === "commit",
    );
    this.actors = this.makeActors();
    this.view = this.makeView();
  }

  /** The roster: honest bystanders, companions, then the client under test. */
  private join(attacker: Behaviour): Participant[] {
    const spec = this.spec;
    const honest = getBehaviour(HONEST);
    // The client under test goes last, so bystanders' indices do not depend on it.
    const roster = [
      ...Array.from({ length: spec.honest }, () => honest),
      ...(this.opts.companions ?? []),
      attacker,
    ];
    // Bystanders seal their pools against shrinking, as careful clients do today (and as
    // the seals-required policy demands); the client under test follows spec.params.
    const bystander = { width: SURFACE, height: SURFACE, frames: 0, seal: true };
    const tested = { width: SURFACE, height: SURFACE, frames: 0, ...spec.params };
    const system: SystemEvents = {
      // The machine comes under memory pressure: kswapd's reclaim, an event of the run.
      memoryPressure: () => {
        const pages = reclaim(this.kernel);
        this.timeline.note("system", "memory pressure", `${pages} droppable page(s) reclaimed`);
        return pages;
      },
    };
    return roster.map(
      (b, i) =>
        new Participant(
          i,
          b,
          this.kernel,
          this.comp,
          spec.seed,
          i >= spec.honest ? tested : bystander,
          system,
        ),
    );
  }

  private makeActors(): PlayActor[] {
    const comp = this.comp;
    const steps: PlayActor[] = this.people.map((p) => new StepActor(p));
    const toServer: PlayActor[] = this.people.map(
      (p) => new ToServerActor(p, comp, this.commitOpcode),
    );
    const toClient: PlayActor[] = this.people.map((p) => new ToClientActor(p));
    const actors = [...steps, ...toServer, ...toClient, new ServiceActor(comp)];
    this.sched.nestable = steps;
    this.sched.all = actors;
    return actors;
  }

  private makeView(): RunView {
    return {
      frame: 0,
      kernel: this.kernel,
      compositor: this.comp,
      clients: this.people.map((p) => ({
        index: p.index,
        label: p.label,
        honest: p.honest,
        runtime: p.runtime,
        client: p.client,
        get lastPixels() {
          return p.lastPixels;
        },
        get committed() {
          return p.committed;
        },
        get closedBy() {
          return p.closedBy;
        },
      })),
    };
  }

  private isCompositorDeath(e: unknown): boolean {
    return e instanceof ProcessKilled && e.pid === this.comp.proc.pid;
  }

  /** Plays every frame, or until the compositor dies. Hooks may throw to stop it. */
  play(): void {
    for (let frame = 1; frame <= this.spec.frames; frame++) {
      if (!this.playFrame(frame)) return;
    }
    this.timeline.harvest();
  }

  /** One frame: the scheduler's actions, then the compositor's frame. False once it died. */
  private playFrame(frame: number): boolean {
    this.view.frame = frame;
    this.timeline.frame = frame;
    this.virtualMs = (frame - 1) * (1000 / 60);
    const actors = this.actors;
    // The runnable actors of each step, in one array reused for the whole run (up to 400
    // steps a frame: a fresh filtered array each was most of a fuzz case's garbage).
    const ready = this.ready;
    const idleLimit = 3 * actors.length;
    let idle = 0;
    // The compositor's last frame (or the set-up) may have changed anything: no actor is
    // known to be resting.
    let epoch = ++this.epoch;
    const stepByStep = this.opts.stepByStep === true;
    let n = 0;
    // How many of the n ready actors rested in this epoch: all of them, and it is quiescent.
    let rested = 0;
    let changed = true;
    for (let a = 0; a < ACTIONS_PER_FRAME && idle < idleLimit; a++) {
      if (changed) {
        // A rest changes nothing, so who is runnable is asked again only after a change
        // (which also began a new epoch: none of them has rested in it).
        n = 0;
        for (const x of actors) if (x.runnable()) ready[n++] = x;
        if (!n) break;
        rested = 0;
      } else if (rested === n) {
        // Every step left in this frame is idle: play only what they would change.
        this.rest(Math.min(ACTIONS_PER_FRAME - a, idleLimit - idle));
        break;
      }
      this.virtualMs += 0.0001;
      // The draw Rng.pick makes over the n ready actors.
      const x = ready[Math.floor(this.pick.next() * n)];
      changed = stepByStep;
      try {
        // One that rested since the last change would rest again.
        if (x.restedAt === epoch && !stepByStep) idle++;
        else if (x.run()) {
          idle = 0;
          epoch = ++this.epoch;
          changed = true;
        } else {
          idle++;
          if (!x.rests()) {
            epoch = ++this.epoch;
            changed = true;
          } else if (x.restedAt !== epoch) {
            x.restedAt = epoch;
            rested++;
          }
        }
      } catch (e) {
        if (this.isCompositorDeath(e)) return false;
        throw e;
      }
      if (!this.comp.alive) return false;
      this.opts.afterAction?.(this.view);
    }
    try {
      this.comp.frame();
    } catch (e) {
      if (this.isCompositorDeath(e)) return false;
      throw e;
    }
    this.timeline.harvest();
    this.tracer?.flush();
    for (const p of this.people) {
      const bad = p.check(frame, this.comp, this.spec.seed, this.people);
      if (bad) this.timeline.note(p.label, "pixels", bad);
    }
    this.opts.afterFrame?.(this.view);
    return true;
  }

  /**
   * The quiescent end of a frame: every runnable actor has rested since anything last
   * changed, so each remaining step would pick one of them and run nothing (most of a
   * fuzz case's steps). Those steps still take their scheduler draw, their tenth of a
   * microsecond of virtual time and their afterAction call, in order: the run, its digest
   * and every later draw are those of the step-by-step loop.
   */
  private rest(steps: number): void {
    const after = this.opts.afterAction;
    for (let i = 0; i < steps; i++) {
      this.virtualMs += 0.0001;
      this.pick.next();
      after?.(this.view);
    }
  }

  /** Ends the run: what happened so far is harvested, and every client leaves. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.timeline.harvest();
    this.tracer?.flush();
    for (const p of this.people) p.ended = true;
    for (const p of this.people) p.runtime.stop("run ended");
  }

  /** The facts the verdict is derived from (lab/verdict.ts), as a real run would give them. */
  private facts(): { compositor: CompositorFacts; clients: ClientFacts[] } {
    const comp = this.comp;
    const stats = comp.stats();
    const clients = this.people.map((p): ClientFacts => {
      const rep = p.runtime.report();
      const err = comp.errors.find((e) => e.clientId === p.serverId);
      return {
        label: p.label,
        honest: p.honest,
        closedBy: p.closedBy,
        protocolError: err ? errorName(comp.server.schema, err.interface, err.code) : null,
        pixels: p.honestResult?.pixels ?? p.lastPixels,
        committed: p.committed,
        killed: rep.killed ? { signal: rep.killed.signal, reason: rep.killed.reason } : null,
        notices: comp.notices.filter((n) => n.client === p.label).map((n) => n.what),
        xErrors: comp.notices
          .filter((n) => n.client === p.label && n.xError)
          .map((n) => n.xError as string),
      };
    });
    return {
      compositor: {
        alive: comp.alive,
        death: stats.death,
        faultsHandled: stats.sigbus,
        zeroPages: stats.zeroPages,
      },
      clients,
    };
  }

  private clientRecord(p: Participant, facts: ReturnType<Run["facts"]>): ClientRecord {
    const comp = this.comp;
    const rep = p.runtime.report();
    const err = comp.errors.find((e) => e.clientId === p.serverId);
    const protocolError = err
      ? {
          interface: err.interface,
          error: errorName(comp.server.schema, err.interface, err.code),
          code: err.code,
          objectId: err.objectId,
          message: err.message,
        }
      : null;
    return {
      index: p.index,
      label: p.label,
      behaviour: p.behaviour.name,
      honest: p.honest,
      state: rep.state,
      reason: rep.reason ?? null,
      protocolError,
      closedBy: p.closedBy,
      honestResult: p.honestResult,
      hostileOutcome: p.honest
        ? null
        : hostileOutcomeOf(
            facts.clients[p.index],
            facts.compositor,
            protocolError && { kind: "disconnected", ...protocolError },
          ),
      requests: rep.requests,
      commits: rep.commits,
      releases: rep.releases,
    };
  }

  /** The record of the run (after `end()`). */
  record(): RunRecord {
    const spec = this.spec;
    const stats = this.comp.stats();
    const facts = this.facts();
    this.opts.onFacts?.(facts);
    const { verdict, cell } = verdictOf(facts);
    const framesRun = stats.frames;
    const record: RunRecord = {
      schema: RUN_RECORD_SCHEMA,
      spec,
      replay: replayCommand(spec),
      verdict,
      cell,
      compositor: {
        alive: this.comp.alive,
        death: stats.death,
        framesRun,
        preemptions: this.sched.preemptions,
        notices: this.comp.notices.map((n) => ({ frame: n.frame, client: n.client, what: n.what })),
      },
      clients: this.people.map((p) => this.clientRecord(p, facts)),
      cost: {
        faults: stats.faults,
        signals: stats.signals,
        syscalls: stats.syscalls,
        bytesCopied: stats.bytesCopied,
        bytesKernelCopied: stats.bytesKernelCopied,
        anonPages: stats.anonPages,
        zeroPages: stats.zeroPages,
        uffdFaults: stats.uffdFaults,
        framesComposited: framesRun,
        msPerFrame: framesRun ? stats.composeMs / framesRun : 0,
      },
      timeline: this.timeline.events,
      digest: "",
    };
    if (this.opts.images) record.images = images(this.comp, this.people);
    if (this.tracer) {
      this.tracer.flush();
      record.trace = this.tracer.lines;
    }
    record.digest = digestOf(record);
    return record;
  }
}

/*
 * The run's actors, one class per kind: the play loop asks every actor whether it is
 * runnable at every step, and one call site seeing four classes is inlined by V8 where one
 * closure per client was a megamorphic call.
 */

/**
 * An actor of the play loop. After a run() that made no progress, rests() says whether that
 * run changed nothing at all, and running it again with nothing changed in between would
 * again change nothing and return false. The loop stamps such an actor with the current
 * epoch (bumped by every change); once every runnable actor carries it no step can change
 * anything, and the frame's remaining idle steps are played without running them
 * (Run.rest). A rest also leaves who is runnable as it was: no need to ask them again.
 */
interface PlayActor extends Actor {
  restedAt: number;
  rests(): boolean;
}

/**
 * One step of a client's behaviour. A step that makes no progress and leaves the client
 * "waiting" only asked its Wait's ready(), which reads the client's state (behaviour.ts,
 * Wait): false until a delivery (a progress step) changes the client, so asked again it
 * says the same. Client.setup's ready() sends its binds the first time it holds half-way:
 * a step that sent anything is not a rest. "done" and "dead" end the client: not a rest.
 */
class StepActor implements PlayActor {
  readonly name: string;
  restedAt = 0;
  /** The client's request count before its last step. */
  private sent = 0;
  constructor(private readonly p: Participant) {
    this.name = `step ${p.label}`;
  }
  runnable(): boolean {
    return !this.p.runtime.finished;
  }
  run(): boolean {
    this.sent = this.p.client.requests;
    return this.p.runtime.step() === "progress";
  }
  rests(): boolean {
    return this.p.runtime.state === "waiting" && this.p.client.requests === this.sent;
  }
}

/**
 * Delivery of a client's next frame to the compositor (a commit's frame noted first).
 * A runnable delivery always delivers: it never rests.
 */
class ToServerActor implements PlayActor {
  readonly name: string;
  restedAt = 0;
  constructor(
    private readonly p: Participant,
    private readonly comp: Compositor,
    private readonly commitOpcode: number,
  ) {
    this.name = `deliver to compositor from ${p.label}`;
  }
  runnable(): boolean {
    return this.p.toServer.pending && this.comp.alive;
  }
  run(): boolean {
    const head = this.p.toServer.inbox[0];
    if (head) this.p.trackCommit(head.bytes, this.commitOpcode);
    return this.p.toServer.deliverOne();
  }
  rests(): boolean {
    return false;
  }
}

/** Delivery of the compositor's next frame to a client (never rests, as above). */
class ToClientActor implements PlayActor {
  readonly name: string;
  restedAt = 0;
  constructor(private readonly p: Participant) {
    this.name = `deliver to ${p.label}`;
  }
  runnable(): boolean {
    return this.p.toClient.pending;
  }
  run(): boolean {
    return this.p.toClient.deliverOne();
  }
  rests(): boolean {
    return false;
  }
}

/**
 * The compositor's helper threads (work it does off its main loop). Without any, a step
 * does nothing. With them (userfaultfd), even an idle step polls, a syscall at the
 * compositor's preemption points that may take a scheduler draw: never a rest.
 */
class ServiceActor implements PlayActor {
  readonly name = "compositor helper threads";
  restedAt = 0;
  private readonly idleAlways: boolean;
  constructor(private readonly comp: Compositor) {
    this.idleAlways = !comp.hasServiceThreads;
  }
  runnable(): boolean {
    return this.comp.alive;
  }
  run(): boolean {
    return this.comp.serviceThreads();
  }
  rests(): boolean {
    return this.idleAlways;
  }
}

/** Everything deterministic about a run, hashed: equal digests mean the same run. */
function digestOf(r: RunRecord): string {
  // The trace says the same as the rest, in another form: traced and untraced runs of a
  // seed have one digest.
  const { cost, images: _i, digest: _d, trace: _t, ...rest } = r;
  const { msPerFrame: _m, ...detCost } = cost;
  return createHash("sha256")
    .update(JSON.stringify({ ...rest, cost: detCost }))
    .digest("hex")
    .slice(0, 16);
}

function images(comp: Compositor, people: Participant[]): RunRecord["images"] {
  const out = new Uint8Array(comp.framebuffer.buffer.slice(0));
  const expected = new Uint32Array(WIDTH * HEIGHT);
  for (const place of comp.placements()) {
    const p = people.find((q) => q.serverId === place.clientId);
    const shown = p?.shown.get(place.surface);
    if (!p?.honest || shown === undefined) continue;
    const seed = p.runtime.ctx.seed;
    const tile = renderFrame(seed, p.index, shown.frame, place.width, place.height);
    // A rectangle drawn with a later frame (a partially redrawn window) is expected there.
    const i = shown.inset;
    if (i)
      for (let y = i.y; y < Math.min(place.height, i.y + i.height); y++)
        for (let x = i.x; x < Math.min(place.width, i.x + i.width); x++)
          tile[y * place.width + x] = pixelAt(seed, p.index, i.frame, x, y);
    for (let y = 0; y < place.height; y++) {
      expected.set(
        tile.subarray(y * place.width, (y + 1) * place.width),
        (place.y + y) * WIDTH + place.x,
      );
    }
  }
  return {
    width: WIDTH,
    height: HEIGHT,
    output: encodePng(WIDTH, HEIGHT, out).toString("base64"),
    expected: encodePng(WIDTH, HEIGHT, new Uint8Array(expected.buffer)).toString("base64"),
  };
}
