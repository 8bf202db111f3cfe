/**
 * The Wayland RealDriver (real/target.ts): runs a catalogue behaviour and `plan.honest`
 * honest bystanders as real clients against a running compositor, and reports what each
 * one observed.
 *
 * Every client is the model's own code — the behaviour generator, client/client.ts,
 * protocol/client.ts — over a ClientSys that is a real process (real/native-sys.ts) and a
 * Transport that speaks the binary wire through that process's socket
 * (real/wire-transport.ts). One helper process per client, so a client that dies of SIGBUS
 * dies alone. The roster mirrors lab/run.ts: bystanders first (indices 0..honest-1, sealed
 * pools), the client under test last.
 *
 * Every helper is killed when the run ends, on error too; if Node itself dies, the helpers
 * die with it (PR_SET_PDEATHSIG in wl-client.c).
 */
import type { Behaviour } from "../client/behaviour.ts";
import { getBehaviour } from "../client/behaviours/index.ts";
import { Client } from "../client/client.ts";
import { ClientRuntime, makeContext } from "../client/runtime.ts";
import { OP, WlClientError, WlClientProcess, wlClientAvailability } from "../native/wl-client.ts";
import { BASE_SCHEMA, findEnum } from "../protocol/schema.ts";
import { XDG_INTERFACES } from "../protocol/schema-xdg.ts";
import { boundedWait } from "./bounded-wait.ts";
import {
  type CaptureResult,
  findWindow,
  locateAndClassify,
  type Screenshot,
  screenshotOnce,
  type WindowRect,
} from "./capture.ts";
import {
  describeHostileWindow,
  type HostileBuffer,
  type HostileWindow,
  judgeHostileWindow,
  type KnownWindow,
  type Neighbour,
} from "./hostile-window.ts";
import { NativeSys } from "./native-sys.ts";
import { type PoolOwner, poolNeighbour } from "./pool-neighbour.ts";
import type {
  ExitInfo,
  RealClientObservation,
  RealDriver,
  RealInstance,
  RealProtocolError,
  RealRunObservation,
  RealRunPlan,
} from "./target.ts";
import { type WireErrorEvent, WireTransport } from "./wire-transport.ts";

/** Surface size of every client, as in lab/run.ts. */
const SURFACE = 48;

export class WaylandDriverError extends Error {
  readonly code = "SHM_ERR_REAL_WAYLAND";
}

interface Participant {
  index: number;
  honest: boolean;
  behaviour: string;
  program: Behaviour;
  proc: WlClientProcess;
  transport: WireTransport;
  sys: NativeSys;
  runtime: ClientRuntime;
  /** The helper's exit before the driver killed it (its own death), if it died. */
  ownExit: ExitInfo | null;
}

/**
 * The error's enum name. libwayland's wl_shm (wayland-shm.c) posts WL_SHM_ERROR_* codes on
 * wl_shm_pool and wl_buffer resources too ("error accessing SHM buffer" is
 * WL_SHM_ERROR_INVALID_FD on the wl_buffer), so those two read wl_shm's enum.
 */
export function errorName(iface: string, code: number): string {
  const owner = iface === "wl_buffer" || iface === "wl_shm_pool" ? "wl_shm" : iface;
  const e =
    findEnum(BASE_SCHEMA, `${owner}.error`) ??
    XDG_INTERFACES[owner]?.enums.find((x) => x.name === "error");
  return e?.entries.find((x) => x.value === code)?.name ?? String(code);
}

function toProtocolError(e: WireErrorEvent): RealProtocolError {
  return {
    interface: e.interface,
    error: errorName(e.interface, e.code),
    code: e.code,
    objectId: e.objectId,
    message: e.message,
  };
}

export interface WaylandDriverOptions {
  /** Take a screenshot after each run to check honest pixels (default true). */
  pixels?: boolean;
}

export class WaylandDriver implements RealDriver {
  readonly endpointKind = "wayland" as const;

  constructor(private readonly opts: WaylandDriverOptions = {}) {}

