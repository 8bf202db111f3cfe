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
import type { Behaviour } from "../client/behaviour.ts";
import { getBehaviour } from "../client/behaviours/index.ts";
import { Client } from "../client/client.ts";
import { classifyRegion, renderFrame } from "../client/pattern.ts";
import { ClientRuntime, makeContext } from "../client/runtime.ts";
import { LocalSys } from "../client/sys.ts";
import { Compositor } from "../compositor/compositor.ts";
import { getPolicy } from "../compositor/policies/index.ts";
import type { Policy } from "../compositor/policy.ts";
import { decodeFrame } from "../protocol/codec.ts";
import { getInterface, type Schema } from "../protocol/schema.ts";
import { ProcessKilled } from "../shm/errors.ts";
import { Kernel } from "../shm/kernel.ts";
import type { KernelFeature } from "../shm/scenario.ts";
import { encodePng } from "./png.ts";
import { createQueuePair, type QueueTransport } from "./queue-transport.ts";
import {
  type ClientRecord,
  type HonestResult,
  type PixelClass,
  type PixelCounts,
  RUN_RECORD_SCHEMA,
  type RunRecord,
  type RunSpec,
  type TimelineEvent,
} from "./record.ts";
import { Rng } from "./rng.ts";
import { type Actor, SeededScheduler } from "./scheduler.ts";
import {
  type ClientFacts,
  type ClosedBy,
  type CompositorFacts,
  hostileOutcomeOf,
  type RunFacts,
  verdictOf,
} from "./verdict.ts";

export const HONEST = "honest-renderer";
const WIDTH = 256;
const HEIGHT = 128;
const SURFACE = 48;
const ACTIONS_PER_FRAME = 400;
const TIMELINE_CAP = 300;

export const DEFAULT_SPEC: Omit<RunSpec, "policy" | "behaviour"> = {
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

interface Participant {
  index: number;
  behaviour: Behaviour;
  runtime: ClientRuntime;
  client: Client;
  serverId: number;
  toServer: QueueTransport;
  toClient: QueueTransport;
  /** wl_surface.commit requests delivered to the compositor so far. */
  commitsDelivered: number;
  /** The pattern frame of the latest delivered commit, per surface. */
  shown: Map<number, number>;
  lastPixels: PixelClass | "none";
  /** Who ended the connection first, while the run was going (null: still open). */
  closedBy: ClosedBy;
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
    closedBy: ClosedBy;
  }[];
}

export interface RunOptions {
  /** Policy and behaviour objects already loaded (user files); by name otherwise. */
  policy?: Policy;
  behaviour?: Behaviour;
  /** Keep PNG images of the last frame in the record. */
  images?: boolean;
  /** Called after every scheduler action and after every frame; may throw to stop the run. */
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
}

const CLASS_RANK: Record<PixelClass | "none", number> = {
  none: 0,
  correct: 1,
  stale: 2,
  other: 3,
  zero: 4,
  foreign: 5,
};

function emptyCounts(): PixelCounts {
  return { correct: 0, stale: 0, zero: 0, foreign: 0, other: 0, total: 0 };
}

/** The name of an error code as the interface that posts it defines it. */
export function errorName(schema: Schema, iface: string, code: number): string {
  // libwayland posts wl_shm error codes on wl_buffer and wl_shm_pool resources too.
  for (const name of [iface, "wl_shm", "wl_display"]) {
    const e = getInterface(schema, name)?.enums.find((x) => x.name === "error");
    const entry = e?.entries.find((x) => x.value === code);
    if (entry && (name === iface || iface === "wl_buffer" || iface === "wl_shm_pool")) {
      return `${name}.${entry.name}`;
    }
  }
  return `${iface}#${code}`;
}

