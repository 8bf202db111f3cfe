/**
 * The X11 RealDriver: runs a plan (a catalogue behaviour plus honest bystanders) as real
 * MIT-SHM clients against a running X server (Xvfb), each client a native helper process
 * with its own socket and memfds, and reports what each observed (real/target.ts).
 *
 *   import { x11Driver } from "./real/x11-driver.ts";
 *   const obs = await x11Driver.run(instance, plan);   // instance.endpoint.kind === "x11"
 *
 * A behaviour without an MIT-SHM form throws X11NotApplicable (check x11Applies first).
 */
import { readFileSync, statSync } from "node:fs";
import { getBehaviour } from "../client/behaviours/index.ts";
import { worsePixel } from "../client/pattern.ts";
import type {
  RealClientObservation,
  RealDriver,
  RealInstance,
  RealRunObservation,
  RealRunPlan,
} from "./target.ts";
import {
  X11_NOT_APPLICABLE,
  X11_SCRIPTS,
  type XScript,
  type XScriptContext,
} from "./x11-behaviours.ts";
import { XClient, type XPixels } from "./x11-client.ts";
import { NativeError, SyscallError } from "./x11-native.ts";
import { X11_PROGRAM_BEHAVIOUR, x11Program, x11ProgramForm } from "./x11-program.ts";

export { X11_NOT_APPLICABLE, x11Applies } from "./x11-behaviours.ts";

export class X11NotApplicable extends Error {
  readonly code = "SHM_ERR_X11_NOT_APPLICABLE";
}

/** The instance handed to the X11 driver has no X11 endpoint (a Wayland compositor). */
export class X11NoEndpoint extends Error {
  readonly code = "SHM_ERR_X11_NO_ENDPOINT";
}

interface Participant {
  index: number;
  behaviour: string;
  honest: boolean;
  client: XClient | null;
  pixels: XPixels | "unchecked";
  waitingFor: string | null;
  notes: string[];
  /** An unexpected error of its script (not a named X11/native error). */
  failure: unknown;
}

/** The script of a catalogue behaviour, or of a fuzz program (real/x11-program.ts). */
function x11ScriptFor(behaviour: string): XScript | undefined {
  return behaviour === X11_PROGRAM_BEHAVIOUR ? x11Program : X11_SCRIPTS[behaviour];
}

export const x11Driver: RealDriver = {
  endpointKind: "x11",
  // A fuzz program's MIT-SHM form: the lab runs it on the model too (real/x11-program.ts).
  programForm: x11ProgramForm,
  async run(instance: RealInstance, plan: RealRunPlan): Promise<RealRunObservation> {
    if (instance.endpoint.kind !== "x11")
      throw new X11NoEndpoint(`x11 driver: instance ${instance.kind} has no X11 endpoint`);
    const script = x11ScriptFor(plan.behaviour);
    if (!script)
      throw new X11NotApplicable(
        `${plan.behaviour}: ${X11_NOT_APPLICABLE[plan.behaviour] ?? "no MIT-SHM script"}`,
      );
    const socket = instance.endpoint.socket;
    const logFrom = logSize(instance.logPath);
    const t0 = Date.now();
    // Honest bystanders first, the behaviour under test last (the lab's order).
    const people: Participant[] = [];
    for (let i = 0; i < plan.honest; i++) people.push(participant(i, "honest-renderer", true));
    people.push(participant(plan.honest, plan.behaviour, getBehaviour(plan.behaviour).honest));
    try {
      for (const p of people) p.client = await XClient.connect(socket, p.index, plan.seed);
      const all = people.map((p) => runOne(p, people, plan));
      const deadline = new Promise<"timeout">((r) => {
        const t = setTimeout(() => r("timeout"), plan.timeoutMs);
        t.unref();
      });
      const outcome = await Promise.race([Promise.all(all), deadline]);
      if (outcome === "timeout")
        for (const p of people)
          p.waitingFor ??= p.client?.closed ? null : (p.client?.conn.waiting ?? "run timeout");
      else {
        // A script that failed on something unnamed is a driver bug: it is not an observation.
        const broken = people.find((p) => p.failure !== null);
        if (broken) throw broken.failure;
        for (const p of people) if (!p.client?.closed) await p.client?.conn.pump(0);
      }
      // The hostile client's window at the end (the lab's "what its own window showed").
      const hostile = people[people.length - 1];
      if (!hostile.honest && hostile.client && !hostile.client.closed)
        hostile.pixels = await hostile.client.pixels(foreignOf(hostile, people));
      noteBusfaults(instance.logPath, logFrom, people);
      const exit = instance.exited();
      return {
        target: { kind: instance.kind, version: instance.version },
        plan,
        compositor: {
          alive: exit === null,
          exit,
          faultNoted: exit ? (instance.faultNoted?.() ?? null) : null,
        },
        clients: people.map(observe),
        ms: Date.now() - t0,
      };
    } finally {
      await Promise.all(people.map((p) => p.client?.stop()));
    }
  },
};

