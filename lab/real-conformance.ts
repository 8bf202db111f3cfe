/**
 * Policy conformance against real compositors: every applicable catalogue behaviour on each
 * model policy and on the real compositor (at the installed version) that policy says it
 * follows, both classified by the same verdict rules, cell by cell. Each real run gets a
 * fresh instance (a case must not inherit a wounded compositor), stopped before the next.
 */
import { getPolicy, policyNames } from "../compositor/policies/index.ts";
import { getReal } from "../real/index.ts";
import type { Availability, RealKind } from "../real/target.ts";
import { defaultBehaviours } from "./compare.ts";
import { driverFor } from "./real-drivers.ts";
import {
  pairVerdicts,
  planOf,
  type RealRunResult,
  runModelWithFacts,
  runReal,
  type WatchedInstance,
} from "./real-run.ts";
import { makeSpec } from "./run.ts";
import type { VerdictResult } from "./verdict.ts";

export const REAL_CONFORMANCE_SCHEMA = "shmlab.real-conformance/1";

export interface RealConformanceOptions {
  compositors: RealKind[];
  /** Default: every catalogue behaviour (the driver says which do not apply). */
  behaviours?: string[];
  seed: number;
  frames: number;
  honest: number;
  timeoutMs?: number;
  /**
   * Real runs are not seeded: the compositor's own scheduling decides some races. A cell
   * whose real verdict disagrees is run again, on a fresh instance, up to this many times
   * (default 1); every real verdict seen is kept in the cell, and a cell that agreed only on
   * a rerun is reported as flipped, never silently as agreed.
   */
  retries?: number;
  onCell?: (c: RealConformanceCell) => void;
  /** Where compositors come from (tests pass fakes); real/index.ts getReal by default. */
  compositorOf?: (kind: RealKind) => RealCompositorLike;
}

/** What conformance needs of a compositor (real/compositor.ts RealCompositor fits). */
export interface RealCompositorLike {
  readonly protocol: "wayland" | "x11";
  probe(): Availability;
  start(): Promise<WatchedInstance>;
}

export interface RealConformanceCell {
  compositor: RealKind;
  policy: string;
  behaviour: string;
  model: VerdictResult;
  /** null when the real run could not be made (see `error`). */
  real: VerdictResult | null;
  agree: boolean;
  /** Pixel facts were masked on both sides (the real compositor offered no capture). */
  masked: boolean;
  /** The driver cannot run this behaviour, or the run failed: why. */
  error?: string;
  /** Not applicable to this compositor: not counted as a disagreement. */
  notApplicable?: boolean;
  /** The real run's observation, for the record (JSON only). */
  observation?: RealRunResult["observation"];
  /**
   * Every real verdict seen for this cell, first run first, when a disagreement made it run
   * again (null: that run failed); the cell agrees if one of them matched the model
   * (`flipped`: not the first).
   */
  realRuns?: (VerdictResult | null)[];
  flipped?: boolean;
}

export interface RealConformanceTarget {
  compositor: RealKind;
  available: boolean;
  /** The installed version ("weston 10.0.1 / libwayland-server 1.21.0"), or null. */
  version: string | null;
  /** Why it was skipped (not installed, no driver, no policy follows this version). */
  skipped?: string;
  /** The policies held against it, and those that follow other versions of it. */
  policies: string[];
  otherVersions: { policy: string; version: string }[];
  cells: number;
  disagreements: number;
  /** Seconds of wall clock for its real runs, instance starts included. */
  seconds: number;
}

export interface RealConformanceReport {
  schema: typeof REAL_CONFORMANCE_SCHEMA;
  options: Omit<RealConformanceOptions, "onCell" | "compositorOf">;
  targets: RealConformanceTarget[];
  cells: RealConformanceCell[];
  disagreements: number;
  errors: number;
}

/** The policies that follow `kind` at `version`, and those that follow it at another one. */
export function policiesFollowing(
  kind: RealKind,
  version: string,
): { matching: string[]; other: { policy: string; version: string }[] } {
  const matching: string[] = [];
  const other: { policy: string; version: string }[] = [];
  for (const name of policyNames()) {
    for (const f of getPolicy(name).follows ?? []) {
      if (f.compositor !== kind) continue;
      if (new RegExp(f.version).test(version)) matching.push(name);
      else other.push({ policy: name, version: f.version });
    }
  }
  return { matching: [...new Set(matching)], other };
}

interface RealAttempt {
  real: RealRunResult | null;
  error?: string;
  notApplicable: boolean;
}