  /**
   * Runs the plan. `cast` replaces the catalogue lookup of `plan.behaviour` for programs
   * that are not in the catalogue (a fuzz case's action lists, lab/fuzz/behaviour.ts):
   * `behaviour` is the client under test, `companions` run between the bystanders and it,
   * with the test's params, as lab/run.ts places them.
   */
  async run(
    instance: RealInstance,
    plan: RealRunPlan,
    cast: { behaviour?: Behaviour; companions?: readonly Behaviour[] } = {},
  ): Promise<RealRunObservation> {
    if (instance.endpoint.kind !== "wayland")
      throw new WaylandDriverError(`${instance.kind} has no Wayland socket`);
    const avail = await wlClientAvailability();
    if (!avail.available) throw new WaylandDriverError(avail.reason);
    const attacker = cast.behaviour ?? getBehaviour(plan.behaviour);
    const honest = getBehaviour("honest-renderer");
    const started = Date.now();
    const deadline = started + plan.timeoutMs;
    const people: Participant[] = [];
    try {
      const roster = [
        ...Array.from({ length: plan.honest }, () => honest),
        ...(cast.companions ?? []),
        attacker,
      ];
      for (let index = 0; index < roster.length; index++) {
        const b = roster[index];
        const params: Record<string, number | string | boolean> =
          index < plan.honest
            ? { width: SURFACE, height: SURFACE, frames: plan.frames, seal: true }
            : { width: SURFACE, height: SURFACE, frames: plan.frames, ...plan.params };
        people.push(
          await this.join(avail.binary, instance.endpoint.socket, b, index, plan.seed, params),
        );
      }
      const timedOut = () => Date.now() >= deadline || instance.exited() !== null;
      await Promise.all(people.map((p) => p.runtime.drive({ shouldStop: timedOut })));
      // What the compositor does after the last request (a read at its next repaint) may
      // still end a connection: one short settle so "open" means open.
      await sleep(Math.min(100, Math.max(0, deadline - Date.now())));
      const clients = people.map((p) => this.observe(p));
      if (this.opts.pixels !== false)
        await this.checkPixels(avail.binary, instance, plan, people, clients, deadline);
      return {
        target: { kind: instance.kind, version: instance.version },
        plan,
        compositor: { alive: instance.exited() === null, exit: instance.exited() },
        clients,
        ms: Date.now() - started,
      };
    } finally {
      await stopAll(people);
    }
  }

  private async join(
    binary: string,
    socket: string,
    b: Behaviour,
    index: number,
    seed: number,
    params: Record<string, number | string | boolean>,
  ): Promise<Participant> {
    const proc = await WlClientProcess.start(binary);
    const p: Partial<Participant> = {
      index,
      honest: b.honest,
      behaviour: b.name,
      program: b,
      proc,
      ownExit: null,
    };
    proc.exited().then(() => {
      if (p.ownExit === null && !stopping.has(proc)) p.ownExit = proc.exit;
    });
    // Until it is in `people`, run()'s finally cannot stop it: any failure here kills it.
    try {
      const r = proc.call(OP.CONNECT, [], new TextEncoder().encode(socket));
      if (r.status < 0)
        throw new WaylandDriverError(`cannot connect to ${socket}: errno ${-r.status}`);
      const transport = new WireTransport(proc);
      const sys = NativeSys.of(proc);
      const client = new Client(transport, sys, { label: `${b.name}#${index}` });
      transport.allocate = (iface, version) =>
        client.proto.objects.allocate({ interface: iface, version });
      p.transport = transport;
      p.sys = sys;
      p.runtime = new ClientRuntime(b, client, makeContext(seed, index, params));
      return p as Participant;
    } catch (e) {
      stopping.add(proc);
      proc.kill();
      await boundedWait(proc.exited(), 2000);
      stopping.delete(proc);
      throw e;
    }
  }

