/**
 * One fuzz case, run: a program (one action list per hostile client) beside honest
 * bystanders, through the lab's ordinary deterministic run (`runOne`), with the invariants
 * checked from its afterAction/afterFrame hooks. The same case gives the same result, event
 * log and digest every time: the case is the whole input.
 */
import { createHash } from "node:crypto";
import type { Behaviour } from "../../client/behaviour.ts";
import type { Policy } from "../../compositor/policy.ts";
import type { KernelFeature } from "../../shm/scenario.ts";
import type { RunRecord } from "../record.ts";
import { makeSpec, type RunView, runOne } from "../run.ts";
import type { Program } from "./actions.ts";
import { type ActionResult, actionBehaviour, type ExecState } from "./behaviour.ts";
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
  record: RunRecord | null;
}

const LOG_CAP = 400;
const KERNEL_KINDS = new Set([
  "ftruncate",
  "SIGBUS",
  "SIGSEGV",
  "killed",
  "punch-hole",
  "add-seals",
  "fork",
  "uffd-fault",
]);

function collectLog(v: RunView | undefined, record: RunRecord | null): LogEvent[] {
  const out: LogEvent[] = [];
  if (record) for (const t of record.timeline) out.push({ ...t });
  if (!record && v) {
    // Stopped by a hook: no record, so the log comes from the kernel and the compositor.
    for (const e of v.kernel.events ?? []) {
      if (!KERNEL_KINDS.has(e.kind)) continue;
      const who = v.kernel.processes.get(e.pid)?.name ?? `pid ${e.pid}`;
      const detail = Object.entries(e.detail)
        .map(
          ([k, x]) => `${k}=${typeof x === "number" && k === "addr" ? `0x${x.toString(16)}` : x}`,
        )
        .join(" ");
      out.push({ who, what: e.kind, detail });
      if (out.length >= LOG_CAP) break;
    }
    for (const e of v.compositor.errors)
      out.push({
        frame: e.frame,
        who: "compositor",
        what: "protocol error",
        detail: `${e.client}: code ${e.code} on ${e.interface}@${e.objectId}: ${e.message}`,
      });
    for (const n of v.compositor.notices)
      out.push({
        frame: n.frame,
        who: "compositor",
        what: "policy",
        detail: `${n.client} ${n.pool}: ${n.what}`,
      });
  }
  return out.slice(0, LOG_CAP);
}

/** Runs one case. Never throws for anything the simulation does (that is the result). */
export function runCase(fc: FuzzCase, policy: Policy): CaseResult {
  const states = new Map<string, ExecState>();
  const promise = promiseOf(policy);
  const checker = new Checker(promise, fc.seed, states);
  const behaviours: Behaviour[] = fc.program.clients.map((actions) =>
    actionBehaviour(actions, (s) => states.set(s.label, s)),
  );
  let last: RunView | undefined;
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
  try {
    if (!behaviours.length) behaviours.push(actionBehaviour([], (s) => states.set(s.label, s)));
    record = runOne(spec, {
      policy,
      behaviour: behaviours[behaviours.length - 1],
      companions: behaviours.slice(0, -1),
      afterAction: (v) => {
        last = v;
        checker.afterAction(v);
      },
      afterFrame: (v) => {
        last = v;
        checker.afterFrame(v);
      },
    });
    if (!record.compositor.alive) {
      const d = record.compositor.death;
      failure = {
        invariant: "compositor-alive",
        place: d ? `${d.signal} (${d.reason})` : "death",
        detail: `the compositor died${d ? ` of ${d.signal} (${d.reason}) at 0x${d.addr.toString(16)}: ${d.cause}` : ""}`,
        frame: record.compositor.framesRun,
        expected: promise.compositorMayDie,
      };
    }
  } catch (e) {
    if (e instanceof InvariantViolation) {
      failure = {
        invariant: e.invariant,
        place: e.place,
        detail: e.detail,
        frame: e.frame,
        expected: false,
      };
    } else {
      const err = e as Error;
      const at = (err?.stack ?? "").split("\n").find((l) => l.includes(" at ")) ?? "";
      const where = at.replace(/^\s*at\s+/, "").replace(/\(.*[\\/]([^\\/]+:\d+):\d+\)/, "($1)");
      failure = {
        invariant: "internal-error",
        place: `${err?.name ?? "Error"} in ${where}`,
        detail: `${err?.name ?? "Error"}: ${err?.message ?? String(e)}`,
        frame: (last as RunView | undefined)?.frame ?? 0,
        expected: false,
      };
    }
  }
  const actions = [...states.values()].map((s) => ({
    label: s.label,
    executed: s.executed,
    results: s.results,
  }));
  const kinds = [...new Set([...states.values()].flatMap((s) => [...s.kindsRun]))].sort();
  const log = collectLog(last, record);
  const digest = createHash("sha256")
    .update(JSON.stringify({ failure, actions, log, record: record?.digest ?? null }))
    .digest("hex")
    .slice(0, 16);
  return { failure, digest, actions, log, kinds, record };
}

/** The dedup key of a failure: which invariant, and where it broke. */
export function signature(f: Failure): string {
  return `${f.invariant} @ ${f.place}`;
}
