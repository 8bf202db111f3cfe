/**
 * Fuzzing a real compositor (`shmlab fuzz --real sway`): generated action lists (the same
 * programs as the model fuzzer, lab/fuzz/actions.ts, one hostile client) run as real
 * clients against a fresh instance per case, beside honest bystanders, and beside the model
 * policy that follows that compositor's version. A case is a finding when the real
 * compositor died, when it harmed an honest client, or when the model's verdict differs
 * (the model is then wrong for that version). Findings are shrunk (greedy: drop one action
 * at a time while the same kind still comes back) and written as JSON that `shmlab replay`
 * reruns on the model and on the real compositor.
 *
 * Real runs are not seeded: the kernel, not our scheduler, orders the races. A finding's
 * kind is what must come back on replay; its exact observation may differ.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { behaviourNames, registerBehaviour } from "../../client/behaviours/index.ts";
import type { RealCompositor } from "../../real/compositor.ts";
import type { RealDriver, RealRunObservation } from "../../real/target.ts";
import { pairVerdicts, planOf, runModelWithFacts, runReal } from "../real-run.ts";
import { makeSpec } from "../run.ts";
import type { VerdictResult } from "../verdict.ts";
import { type Action, describeAction, generateProgram } from "./actions.ts";
import { actionBehaviour, FUZZ_BEHAVIOUR_NAME } from "./behaviour.ts";
import { CASE_DEFAULTS, type FuzzCase } from "./case.ts";
import { writeAtomic } from "./finding.ts";
import { Guide } from "./guide.ts";
import { realFeatures } from "./real-features.ts";

export const REAL_FINDING_SCHEMA = "shmlab.real-finding/1";

export type RealFindingKind =
  | "real-died"
  | "real-honest-harmed"
  | "real-foreign-pixels"
  | "model-disagrees";

export interface RealFuzzCase {
  seed: number;
  frames: number;
  honest: number;
  timeoutMs: number;
  actions: Action[];
}

export interface RealCaseResult {
  kind: RealFindingKind | null;
  /** Actions the driver's protocol has no form for, dropped on both sides (X11: resize...). */
  dropped: { i: number; k: string; why: string }[];
  model: VerdictResult;
  real: VerdictResult;
  observation: RealRunObservation;
}

export interface RealFinding {
  schema: typeof REAL_FINDING_SCHEMA;
  compositor: string;
  version: string;
  policy: string;
  kind: RealFindingKind;
  case: RealFuzzCase;
  /** One line per action, for reading. */
  program: string[];
  model: VerdictResult;
  real: VerdictResult;
  observation: RealRunObservation;
  replay: string;
}

function ensureRegistered(): void {
  if (!behaviourNames().includes(FUZZ_BEHAVIOUR_NAME))
    registerBehaviour(actionBehaviour(undefined));
}

/**
 * What a case is, judged: the kind of finding, or null. `foreignShown`: pixels of another
 * client the real screen showed in a window not its own (the model's foreign-pixels
 * invariant, which the verdict's cells do not carry): a leak, so a finding of its own.
 */
export function kindOf(
  real: VerdictResult,
  agree: boolean,
  foreignShown = 0,
): RealFindingKind | null {
  if (real.verdict === "died") return "real-died";
  if (real.verdict === "honest-harmed") return "real-honest-harmed";
  if (foreignShown > 0) return "real-foreign-pixels";
  if (!agree) return "model-disagrees";
  return null;
}

/**
 * Pixels of another client shown in the windows of the clients that are not honest: copies
 * of its memory (real/hostile-window.ts `foreignExact`), not a tag byte met by chance.
 */
export function foreignShown(obs: RealRunObservation): number {
  let n = 0;
  for (const c of obs.clients) if (!c.honest) n += c.window?.foreignExact ?? 0;
  return n;
}

/** The program as the driver's protocol can run it (RealDriver.programForm), and what it dropped. */
export function programFor(
  driver: RealDriver,
  actions: Action[],
): { actions: Action[]; dropped: RealCaseResult["dropped"] } {
  const form = driver.programForm?.(actions);
  return form
    ? { actions: form.actions as Action[], dropped: form.dropped }
    : { actions, dropped: [] };
}

/** Runs one case on a fresh instance and on the model policy, both on the driver's form of it. */
export async function runRealCase(
  comp: RealCompositor,
  driver: RealDriver,
  policy: string,
  given: RealFuzzCase,
): Promise<RealCaseResult> {
  ensureRegistered();
  const { actions, dropped } = programFor(driver, given.actions);
  const c = { ...given, actions };
  const spec = makeSpec({
    policy,
    behaviour: FUZZ_BEHAVIOUR_NAME,
    seed: c.seed,
    frames: c.frames,
    honest: c.honest,
    params: { actions: JSON.stringify(c.actions) },
  });
  const { facts } = runModelWithFacts(spec);
  const inst = await comp.start();
  try {
    const real = await runReal(inst, driver, planOf(spec, c.timeoutMs));
    const pair = pairVerdicts(facts, real);
    return {
      kind: kindOf(pair.real, pair.agree, foreignShown(real.observation)),
      dropped,
      model: pair.model,
      real: pair.real,
      observation: real.observation,
    };
  } finally {
    await inst.stop();
  }
}