/** One real run of a plan on a fresh instance, stopped before it returns. */
async function realAttempt(
  comp: RealCompositorLike,
  driver: Parameters<typeof runReal>[1],
  plan: ReturnType<typeof planOf>,
): Promise<RealAttempt> {
  const inst = await comp.start();
  try {
    return { real: await runReal(inst, driver, plan), notApplicable: false };
  } catch (e) {
    const notApplicable = isNotApplicable(e);
    const err = e as Error & { code?: string };
    if (!notApplicable && !err.code) throw e;
    return {
      real: null,
      notApplicable,
      error: `${err.message}${err.code ? ` [${err.code}]` : ""}`,
    };
  } finally {
    await inst.stop();
  }
}

/** The policy held against `kind` at `version` (the first that follows it), or null. */
export function realCompositorPolicy(kind: RealKind, version: string): string | null {
  return policiesFollowing(kind, version).matching[0] ?? null;
}

/** A driver's refusal of a behaviour it cannot express on this wire (a stable code). */
function isNotApplicable(e: unknown): boolean {
  const code = (e as { code?: string }).code ?? "";
  return /UNSUPPORTED|NOT_APPLICABLE/.test(code);
}

export async function runRealConformance(
  opts: RealConformanceOptions,
): Promise<RealConformanceReport> {
  const behaviours = opts.behaviours ?? defaultBehaviours();
  const targets: RealConformanceTarget[] = [];
  const cells: RealConformanceCell[] = [];
  for (const kind of opts.compositors) {
    const comp = (opts.compositorOf ?? getReal)(kind);
    const a = comp.probe();
    const target: RealConformanceTarget = {
      compositor: kind,
      available: a.available,
      version: a.available ? a.version : null,
      policies: [],
      otherVersions: [],
      cells: 0,
      disagreements: 0,
      seconds: 0,
    };
    targets.push(target);
    if (!a.available) {
      target.skipped = a.why;
      continue;
    }
    const { matching, other } = policiesFollowing(kind, a.version);
    target.policies = matching;
    target.otherVersions = other;
    if (!matching.length) {
      target.skipped = `no model policy follows ${a.version}`;
      continue;
    }
    const driver = await driverFor(comp.protocol);
    if (!("run" in driver)) {
      target.skipped = driver.why;
      continue;
    }
    const t0 = performance.now();
    for (const behaviour of behaviours) {
      const spec = makeSpec({
        policy: matching[0],
        behaviour,
        seed: opts.seed,
        frames: opts.frames,
        honest: opts.honest,
      });
      const models = matching.map((policy) => ({
        policy,
        ...runModelWithFacts({ ...spec, policy }),
      }));
      const runs: RealAttempt[] = [];
      const disagrees = (a: RealAttempt) =>
        !a.real || models.some((m) => !pairVerdicts(m.facts, a.real!).agree);
      do runs.push(await realAttempt(comp, driver, planOf(spec, opts.timeoutMs)));
      while (runs.length <= (opts.retries ?? 1) && !runs[0].error && runs.every(disagrees));
      for (const { policy, record, facts } of models) {
        const pairs = runs.map((r) => (r.real ? pairVerdicts(facts, r.real) : null));
        const hit = pairs.findIndex((p) => p?.agree);
        const shown = Math.max(hit, 0);
        const pair = pairs[shown];
        const cell: RealConformanceCell = {
          compositor: kind,
          policy,
          behaviour,
          model: pair?.model ?? { verdict: record.verdict, cell: record.cell },
          real: pair?.real ?? null,
          agree: pair?.agree ?? false,
          masked: pair?.masked ?? false,
          error: runs[shown].error,
          notApplicable: runs[shown].notApplicable || undefined,
          observation: runs[shown].real?.observation,
        };
        if (runs.length > 1) {
          cell.realRuns = pairs.map((p) => p?.real ?? null);
          cell.flipped = hit > 0;
        }
        cells.push(cell);
        target.cells++;
        if (!cell.agree && !cell.error) target.disagreements++;
        opts.onCell?.(cell);
      }
    }
    target.seconds = (performance.now() - t0) / 1000;
  }
  const { onCell: _c, compositorOf: _o, ...options } = opts;
  return {
    schema: REAL_CONFORMANCE_SCHEMA,
    options,
    targets,
    cells,
    disagreements: cells.filter((c) => !c.agree && !c.error).length,
    errors: cells.filter((c) => c.error && !c.notApplicable).length,
  };
}
