/**
 * One fuzz case, run: a program (one action list per hostile client) beside honest
 * bystanders, through the lab's ordinary deterministic run (`runOne`), with the invariants
 * checked from its afterAction/afterFrame hooks. The same case gives the same result, event
 * log and digest every time: the case is the whole input.
 */
import { createHash } from "node:crypto";
import type { Behaviour } from "../../client/behaviour.ts";
import { FAULT_PLACE_WORDS } from "../../compositor/fault-place.ts";
import type { Policy } from "../../compositor/policy.ts";
import type { KernelFeature } from "../../shm/scenario.ts";
import type { RunRecord } from "../record.ts";
import { makeSpec, Run } from "../run.ts";
import type { Program } from "./actions.ts";
import { type ActionResult, actionBehaviour, type ExecState } from "./behaviour.ts";
import { caseFeatures } from "./features.ts";
import { Checker, type InvariantName, InvariantViolation, promiseOf } from "./invariants.ts";

export interface FuzzCase {
  /** The run's seed: scheduler, deliveries, preemptions, honest clients' pixels. */
  seed: number;
  policy: string;
  variant: string;
  kernelFeatures: KernelFeature[];
  frames: number;
  honest: number;
  preempt: number;
  program: Program;
}

export const CASE_DEFAULTS = {
  variant: "standard",
  kernelFeatures: [] as KernelFeature[],
  frames: 12,
  honest: 2,
  preempt: 0.3,
};

export interface Failure {
  invariant: InvariantName;
  place: string;
  detail: string;
  frame: number;
  /** The policy's own text says this happens (e.g. `none` dies of SIGBUS). */
  expected: boolean;
}

export interface LogEvent {
  frame?: number;
  who: string;
  what: string;
  detail?: string;
}

export interface CaseResult {
  failure: Failure | null;
  /** Digest of everything deterministic: the failure, the log, the record's digest. */
  digest: string;
  /** What each fuzz client did (per client, in order). */
  actions: { label: string; executed: number; results: ActionResult[] }[];
  /** The run's timeline and kernel/compositor events (capped). */
  log: LogEvent[];
  /** Action kinds that ran (coverage). */
  kinds: string[];
  /** What the case reached (features.ts), when asked for: the fuzzer's feedback. */
  features?: Set<string>;
  record: RunRecord | null;
  /** The run's wire trace (WAYLAND_DEBUG form), when asked for: kept even if the run threw. */
  trace?: string[];
}

/** Runs one case. Never throws for anything the simulation does (that is the result). */
export function runCase(
  fc: FuzzCase,
  policy: Policy,
  opts: { trace?: boolean; features?: boolean } = {},
): CaseResult {
  const trace = opts.trace ? [] : undefined;
  const states = new Map<string, ExecState>();
  const promise = promiseOf(policy);
  const checker = new Checker(promise, fc.seed, states);
  const behaviours: Behaviour[] = fc.program.clients.map((actions) =>
    actionBehaviour(actions, (s) => states.set(s.label, s)),
  );
  let record: RunRecord | null = null;
  let failure: Failure | null = null;
  const spec = makeSpec({
    policy: fc.policy,
    behaviour: "fuzz-actions",
    seed: fc.seed,
    frames: fc.frames,
    honest: fc.honest,
    variant: fc.variant,
    kernelFeatures: fc.kernelFeatures,
    preempt: fc.preempt,
  });
  let run: Run | undefined;
  try {
    if (!behaviours.length) behaviours.push(actionBehaviour([], (s) => states.set(s.label, s)));
    run = new Run(spec, {
      policy,
      behaviour: behaviours[behaviours.length - 1],
      companions: behaviours.slice(0, -1),
      trace,
      afterAction: (v) => checker.afterAction(v),
      afterFrame: (v) => checker.afterFrame(v),
    });
    try {
      run.play();
    } finally {
      run.end();
    }
    record = run.record();
    if (!record.compositor.alive) {
      const d = record.compositor.death;
      failure = {
        invariant: "compositor-alive",
        place: d ? deathPlace(d) : "death",
        detail: `the compositor died${d ? ` of ${d.signal} (${d.reason}) at 0x${d.addr.toString(16)}: ${d.cause}` : ""}`,
        frame: record.compositor.framesRun,
        expected: promise.compositorMayDie,
      };
    }
  } catch (e) {
    failure = failureOf(e, run?.view.frame ?? 0);
  }
  const actions = [...states.values()].map((s) => ({
    label: s.label,
    executed: s.executed,
    results: s.results,
  }));
  const kinds = [...new Set([...states.values()].flatMap((s) => [...s.kindsRun]))].sort();
  // The run's own timeline, the same whether it ended or a hook stopped it.
  const log: LogEvent[] = run ? run.timeline.events.map((t) => ({ ...t })) : [];
  const digest = createHash("sha256")
    .update(JSON.stringify({ failure, actions, log, record: record?.digest ?? null }))
    .digest("hex")
    .slice(0, 16);
  const features =
    opts.features && run
      ? caseFeatures({
          kernel: run.kernel,
          comp: run.comp,
          honest: new Map(run.view.clients.map((c) => [c.label, c.honest])),
          actions,
          record,
          failure: failure ? signature(failure) : null,
        })
      : undefined;
  return {
    failure,
    digest,
    actions,
    log,
    kinds,
    record,
    ...(trace ? { trace } : {}),
    ...(features ? { features } : {}),
  };
}

/**
 * Where a death broke `compositor-alive`: the signal, the kernel's reason and, for a fault,
 * where its address lay against the read in progress (`SIGBUS (unhandled) in another
 * pool`). The signal and reason alone put two causes with two upstream fixes under one
 * signature: a handler that skipped the pool being read, and a read that ran past its pool
 * into a neighbour's short file (compositor/fault-place.ts).
 */
export function deathPlace(d: NonNullable<RunRecord["compositor"]["death"]>): string {
  const where = d.fault ? ` ${FAULT_PLACE_WORDS[d.fault]}` : "";
  return `${d.signal} (${d.reason})${where}`;
}

/** What a run that threw broke: an invariant (thrown by a hook), or the simulation itself. */
function failureOf(e: unknown, frame: number): Failure {
  if (e instanceof InvariantViolation)
    return {
      invariant: e.invariant,
      place: e.place,
      detail: e.detail,
      frame: e.frame,
      expected: false,
    };
  const err = e as Error;
  const at = (err?.stack ?? "").split("\n").find((l) => l.includes(" at ")) ?? "";
  const where = at.replace(/^\s*at\s+/, "").replace(/\(.*[\\/]([^\\/]+:\d+):\d+\)/, "($1)");
  return {
    invariant: "internal-error",
    place: `${err?.name ?? "Error"} in ${where}`,
    detail: `${err?.name ?? "Error"}: ${err?.message ?? String(e)}`,
    frame,
    expected: false,
  };
}

/** The dedup key of a failure: which invariant, and where it broke. */
export function signature(f: Failure): string {
  return `${f.invariant} @ ${f.place}`;
}