  /**
   * Honest clients' windows in a screenshot of the output, classified against each one's
   * latest committed frame; "unchecked" (with the reason in the notes) where the compositor
   * offers no capture or died. A window not on screen at all is retaken up to twice, 100 ms
   * apart: sway sometimes shows a freshly mapped pair of windows one repaint late. The last
   * screenshot also shows the other clients' windows: what each shows of another client
   * (real/hostile-window.ts, the model's foreign-pixels invariant).
   */
  private async checkPixels(
    binary: string,
    instance: RealInstance,
    plan: RealRunPlan,
    people: readonly Participant[],
    clients: RealClientObservation[],
    deadline: number,
  ): Promise<void> {
    const honest = people.filter((p) => p.honest);
    const hostile = people.filter((p) => !p.honest && committedBuffer(p) !== null);
    if (honest.length === 0 && hostile.length === 0) return;
    let last: CaptureResult = { ok: false, why: "no screenshot taken" };
    for (let attempt = 0; ; attempt++) {
      // within the run's bound where it leaves room, and never less than half a second
      const budget = Math.max(500, Math.min(3000, deadline - Date.now()));
      const shot = await this.screenshot(binary, instance, budget);
      last = shot;
      let missing = false;
      for (const p of honest) {
        const obs = clients[people.indexOf(p)];
        if (!shot.ok) {
          obs.notes.push(`pixels unchecked: ${shot.why}`);
          continue;
        }
        const got = this.judge(shot.shot, plan, people, p, instance.kind);
        obs.pixels = got.pixels;
        if (got.note) obs.notes.push(got.note);
        if (got.pixels === "none" && got.note) missing = true;
      }
      if (!shot.ok || !missing || attempt === 2 || Date.now() + 100 >= deadline) break;
      for (const p of honest) {
        const notes = clients[people.indexOf(p)].notes;
        if (notes.length && notes[notes.length - 1].startsWith("pixels via")) notes.pop();
      }
      await sleep(100);
    }
    for (const p of hostile) {
      const obs = clients[people.indexOf(p)];
      if (!last.ok) {
        obs.notes.push(`window unchecked: ${last.why}`);
        continue;
      }
      obs.window = this.judgeWindow(
        last.shot,
        plan,
        people,
        p,
        hostile.length === 1,
        instance.kind,
      );
      // Where bytes past its pool come from: only a stride lie or an offset reads there.
      if (obs.window.pastPool.pixels > 0)
        obs.window.poolNeighbour = poolNeighbour(
          instance.pid,
          ownerOf(p),
          people.filter((q) => q !== p).map(ownerOf),
          committedBuffer(p)!.poolSize,
        );
      obs.notes.push(`via ${last.shot.via}: ${describeHostileWindow(obs.window)}`);
    }
  }

  /** What the window of `p` (not honest) shows of the others, as real/hostile-window.ts reads it. */
  private judgeWindow(
    shot: Screenshot,
    plan: RealRunPlan,
    people: readonly Participant[],
    p: Participant,
    zeroIsOwn: boolean,
    kind: string,
  ): HostileWindow {
    const neighbours: Neighbour[] = [];
    const covers: KnownWindow[] = [];
    for (const q of people) {
      if (q === p) continue;
      const f = latestOf(q);
      const [qw, qh] = size(plan, q);
      // Only honest patterns are known frame by frame; another client's tag still counts.
      neighbours.push({ index: q.index, latest: q.honest ? (f ?? -1) : -1, width: qw, height: qh });
      if (!q.honest || f === undefined) continue;
      const at = findWindow(shot, plan.seed, q.index, f, qw, qh);
      if (at?.exact)
        covers.push({ x: at.x, y: at.y, width: qw, height: qh, index: q.index, frame: f });
    }
    return judgeHostileWindow(
      shot,
      plan.seed,
      p.index,
      committedBuffer(p)!,
      neighbours,
      covers,
      zeroIsOwn,
      // cage's black background looks like a zeroed window: its placement is known instead
      STACKS_AT_ORIGIN.has(kind) ? { x: 0, y: 0 } : undefined,
    );
  }

  private async screenshot(
    binary: string,
    instance: RealInstance,
    timeoutMs: number,
  ): Promise<CaptureResult> {
    if (instance.exited() !== null || instance.endpoint.kind !== "wayland")
      return { ok: false, why: "compositor gone" };
    return screenshotOnce(binary, instance.endpoint.socket, timeoutMs);
  }

  private judge(
    shot: Screenshot,
    plan: RealRunPlan,
    people: readonly Participant[],
    p: Participant,
    kind: string,
  ): { pixels: RealClientObservation["pixels"]; note?: string } {
    const latest = latestOf(p);
    if (latest === undefined) return { pixels: "none" };
    const [w, h] = size(plan, p);
    const others = people.filter((q) => q !== p).map((q) => q.index);
    // Placement known only for honest windows found at the exact origin of their own latest
    // frame, with the size they asked for; an attacker's window is never taken as a cover.
    const covers: WindowRect[] = [];
    for (const q of people) {
      const f = q === p || !q.honest ? undefined : latestOf(q);
      if (f === undefined) continue;
      const [qw, qh] = size(plan, q);
      const at = findWindow(shot, plan.seed, q.index, f, qw, qh);
      if (at?.exact) covers.push({ x: at.x, y: at.y, width: qw, height: qh });
    }
    const got = locateAndClassify(shot, plan.seed, p.index, latest, w, h, others, covers);
    const top = covers.find((r) => r.x === 0 && r.y === 0);
    if (got.pixels === "none" && top && STACKS_AT_ORIGIN.has(kind))
      return {
        pixels: "unchecked",
        note: `pixels unchecked: not on screen, and ${kind} stacks every window at the output's origin, where another honest window is (frame ${latest})`,
      };
    const where = got.at ? ` at ${got.at.x},${got.at.y} ${JSON.stringify(got.counts)}` : "";
    return {
      pixels: got.pixels,
      note: `pixels via ${shot.via}: ${got.pixels}${got.why ? ` (${got.why})` : ""}${where} (frame ${latest})`,
    };
  }