/** Drops actions one at a time while the same kind of finding still comes back. */
export async function shrinkRealCase(
  run: (c: RealFuzzCase) => Promise<RealCaseResult>,
  c: RealFuzzCase,
  kind: RealFindingKind,
  maxAttempts: number,
): Promise<{ case: RealFuzzCase; result: RealCaseResult | null; attempts: number }> {
  let best = c;
  let bestResult: RealCaseResult | null = null;
  let attempts = 0;
  let i = best.actions.length - 1;
  while (i >= 0 && attempts < maxAttempts) {
    const cand = { ...best, actions: best.actions.filter((_, j) => j !== i) };
    attempts++;
    const r = await run(cand);
    if (r.kind === kind) {
      best = cand;
      bestResult = r;
    }
    i--;
  }
  return { case: best, result: bestResult, attempts };
}

export interface RealFuzzOptions {
  compositor: RealCompositor;
  driver: RealDriver;
  policy: string;
  version: string;
  seed: number;
  runs?: number;
  timeMs?: number;
  out?: string;
  frames: number;
  honest: number;
  timeoutMs: number;
  length: number;
  maxShrinkAttempts: number;
  /** Fresh generated cases only (default: guided by what the real client observed). */
  blind?: boolean;
  onCase?: (i: number, r: RealCaseResult) => void;
}

export interface RealFuzzReport {
  cases: number;
  /** Distinct features observed (real-features.ts), and corpus entries kept (guided). */
  features: number;
  corpus: number;
  findings: { file: string | null; finding: RealFinding }[];
  seconds: number;
}

export async function fuzzReal(o: RealFuzzOptions): Promise<RealFuzzReport> {
  const t0 = performance.now();
  const findings: RealFuzzReport["findings"] = [];
  const seen = new Set<string>();
  let i = 0;
  const more = () =>
    (o.runs === undefined || i < o.runs) &&
    (o.timeMs === undefined || performance.now() - t0 < o.timeMs);
  const run = (c: RealFuzzCase) => runRealCase(o.compositor, o.driver, o.policy, c);
  // The model fuzzer's guide and mutations (guide.ts), on one-client programs; features are
  // what the real client observed (real-features.ts). Real runs are not seeded, so a guided
  // real run is not replayable as a whole: each finding is, by its case.
  const guide = new Guide();
  const asFuzzCase = (seed: number, actions: Action[]): FuzzCase => ({
    ...CASE_DEFAULTS,
    seed,
    policy: o.policy,
    frames: o.frames,
    honest: o.honest,
    program: { clients: [actions] },
  });
  const fresh = (seed: number) =>
    asFuzzCase(seed, generateProgram(seed, { maxClients: 1, length: o.length }).clients.at(-1)!);
  for (; more(); i++) {
    guide.reweigh();
    const fc = o.blind ? fresh(o.seed + i) : guide.next(i, (j) => o.seed + j, fresh).case;
    const seed = fc.seed;
    const c: RealFuzzCase = {
      seed,
      frames: o.frames,
      honest: o.honest,
      timeoutMs: o.timeoutMs,
      // `wire` edits shmlab's own msgpack encoding: nothing a real compositor reads.
      actions: programFor(
        o.driver,
        (fc.program.clients.at(-1) ?? []).filter((a) => a.k !== "wire"),
      ).actions,
    };
    const r = await run(c);
    guide.observe(
      asFuzzCase(seed, c.actions),
      realFeatures(r.observation, r.real, r.model),
      !o.blind,
    );
    o.onCase?.(i, r);
    if (!r.kind) continue;
    const key = `${r.kind}|${r.model.cell}|${r.real.cell}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const s = await shrinkRealCase(run, c, r.kind, o.maxShrinkAttempts);
    const final = s.result ?? r;
    const finding: RealFinding = {
      schema: REAL_FINDING_SCHEMA,
      compositor: o.compositor.kind,
      version: o.version,
      policy: o.policy,
      kind: r.kind,
      case: s.case,
      program: s.case.actions.map(describeAction),
      model: final.model,
      real: final.real,
      observation: final.observation,
      replay: "",
    };
    let file: string | null = null;
    if (o.out) {
      mkdirSync(o.out, { recursive: true });
      file = join(o.out, `real-${o.compositor.kind}-${r.kind}-seed${seed}.json`);
      finding.replay = `npx shmlab replay ${file}`;
      writeAtomic(file, `${JSON.stringify(finding, null, 1)}\n`);
    }
    findings.push({ file, finding });
  }
  return {
    cases: i,
    features: guide.hits.size,
    corpus: guide.entries.length,
    findings,
    seconds: (performance.now() - t0) / 1000,
  };
}
