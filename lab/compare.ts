/**
 * The comparison: every selected policy against every selected behaviour, on the same seeds,
 * so every policy meets exactly the same attack. A cell's verdict is the worst of its runs.
 */
import { behaviourNames, getBehaviour } from "../client/behaviours/index.ts";
import { getPolicy, policyNames } from "../compositor/policies/index.ts";
import type { KernelFeature } from "../shm/scenario.ts";
import type { RunRecord, Verdict } from "./record.ts";
import { makeSpec, runOne } from "./run.ts";

export const COMPARE_SCHEMA = "shmlab.compare/1";

/** Worst first: the order a cell's runs are summarised in. */
export const VERDICT_SEVERITY: readonly Verdict[] = [
  "died",
  "honest-harmed",
  "undetected",
  "tolerated",
  "error-to-client",
  "ok",
];

export interface CompareOptions {
  policies: string[];
  behaviours: string[];
  /** Base seed; run i uses seed + i. */
  seed: number;
  seeds: number;
  variant: string;
  kernelFeatures: KernelFeature[];
  frames: number;
  honest: number;
  images?: boolean;
  /** Keep each run's wire trace (WAYLAND_DEBUG form) in its record (RunRecord.trace). */
  trace?: boolean;
  /**
   * Users' behaviour files (absolute paths) named in `behaviours` by their names: a worker
   * thread loads them before it runs (lab/compare-worker.ts), as the CLI did in its own.
   */
  behaviourFiles?: string[];
  onProgress?: (done: number, total: number, last: RunRecord) => void;
}

export interface Cell {
  policy: string;
  behaviour: string;
  verdict: Verdict;
  /** The worst run's cell text, with "k/n" when the seeds did not all agree. */
  text: string;
  /** Indexes into CompareResult.runs. */
  runs: number[];
  /** How many runs had each verdict. */
  verdicts: Partial<Record<Verdict, number>>;
}

export interface CompareResult {
  schema: typeof COMPARE_SCHEMA;
  options: Omit<CompareOptions, "onProgress" | "images" | "trace">;
  policies: { name: string; source: string; summary: string; clientReceives: string }[];
  behaviours: { name: string; honest: boolean; description: string; source: string }[];
  cells: Cell[];
  /**
   * Pairs the policy's protocol cannot express (Policy.notApplicable: MIT-SHM has no pool
   * resize): not run, shown as "n/a" with the reason, never as an invented verdict.
   */
  notApplicable: { policy: string; behaviour: string; why: string }[];
  runs: RunRecord[];
  elapsedMs: number;
}

/** Behaviours that only mean something in a worker thread (their "attack" is the thread). */
const WORKER_ONLY = new Set(["worker-throws", "worker-exits", "worker-hangs"]);

export function defaultBehaviours(): string[] {
  return behaviourNames().filter((b) => !WORKER_ONLY.has(b));
}

/** Every policy but the models of older versions (they run where those are installed). */
export function defaultPolicies(): string[] {
  return policyNames().filter((n) => !getPolicy(n).versionOf && !getPolicy(n).variantOf);
}

/** Checks names up front: unknown ones are an error that lists the valid ones. */
export function checkNames(kind: "policy" | "behaviour", names: string[], valid: string[]): void {
  const bad = names.filter((n) => !valid.includes(n) && !n.includes("/") && !n.endsWith(".ts"));
  if (bad.length) {
    const err = new Error(
      `unknown ${kind}${bad.length > 1 ? "s" : ""} ${bad.join(", ")}; valid: ${valid.join(", ")}`,
    ) as Error & { code: string };
    err.code = "SHMLAB_ERR_UNKNOWN_NAME";
    throw err;
  }
}

export function worstVerdict(vs: Verdict[]): Verdict {
  return VERDICT_SEVERITY.find((v) => vs.includes(v)) ?? "ok";
}

/** One run of a comparison: a policy, a behaviour and the index of its seed. */
export interface CompareTask {
  policy: string;
  behaviour: string;
  seedIndex: number;
}

/**
 * The runs of a comparison in their canonical order (policies, then behaviours, then
 * seeds), and the pairs that are not run. Every way of running a comparison — one thread or
 * many — runs exactly these and puts their records in this order.
 */