/** mulberry32: the scripts' few random choices, from the plan's seed (real/ is below lab/). */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function logSize(path: string): number {
  try {
    return statSync(path).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw e;
  }
}

/**
 * The server's own word that it handled a SIGBUS on a client's segment: ShmBusfaultNotify
 * logs "shared memory 0x%x truncated by client" with the ShmSeg id, whose resource-id base
 * names the client. Noted as "busfault: ..." on that client (the only evidence a client
 * has of a fault it was never told about).
 */
function noteBusfaults(path: string, from: number, people: Participant[]): void {
  let text = "";
  try {
    text = readFileSync(path, "utf8").slice(from);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  for (const m of text.matchAll(/shared memory 0x([0-9a-f]+) truncated by client/g)) {
    const seg = Number.parseInt(m[1], 16);
    const p = people.find((q) => {
      const s = q.client?.conn.setup;
      return s !== undefined && (seg & ~s.ridMask) >>> 0 === s.ridBase;
    });
    p?.notes.push(`busfault: segment 0x${m[1]} freed (Xvfb log: ShmBusfaultNotify)`);
  }
}

function participant(index: number, behaviour: string, honest: boolean): Participant {
  return {
    index,
    behaviour,
    honest,
    client: null,
    pixels: "unchecked",
    waitingFor: null,
    notes: [],
    failure: null,
  };
}

function foreignOf(p: Participant, people: Participant[]): number[] {
  return people.filter((q) => q !== p).map((q) => q.index);
}

async function runOne(p: Participant, people: Participant[], plan: RealRunPlan): Promise<void> {
  const c = p.client!;
  const random = seededRandom(plan.seed * 1000 + p.index);
  const ctx: XScriptContext = {
    seed: plan.seed,
    index: p.index,
    params: p.index === plan.honest ? plan.params : {},
    frames: plan.frames,
    random,
    onFrame: async () => {
      if (!p.honest) return;
      const got = await c.pixels(foreignOf(p, people));
      const prev = p.pixels === "unchecked" ? "none" : p.pixels;
      // "none" only while nothing was ever checked; a later correct frame never hides a bad one.
      p.pixels = worsePixel<XPixels>(prev, got);
    },
  };
  try {
    await x11ScriptFor(p.behaviour)!(c, ctx);
  } catch (e) {
    // Never rejects: after a timeout nobody awaits this any more (the helpers are being
    // stopped under it), so a failure is kept and rethrown by run() if it is still waiting.
    p.notes.push(`script stopped: ${(e as Error).message}`);
    // The helper's own failures are observations (a syscall refused, the helper gone);
    // anything else, whatever its shape, is a bug of the driver or a script.
    if (!(e instanceof NativeError) && !(e instanceof SyscallError)) p.failure = e;
  }
}

function observe(p: Participant): RealClientObservation {
  const c = p.client!;
  const conn = c.conn;
  return {
    index: p.index,
    behaviour: p.behaviour,
    honest: p.honest,
    protocolError: conn.errors[0] ?? null,
    errors: [...conn.errors],
    connection: conn.connection,
    killed: c.helper.exited()?.signal ? c.helper.exited() : null,
    framesDone: c.completions,
    releases: c.completions,
    commits: c.puts,
    pixels: p.pixels,
    waitingFor: p.waitingFor,
    notes: [...c.notes, ...p.notes],
  };
}
