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

export function compare(opts: CompareOptions): CompareResult {
  const t0 = performance.now();
  const runs: RunRecord[] = [];
  const cells: Cell[] = [];
  const notApplicable: CompareResult["notApplicable"] = [];
  const total = opts.policies.length * opts.behaviours.length * opts.seeds;
  for (const policy of opts.policies) {
    const na = getPolicy(policy).notApplicable ?? {};
    for (const behaviour of opts.behaviours) {
      if (na[behaviour]) {
        notApplicable.push({ policy, behaviour, why: na[behaviour] });
        continue;
      }
      const idx: number[] = [];
      for (let i = 0; i < opts.seeds; i++) {
        const r = runOne(
          makeSpec({
            policy,
            behaviour,
            seed: opts.seed + i,
            variant: opts.variant,
            kernelFeatures: opts.kernelFeatures,
            frames: opts.frames,
            honest: opts.honest,
          }),
          { images: opts.images, trace: opts.trace ? [] : undefined },
        );
        idx.push(runs.length);
        runs.push(r);
        opts.onProgress?.(runs.length, total, r);
      }
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
    notApplicable,
    runs,
    elapsedMs: performance.now() - t0,
  };
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