export function planCompare(opts: CompareOptions): {
  tasks: CompareTask[];
  notApplicable: CompareResult["notApplicable"];
} {
  const tasks: CompareTask[] = [];
  const notApplicable: CompareResult["notApplicable"] = [];
  for (const policy of opts.policies) {
    const na = getPolicy(policy).notApplicable ?? {};
    for (const behaviour of opts.behaviours) {
      if (na[behaviour]) {
        notApplicable.push({ policy, behaviour, why: na[behaviour] });
        continue;
      }
      for (let i = 0; i < opts.seeds; i++) tasks.push({ policy, behaviour, seedIndex: i });
    }
  }
  return { tasks, notApplicable };
}

/** What running one task needs besides the task: the same in every thread. */
export type RunSettings = Pick<
  CompareOptions,
  | "seed"
  | "variant"
  | "kernelFeatures"
  | "frames"
  | "honest"
  | "images"
  | "trace"
  | "behaviourFiles"
>;

/** Runs one task of a comparison (in whichever thread). */
export function runTask(t: CompareTask, s: RunSettings): RunRecord {
  return runOne(
    makeSpec({
      policy: t.policy,
      behaviour: t.behaviour,
      seed: s.seed + t.seedIndex,
      variant: s.variant,
      kernelFeatures: s.kernelFeatures,
      frames: s.frames,
      honest: s.honest,
    }),
    { images: s.images, trace: s.trace ? [] : undefined },
  );
}

/** The comparison's result from its tasks' records, in task order. */
export function assembleCompare(
  opts: CompareOptions,
  plan: ReturnType<typeof planCompare>,
  runs: RunRecord[],
  elapsedMs: number,
): CompareResult {
  const cells: Cell[] = [];
  let at = 0;
  while (at < plan.tasks.length) {
    const { policy, behaviour } = plan.tasks[at];
    const idx: number[] = [];
    while (
      at < plan.tasks.length &&
      plan.tasks[at].policy === policy &&
      plan.tasks[at].behaviour === behaviour
    )
      idx.push(at++);
    const vs = idx.map((i) => runs[i].verdict);
    const worst = worstVerdict(vs);
    const worstRun = runs[idx[vs.indexOf(worst)]];
    const counts: Partial<Record<Verdict, number>> = {};
    for (const v of vs) counts[v] = (counts[v] ?? 0) + 1;
    const agree = vs.every((v) => v === worst);
    cells.push({
      policy,
      behaviour,
      verdict: worst,
      text: agree ? worstRun.cell : `${worstRun.cell} ${counts[worst]}/${vs.length}`,
      runs: idx,
      verdicts: counts,
    });
  }
  const { onProgress: _p, images: _i, trace: _t, ...options } = opts;
  return {
    schema: COMPARE_SCHEMA,
    options,
    policies: opts.policies.map((name) => {
      const p = getPolicy(name);
      return { name, source: p.source, summary: p.summary, clientReceives: p.clientReceives };
    }),
    behaviours: opts.behaviours.map((name) => {
      const b = getBehaviour(name);
      return { name, honest: b.honest, description: b.description, source: b.source };
    }),
    cells,
    notApplicable: plan.notApplicable,
    runs,
    elapsedMs,
  };
}

/** The comparison in this thread, run after run (lab/compare-parallel.ts spreads it). */
export function compare(opts: CompareOptions): CompareResult {
  const t0 = performance.now();
  const plan = planCompare(opts);
  const runs: RunRecord[] = [];
  for (const t of plan.tasks) {
    const r = runTask(t, opts);
    runs.push(r);
    opts.onProgress?.(runs.length, plan.tasks.length, r);
  }
  return assembleCompare(opts, plan, runs, performance.now() - t0);
}

/** The cells of two comparisons that differ (same policies and behaviours). */
export function diffCells(a: CompareResult, b: CompareResult): { a: Cell; b: Cell }[] {
  const out: { a: Cell; b: Cell }[] = [];
  for (const ca of a.cells) {
    const cb = b.cells.find((c) => c.policy === ca.policy && c.behaviour === ca.behaviour);
    if (cb && (cb.verdict !== ca.verdict || cb.text !== ca.text)) out.push({ a: ca, b: cb });
  }
  return out;
}