export function runOne(spec: RunSpec, opts: RunOptions = {}): RunRecord {
  const policy = opts.policy ?? getPolicy(spec.policy);
  const attacker = opts.behaviour ?? getBehaviour(spec.behaviour);
  const honestBehaviour = getBehaviour(HONEST);
  const rng = new Rng(spec.seed);
  let virtualMs = 0;
  const sched = new SeededScheduler(rng.fork("preempt"), { preemptProbability: spec.preempt });
  const features = [...new Set<KernelFeature>([...policy.features, ...spec.kernelFeatures])];
  const kernel = new Kernel({
    features,
    scheduler: sched,
    trace: true,
    memoryLimit: 512 * 1024 * 1024,
  });
  const comp = new Compositor({
    kernel,
    policy,
    width: WIDTH,
    height: HEIGHT,
    // Virtual time, so that the server's per-second message limit trips at the same message
    // in every replay: 60 frames per second, and a tenth of a microsecond per action.
    server: { variant: spec.variant, now: () => virtualMs },
  });
  sched.compositorPid = comp.proc.pid;
  const pick = rng.fork("actions");
  const timeline: TimelineEvent[] = [];
  /** Set once the run is over: closing the clients then is not part of what happened. */
  let ended = false;
  let frameNo = 0;
  const note = (who: string, what: string, detail?: string) => {
    if (timeline.length < TIMELINE_CAP) timeline.push({ frame: frameNo, who, what, detail });
  };

  // The client under test goes last, so bystanders' indices do not depend on it.
  const roster = [
    ...Array.from({ length: spec.honest }, () => honestBehaviour),
    ...(opts.companions ?? []),
    attacker,
  ];
  // Bystanders seal their pools against shrinking, as careful clients do today (and as the
  // seals-required policy demands); the client under test follows spec.params.
  const bystanderParams = { width: SURFACE, height: SURFACE, frames: 0, seal: true };
  const testParams = { width: SURFACE, height: SURFACE, frames: 0, ...spec.params };
  const people: Participant[] = roster.map((b, index) => {
    const params = index >= spec.honest ? testParams : bystanderParams;
    const label = `${b.name}#${index}`;
    const proc = kernel.spawn(label);
    const [ct, st] = createQueuePair();
    st.onDropped = (fds) => {
      for (const h of fds) kernel.dropHandle(h);
    };
    ct.onDropped = st.onDropped;
    const remote = comp.connect(st, { label });
    const client = new Client(ct, new LocalSys(kernel, proc), {
      label,
      schema: comp.server.schema,
    });
    const runtime = new ClientRuntime(b, client, makeContext(spec.seed, index, params));
    const p: Participant = {
      index,
      behaviour: b,
      runtime,
      client,
      serverId: remote.id,
      toServer: st,
      toClient: ct,
      commitsDelivered: 0,
      shown: new Map(),
      lastPixels: "none",
      closedBy: null,
    };
    // Whichever end closes first closed the connection: the other end hears of it only
    // when the scheduler delivers the close.
    st.onClose(() => {
      if (!ended && p.closedBy === null) p.closedBy = "compositor";
    });
    ct.onClose(() => {
      if (!ended && p.closedBy === null) p.closedBy = "client";
    });
    return p;
  });

  const commitOpcode = getInterface(comp.server.schema, "wl_surface")!.requests.findIndex(
    (r) => r.name === "commit",
  );
  const stepActor = (p: Participant): Actor => ({
    name: `step ${p.client.label}`,
    runnable: () => !p.runtime.finished,
    run: () => p.runtime.step() === "progress",
  });
  const deliverToServer = (p: Participant): Actor => ({
    name: `deliver to compositor from ${p.client.label}`,
    runnable: () => p.toServer.pending && comp.alive,
    run: () => {
      const head = p.toServer.inbox[0];
      if (head) trackCommit(p, head.bytes);
      return p.toServer.deliverOne();
    },
  });
  const deliverToClient = (p: Participant): Actor => ({
    name: `deliver to ${p.client.label}`,
    runnable: () => p.toClient.pending,
    run: () => p.toClient.deliverOne(),
  });
  const service: Actor = {
    name: "compositor helper threads",
    runnable: () => comp.alive,
    run: () => comp.serviceThreads(),
  };
  function trackCommit(p: Participant, bytes: Uint8Array): void {
    let f: ReturnType<typeof decodeFrame>;
    try {
      f = decodeFrame(bytes);
    } catch {
      return; // malformed: the server will refuse it
    }
    if (f.kind !== "message" || f.opcode !== commitOpcode) return;
    const o = p.client.proto.objects.lookup(f.objectId);
    if (o?.interface !== "wl_surface") return;
    const rec = p.client.commits.find((c) => c.at === p.commitsDelivered);
    p.commitsDelivered++;
    if (rec && rec.frame >= 0) p.shown.set(rec.surface, rec.frame);
  }

  const steps = people.map(stepActor);
  const actors: Actor[] = [
    ...steps,
    ...people.map(deliverToServer),
    ...people.map(deliverToClient),
    service,
  ];
  sched.nestable = steps;
  sched.all = actors;

  const honestAcc = new Map<Participant, HonestResult>();
  for (const p of people) {
    if (p.behaviour.honest) {
      honestAcc.set(p, {
        pixels: "none",
        framesChecked: 0,
        framesCorrect: 0,
        counts: emptyCounts(),
        firstBadFrame: null,
      });
    }
  }

  const seenEvents = { kernel: 0, errors: 0, notices: 0 };
  const harvest = () => {
    const ev = kernel.events ?? [];
    for (; seenEvents.kernel < ev.length; seenEvents.kernel++) {
      const e = ev[seenEvents.kernel];
      if (
        ![
          "ftruncate",
          "SIGBUS",
          "SIGSEGV",
          "killed",
          "punch-hole",
          "add-seals",
          "fork",
          "uffd-fault",
        ].includes(e.kind)
      ) {
        continue;
      }
      const who = kernel.processes.get(e.pid)?.name ?? `pid ${e.pid}`;
      note(
        who,
        e.kind,
        Object.entries(e.detail)
          .map(
            ([k, v]) => `${k}=${typeof v === "number" && k === "addr" ? `0x${v.toString(16)}` : v}`,
          )
          .join(" "),
      );
    }
    for (; seenEvents.errors < comp.errors.length; seenEvents.errors++) {
      const e = comp.errors[seenEvents.errors];
      note(
        "compositor",
        "protocol error",
        `${e.client}: ${errorName(comp.server.schema, e.interface, e.code)} on ${e.interface}@${e.objectId}: ${e.message}`,
      );
    }
    for (; seenEvents.notices < comp.notices.length; seenEvents.notices++) {
      const n = comp.notices[seenEvents.notices];
      note("compositor", "policy", `${n.client} ${n.pool}: ${n.what}`);
    }
  };

  const isCompositorDeath = (e: unknown) => e instanceof ProcessKilled && e.pid === comp.proc.pid;

  const view: RunView = {
    frame: 0,
    kernel,
    compositor: comp,
    clients: people.map((p) => ({
      index: p.index,
      label: p.client.label,
      honest: p.behaviour.honest,
      runtime: p.runtime,
      client: p.client,
      get lastPixels() {
        return p.lastPixels;
      },
      get committed() {
        return p.shown.size > 0;
      },
      get closedBy() {
        return p.closedBy;
      },
    })),
  };

  outer: for (frameNo = 1; frameNo <= spec.frames; frameNo++) {
    view.frame = frameNo;
    virtualMs = (frameNo - 1) * (1000 / 60);
    let idle = 0;
    for (let a = 0; a < ACTIONS_PER_FRAME && idle < 3 * actors.length; a++) {
      const ready = actors.filter((x) => x.runnable());
      if (!ready.length) break;
      virtualMs += 0.0001;
      try {
        idle = pick.pick(ready).run() ? 0 : idle + 1;
      } catch (e) {
        if (isCompositorDeath(e)) break outer;
        throw e;
      }
      if (!comp.alive) break outer;
      opts.afterAction?.(view);
    }
    try {
      comp.frame();
    } catch (e) {
      if (isCompositorDeath(e)) break;
      throw e;
    }
    harvest();
    checkHonest(frameNo);
    opts.afterFrame?.(view);
  }
  harvest();

  /** The worst class of a participant's region of the output now, or undefined if not shown. */
  function classify(p: Participant): { worst: PixelClass; counts: PixelCounts } | undefined {
    const fb = new Uint8Array(
      comp.framebuffer.buffer,
      comp.framebuffer.byteOffset,
      comp.framebuffer.byteLength,
    );
    const place = comp.placements().find((x) => x.clientId === p.serverId);
    if (!place) return undefined;
    const expected = p.shown.get(place.surface);
    if (expected === undefined) return undefined;
    const stale: number[] = [];
    for (let f = Math.max(0, expected - 16); f < expected; f++) stale.push(f);
    const c = classifyRegion({
      seed: spec.seed,
      pixels: fb,
      stride: WIDTH * 4,
      x: place.x,
      y: place.y,
      width: place.width,
      height: place.height,
      expected: { client: p.index, frame: expected },
      stale,
      foreign: people.filter((q) => q !== p).map((q) => ({ client: q.index })),
    });
    let worst: PixelClass = "correct";
    for (const k of ["stale", "other", "zero", "foreign"] as PixelClass[]) {
      if (c[k as keyof PixelCounts] > 0 && CLASS_RANK[k] > CLASS_RANK[worst]) worst = k;
    }
    return { worst, counts: c };
  }

  function checkHonest(frame: number): void {
    for (const p of people) {
      const got = classify(p);
      p.lastPixels = got ? got.worst : "none";
      const acc = honestAcc.get(p);
      if (!acc || !got) continue;
      const { worst, counts: c } = got;
      acc.framesChecked++;
      for (const k of Object.keys(acc.counts) as (keyof PixelCounts)[]) acc.counts[k] += c[k];
      if (worst === "correct") acc.framesCorrect++;
      else if (acc.firstBadFrame === null) {
        acc.firstBadFrame = frame;
        note(
          p.client.label,
          "pixels",
          `frame ${frame}: ${worst} (${c.correct}/${c.total} correct)`,
        );
      }
      if (CLASS_RANK[worst] > CLASS_RANK[acc.pixels]) acc.pixels = worst;
    }
  }

  ended = true;
  for (const p of people) p.runtime.stop("run ended");
  const stats = comp.stats();
  const compFacts: CompositorFacts = {
    alive: comp.alive,
    death: stats.death,
    faultsHandled: stats.sigbus,
    zeroPages: stats.zeroPages,
  };
  const facts: ClientFacts[] = people.map((p) => {
    const rep = p.runtime.report();
    const err = comp.errors.find((e) => e.clientId === p.serverId);
    return {
      label: p.client.label,
      honest: p.behaviour.honest,
      closedBy: p.closedBy,
      protocolError: err ? errorName(comp.server.schema, err.interface, err.code) : null,
      pixels: honestAcc.get(p)?.pixels ?? p.lastPixels,
      committed: p.shown.size > 0,
      killed: rep.killed ? { signal: rep.killed.signal, reason: rep.killed.reason } : null,
      notices: comp.notices.filter((n) => n.client === p.client.label).map((n) => n.what),
    };
  });
  const clients: ClientRecord[] = people.map((p) => {
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
      label: p.client.label,
      behaviour: p.behaviour.name,
      honest: p.behaviour.honest,
      state: rep.state,
      reason: rep.reason ?? null,
      protocolError,
      closedBy: p.closedBy,
      honestResult: honestAcc.get(p) ?? null,
      hostileOutcome: p.behaviour.honest
        ? null
        : hostileOutcomeOf(
            facts[p.index],
            compFacts,
            protocolError && { kind: "disconnected", ...protocolError },
          ),
      requests: rep.requests,
      commits: rep.commits,
      releases: rep.releases,
    };
  });

  opts.onFacts?.({ compositor: compFacts, clients: facts });
  const { verdict, cell } = verdictOf({ compositor: compFacts, clients: facts });

  const framesRun = stats.frames;
  const record: RunRecord = {
    schema: RUN_RECORD_SCHEMA,
    spec,
    replay: replayCommand(spec),
    verdict,
    cell,
    compositor: {
      alive: comp.alive,
      death: stats.death,
      framesRun,
      preemptions: sched.preemptions,
      notices: comp.notices.map((n) => ({ frame: n.frame, client: n.client, what: n.what })),
    },
    clients,
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
    timeline,
    digest: "",
  };
  if (opts.images) record.images = images(comp, people);
  record.digest = digestOf(record);
  return record;
}

/** Everything deterministic about a run, hashed: equal digests mean the same run. */
export function digestOf(r: RunRecord): string {
  const { cost, images: _i, digest: _d, ...rest } = r;
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
    const frame = p?.shown.get(place.surface);
    if (!p?.behaviour.honest || frame === undefined) continue;
    const tile = renderFrame(p.runtime.ctx.seed, p.index, frame, place.width, place.height);
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
