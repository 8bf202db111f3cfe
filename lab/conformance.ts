/**
 * Conformance: the same scenario on the simulated kernel and on the host kernel, compared
 * step by step. The host is the judge; model-only scenarios (the proposals, the model-only
 * hazards) are checked against their recorded `expect` instead.
 */
import { hostAvailability, hostKernelVersion, runOnHost } from "../native/host.ts";
import {
  isHostRunnable,
  resultKey,
  type Scenario,
  type StepResult,
  sameResult,
} from "../shm/scenario.ts";
import { findScenarioFiles } from "../shm/scenario-files.ts";
import { runScenarioOnModel } from "../shm/scenario-runner.ts";

export type Verdict = "agree" | "disagree" | "model-only-ok" | "model-only-differs" | "no-host";

export interface ConformanceRow {
  id: string;
  path?: string;
  description: string;
  model: StepResult[];
  /** What the model is judged against: the host's results, or the recorded expect. */
  reference?: StepResult[];
  referenceKind: "host" | "expect" | "none";
  /** The step where the two first differ, or -1. */
  firstDiff: number;
  verdict: Verdict;
}

export interface ConformanceReport {
  hostKernel: string;
  hostAvailable: boolean;
  hostNote?: string;
  rows: ConformanceRow[];
  disagreements: number;
}

export function firstDifference(a: StepResult[], b: StepResult[]): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (!a[i] || !b[i] || !sameResult(a[i], b[i])) return i;
  }
  return -1;
}

export async function checkScenario(
  id: string,
  s: Scenario,
  hostOk: boolean,
  path?: string,
): Promise<ConformanceRow> {
  const model = runScenarioOnModel(s).results;
  if (!isHostRunnable(s)) {
    const d = s.expect ? firstDifference(model, s.expect) : -1;
    return {
      id,
      path,
      description: s.description,
      model,
      reference: s.expect,
      referenceKind: s.expect ? "expect" : "none",
      firstDiff: d,
      verdict: d === -1 ? "model-only-ok" : "model-only-differs",
    };
  }
  if (!hostOk) {
    return {
      id,
      path,
      description: s.description,
      model,
      referenceKind: "none",
      firstDiff: -1,
      verdict: "no-host",
    };
  }
  const host = await runOnHost(s);
  const d = firstDifference(model, host);
  return {
    id,
    path,
    description: s.description,
    model,
    reference: host,
    referenceKind: "host",
    firstDiff: d,
    verdict: d === -1 ? "agree" : "disagree",
  };
}

export async function runConformance(dir: string, filter?: string): Promise<ConformanceReport> {
  const avail = await hostAvailability();
  const rows: ConformanceRow[] = [];
  for (const f of findScenarioFiles(dir)) {
    if (filter && !f.id.includes(filter)) continue;
    rows.push(await checkScenario(f.id, f.scenario, avail.available, f.path));
  }
  return {
    hostKernel: avail.available ? hostKernelVersion() : "unavailable",
    hostAvailable: avail.available,
    hostNote: avail.available ? undefined : avail.reason,
    rows,
    disagreements: rows.filter(
      (r) => r.verdict === "disagree" || r.verdict === "model-only-differs",
    ).length,
  };
}

/** One line describing a row's first difference, for tables. */
export function describeDiff(r: ConformanceRow): string {
  if (r.firstDiff < 0) return "";
  const ref = r.reference ?? [];
  const m = r.model[r.firstDiff];
  return `step ${r.firstDiff}: model ${m ? resultKey(m) : "-"} vs ${r.referenceKind} ${
    ref[r.firstDiff] ? resultKey(ref[r.firstDiff]) : "-"
  }`;
}
