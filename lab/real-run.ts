/**
 * A run on a real compositor, classified like a model run: the driver's observation (what
 * each real client saw over a real socket) becomes the same plain facts lab/run.ts gathers
 * from the simulation (lab/verdict.ts RunFacts), and `verdictOf` decides. One rule set, so a
 * real cell and a model cell mean the same thing.
 *
 * Facts only one side can see are left out of both when compared: where the real compositor
 * offers no screen capture, pixels are unchecked, and the model's pixel facts are masked the
 * same way (maskPixels) before the two verdicts are compared.
 */
import { BASE_SCHEMA } from "../protocol/schema.ts";
import type {
  RealClientObservation,
  RealDriver,
  RealInstance,
  RealRunObservation,
  RealRunPlan,
} from "../real/target.ts";
import { x11RunFacts } from "../real/x11-facts.ts";
import type { RunRecord, RunSpec } from "./record.ts";
import { runOne } from "./run.ts";
import { errorName } from "./timeline.ts";
import { type ClientFacts, type RunFacts, type VerdictResult, verdictOf } from "./verdict.ts";

export const DEFAULT_REAL_TIMEOUT_MS = 8000;

/** A real run's outcome: the observation, the facts read off it, and their verdict. */
export interface RealRunResult extends VerdictResult {
  observation: RealRunObservation;
  facts: RunFacts;
  /** True when some client's pixels could not be checked (no capture on this compositor). */
  pixelsUnchecked: boolean;
  /** SIGBUS delivered to the compositor during the run (strace), null where unknown. */
  sigbus: number | null;
  /** The compositor's log's own words for its death, if any ("Caught signal 7 (Bus error)"). */
  faultNoted: string | null;
}

/** The plan a model spec corresponds to (same behaviour, bystanders, seed, frames, params). */
export function planOf(spec: RunSpec, timeoutMs = DEFAULT_REAL_TIMEOUT_MS): RealRunPlan {
  return {
    behaviour: spec.behaviour,
    honest: spec.honest,
    seed: spec.seed,
    frames: spec.frames,
    params: spec.params,
    timeoutMs,
  };
}

/** "wl_shm.invalid_fd" for a Wayland error, "x11.BadValue" for an X11 one, named as the model names them. */
export function realErrorName(e: NonNullable<RealClientObservation["protocolError"]>): string {
  if (e.interface === "x11") return `x11.${e.error}`;
  const named = errorName(BASE_SCHEMA, e.interface, e.code);
  // An interface our schema lacks (a newer protocol): the driver's enum name, else the number.
  return named.includes("#") && !/^\d+$/.test(e.error) ? `${e.interface}.${e.error}` : named;
}

function clientFacts(c: RealClientObservation): ClientFacts {
  const pixels = c.pixels === "unchecked" ? "none" : c.pixels;
  return {
    label: `${c.behaviour}#${c.index}`,
    honest: c.honest,
    closedBy:
      c.connection === "closed-by-server"
        ? "compositor"
        : c.connection === "closed-by-client"
          ? "client"
          : null,
    protocolError: c.protocolError ? realErrorName(c.protocolError) : null,
    pixels,
    // Unchecked pixels say nothing about being shown: no "never shown" harm from them.
    committed: c.pixels === "unchecked" ? false : c.commits > 0,
    killed: c.killed
      ? { signal: c.killed.signal ?? `exit ${c.killed.code}`, reason: "client process ended" }
      : null,
    notices: [],
  };
}

/** The facts of a real run; `sigbus` is what strace counted (faults the compositor survived). */
export function factsOfObservation(
  obs: RealRunObservation,
  sigbus: number | null,
  faultNoted: string | null = null,
): RunFacts {
  // X11 has its own facts: errors that keep the client (xErrors), and the faults Xvfb
  // logged or that a completed put over a cut file implies (real/x11-facts.ts).
  if (obs.target.kind === "xvfb") return x11RunFacts(obs);
  const exit = obs.compositor.exit;
  return {
    compositor: {
      alive: obs.compositor.alive,
      death: obs.compositor.alive
        ? null
        : {
            signal: exit?.signal ?? `exit ${exit?.code ?? "?"}`,
            reason: faultNoted ?? "real process ended",
            cause: faultNoted ?? "",
          },
      faultsHandled: obs.compositor.alive ? (sigbus ?? 0) : 0,
      zeroPages: 0,
    },
    clients: obs.clients.map(clientFacts),
  };
}

/** Facts with every pixel fact removed, for comparing with a side that could not see them. */
export function maskPixels(f: RunFacts): RunFacts {
  return {
    compositor: f.compositor,
    clients: f.clients.map((c) => ({ ...c, pixels: "none", committed: false })),
  };
}

/** An instance, with what supervision can add where it watched the process (real/instance.ts). */
export type WatchedInstance = RealInstance & {
  signalsSeen?(): { SIGBUS: number; SIGSEGV: number } | null;
  faultNoted?(): string | null;
};

/** Runs a plan on a live instance through its driver and classifies what it saw. */
export async function runReal(
  instance: WatchedInstance,
  driver: RealDriver,
  plan: RealRunPlan,
): Promise<RealRunResult> {
  if (driver.endpointKind !== instance.endpoint.kind) {
    const err = new Error(
      `a ${driver.endpointKind} driver cannot run on ${instance.kind} (${instance.endpoint.kind})`,
    ) as Error & { code: string };
    err.code = "SHMLAB_ERR_REAL_DRIVER";
    throw err;
  }
  const before = instance.signalsSeen?.() ?? null;
  const observation = await driver.run(instance, plan);
  // A death during the run may be seen by the driver before our exit handler ran: ask again.
  if (observation.compositor.alive && instance.exited()) {
    observation.compositor = { alive: false, exit: instance.exited() };
  }
  const after = instance.signalsSeen?.() ?? null;
  const sigbus = before && after ? after.SIGBUS - before.SIGBUS : null;
  const faultNoted = instance.faultNoted?.() ?? null;
  const facts = factsOfObservation(observation, sigbus, faultNoted);
  const pixelsUnchecked = observation.clients.some((c) => c.pixels === "unchecked");
  return { ...verdictOf(facts), observation, facts, pixelsUnchecked, sigbus, faultNoted };
}

/** A model run with the facts its verdict came from. */
export function runModelWithFacts(spec: RunSpec): { record: RunRecord; facts: RunFacts } {
  let facts: RunFacts | undefined;
  const record = runOne(spec, {
    onFacts: (f) => {
      facts = f;
    },
  });
  return { record, facts: facts! };
}

export interface CellPair {
  model: VerdictResult;
  real: VerdictResult;
  agree: boolean;
  /** The pixel facts were masked on both sides (no capture on the real compositor). */
  masked: boolean;
}

/**
 * The model's and the real verdict on the facts both sides could see: pixels masked on both
 * when the real run could not check them. Equal means same verdict and same cell words.
 */
export function pairVerdicts(model: RunFacts, real: RealRunResult): CellPair {
  const masked = real.pixelsUnchecked;
  // Faults the real compositor survived are unknown without strace: the model's count is
  // left out too, so neither side calls an attack "tolerated" on a fact the other lacks.
  const seen =
    real.sigbus === null
      ? { ...model, compositor: { ...model.compositor, faultsHandled: 0, zeroPages: 0 } }
      : model;
  const m = verdictOf(masked ? maskPixels(seen) : seen);
  const r = masked ? verdictOf(maskPixels(real.facts)) : { verdict: real.verdict, cell: real.cell };
  return { model: m, real: r, agree: m.verdict === r.verdict && m.cell === r.cell, masked };
}