  private observe(p: Participant): RealClientObservation {
    const rep = p.runtime.report();
    const s = p.transport.stats;
    // a death seen before its status ("unknown") takes the helper's real signal once reaped
    const killed: ExitInfo | null = p.runtime.killed
      ? {
          code: null,
          signal:
            p.runtime.killed.signal === "unknown" && p.ownExit?.signal
              ? p.ownExit.signal
              : p.runtime.killed.signal,
        }
      : p.ownExit?.signal
        ? p.ownExit
        : null;
    const notes = [...rep.notes, ...s.notes];
    if (rep.reason) notes.push(`ended: ${rep.reason}`);
    notes.push(`${s.sent} messages sent, ${s.configures} xdg configures acked`);
    if (s.eventsDropped)
      notes.push(`${s.eventsDropped} events of interfaces shmlab does not model`);
    if (p.transport.heldCount)
      notes.push(
        `${p.transport.heldCount} requests never sent: held behind a buffer attach that no configure allowed`,
      );
    return {
      index: p.index,
      behaviour: p.behaviour,
      honest: p.honest,
      protocolError: s.displayError ? toProtocolError(s.displayError) : null,
      errors: [],
      connection:
        s.closedBy === "server"
          ? "closed-by-server"
          : s.closedBy === "client"
            ? "closed-by-client"
            : "open",
      killed,
      framesDone: s.framesDone,
      releases: rep.releases,
      commits: rep.commits,
      pixels: "unchecked",
      waitingFor: rep.waitingFor ?? null,
      notes,
    };
  }
}

const stopping = new Set<WlClientProcess>();

/**
 * Compositors that put every toplevel at the same place, one over another, so only the top
 * one can be seen. cage (0.1.4, view.c): `view_position` → `if (view_is_primary(view) ||
 * view_extends_output_layout(view, &layout_box)) view_maximize(view, &layout_box);` — every
 * parentless toplevel at the layout box's origin. Measured: of two honest 48x48 windows,
 * one was correct at 0,0 and the other had no pixel on screen.
 */
const STACKS_AT_ORIGIN: ReadonlySet<string> = new Set(["cage"]);

function latestOf(p: Participant): number | undefined {
  const client = p.runtime.client;
  const surface = [...client.surfaces][0];
  return surface === undefined ? undefined : client.latestFrame.get(surface);
}

/**
 * The buffer `p` last committed, with its pool's size as the client asked for it: what its
 * window shows where the compositor still shows it. null: it never committed one.
 */
function committedBuffer(p: Participant): HostileBuffer | null {
  const client = p.runtime.client;
  const last = client.commits.at(-1);
  const b = last === undefined ? undefined : client.buffers.get(last.buffer);
  const pool = b === undefined ? undefined : client.pools.get(b.pool);
  if (!b || !pool) return null;
  return {
    width: b.width,
    height: b.height,
    stride: b.stride,
    offset: b.offset,
    poolSize: pool.size,
    frame: b.frame,
  };
}

function ownerOf(p: Participant): PoolOwner {
  return { pid: p.proc.pid, label: `${p.behaviour}#${p.index}` };
}

/** The surface size client `p` asked for. */
function size(plan: RealRunPlan, p: Participant): [number, number] {
  if (p.index < plan.honest) return [SURFACE, SURFACE];
  return [Number(plan.params.width ?? SURFACE), Number(plan.params.height ?? SURFACE)];
}

async function stopAll(people: readonly Participant[]): Promise<void> {
  for (const p of people) {
    stopping.add(p.proc);
    try {
      p.runtime.stop("run over");
    } catch (e) {
      if (!(e instanceof WlClientError)) throw e;
    }
    p.proc.kill();
  }
  await Promise.all(people.map((p) => boundedWait(p.proc.exited(), 2000)));
  for (const p of people) stopping.delete(p.proc);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The driver the lab uses for weston, sway, mutter, kwin and cage. */
export const waylandDriver = new WaylandDriver();
