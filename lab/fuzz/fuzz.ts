/**
 * The deterministic fuzzer: the corpus first, then case after case from the seed (case i
 * has seed `seed + i`: its program and its run's scheduling both come from it), every
 * failure shrunk, replayed once more to prove the digest stable, deduplicated by (policy,
 * invariant, place) against this session and the findings folder, and written atomically.
 *
 * Why not fast-check's fc.commands / fc.scheduler (both were considered):
 *   - The interleaving already has an owner: lab/scheduler.ts's SeededScheduler, seeded from
 *     the run's seed, decides which client step runs at which page of the compositor's read.
 *     fc.scheduler orders promises; a run here has none (it is synchronous, and must be, to
 *     replay from a seed). Two schedulers would mean two seeds to replay one finding.
 *   - fc.commands runs commands one by one against a system and a model in one driver. Here
 *     the commands are executed by several client generators *inside* runOne, interleaved
 *     with the compositor, and the invariants are checked from runOne's hooks; the "model" is
 *     the policy's promise, not a state machine beside the system.
 *   - A finding must be a plain JSON file replayable by `shmlab replay` without fast-check's
 *     seed+path encoding (which changes when the arbitraries change).
 *   - Each shrink candidate is a whole simulation (~20-70 ms). The structure-aware greedy
 *     shrinker (shrink.ts: frames, whole clients, cut-after-last-action, ddmin chunks, honest
 *     count) gets to a minimal case in far fewer runs than generic list shrinking.
 */
import { resolve } from "node:path";
import type { Policy } from "../../compositor/policy.ts";
import type { KernelFeature } from "../../shm/scenario.ts";
import { ACTION_KINDS, type ActionKind, actionCount, generateProgram } from "./actions.ts";
import { CASE_DEFAULTS, type CaseResult, type FuzzCase, runCase, signature } from "./case.ts";
import {
  addToCorpus,
  type CorpusEntry,
  type Finding,
  findingFileName,
  knownSignatures,
  makeFinding,
  readCorpus,
  saveFinding,
} from "./finding.ts";
import { shrinkCase } from "./shrink.ts";

export interface FuzzOptions {
  policy: Policy;
  /** As given on the command line: a built-in name or a file path (kept in findings). */
  policyArg: string;
  seed: number;
  /** Stop after this many cases... */
  runs?: number;
  /** ...or after this long (ms). At least one of the two. */
  timeMs?: number;
  /** Findings folder; undefined = keep nothing on disk. */
  out?: string;
  variant?: string;
  kernelFeatures?: KernelFeature[];
  frames?: number;
  honest?: number;
  preempt?: number;
  /** Most hostile clients per case. */
  maxClients?: number;
  /** Actions per client, roughly. */
  length?: number;
  /** Stop once this many distinct findings were made. */
  maxFindings?: number;
  /** Replay the corpus first (default true when `out` is set). */
  corpus?: boolean;
  /** Shrink budget per finding. */
  shrinkRuns?: number;
  shrinkMs?: number;
  onProgress?: (p: FuzzProgress) => void;
  /** Called for every finding as it is made. */
  onFinding?: (f: FuzzFinding) => void;
}

export interface FuzzProgress {
  runs: number;
  elapsedMs: number;
  runsPerSecond: number;
  findings: number;
  expected: number;
  /** Failures seen, counting duplicates. */
  failures: number;
  kindsCovered: number;
  kindsTotal: number;
}

export interface FuzzFinding {
  finding: Finding;
  file?: string;
  /** Written now (false: the folder already had this signature). */
  fresh: boolean;
  /** Replayed after shrinking with the same digest. */
  stable: boolean;
}

export interface FuzzReport {
  runs: number;
  corpusRuns: number;
  elapsedMs: number;
  failures: number;
  findings: FuzzFinding[];
  coverage: Record<ActionKind, number>;
}

export function caseFor(o: FuzzOptions, seed: number): FuzzCase {
  const policyName = o.policy.name;
  return {
    seed,
    policy: policyName,
    variant: o.variant ?? CASE_DEFAULTS.variant,
    kernelFeatures: o.kernelFeatures ?? CASE_DEFAULTS.kernelFeatures,
    frames: o.frames ?? CASE_DEFAULTS.frames,
    honest: o.honest ?? CASE_DEFAULTS.honest,
    preempt: o.preempt ?? CASE_DEFAULTS.preempt,
    program: generateProgram(seed, { maxClients: o.maxClients, length: o.length }),
  };
}

/**
 * Shrinks a failing case, checks the minimal one replays with the same digest, and builds
 * its finding (written to `out` when given).
 */
export function reportFailure(
  o: Pick<FuzzOptions, "policy" | "policyArg" | "out" | "shrinkRuns" | "shrinkMs">,
  fc: FuzzCase,
  r: CaseResult,
  mode: Finding["found"]["mode"],
): FuzzFinding {
  const small = shrinkCase(fc, r, o.policy, { maxRuns: o.shrinkRuns, maxMs: o.shrinkMs });
  // The replay check also records the minimal case's wire trace for the finding.
  const again = runCase(small.case, o.policy, { trace: true });
  const stable = again.digest === small.result.digest;
  // A policy from a file: keep its absolute path, so replay works from any directory.
  const policyFile = o.policyArg !== o.policy.name ? resolve(o.policyArg) : undefined;
  const dir = o.out ?? ".";
  const file = `${dir}/${findingFileName(o.policy.name, signature(r.failure!))}`;
  const finding = makeFinding(
    small.case,
    { ...small.result, trace: again.trace },
    { mode, seed: fc.seed, actions: actionCount(fc.program), shrinkRuns: small.runs },
    file,
    policyFile,
  );
  if (!o.out) return { finding, fresh: true, stable };
  const saved = saveFinding(o.out, finding);
  return { finding, file: saved.file, fresh: saved.fresh, stable };
}

export function fuzz(o: FuzzOptions): FuzzReport {
  if (o.runs === undefined && o.timeMs === undefined) throw new Error("fuzz: give runs or timeMs");
  const t0 = performance.now();
  const coverage = Object.fromEntries(ACTION_KINDS.map((k) => [k, 0])) as Record<
    ActionKind,
    number
  >;
  const seen = o.out ? knownSignatures(o.out, o.policy.name) : new Set<string>();
  const sessionSeen = new Set<string>();
  const findings: FuzzFinding[] = [];
  const corpusAdds: CorpusEntry[] = [];
  let runs = 0;
  let failures = 0;
  let corpusRuns = 0;
  let lastProgress = 0;

  const progress = (force = false) => {
    const now = performance.now();
    if (!o.onProgress || (!force && now - lastProgress < 250)) return;
    lastProgress = now;
    const elapsedMs = now - t0;
    o.onProgress({
      runs,
      elapsedMs,
      runsPerSecond: runs / Math.max(0.001, elapsedMs / 1000),
      findings: findings.length,
      expected: findings.filter((f) => f.finding.expected).length,
      failures,
      kindsCovered: ACTION_KINDS.filter((k) => coverage[k] > 0).length,
      kindsTotal: ACTION_KINDS.length,
    });
  };

  const one = (fc: FuzzCase, fromCorpus: boolean) => {
    const r = runCase(fc, o.policy);
    runs++;
    for (const k of r.kinds) coverage[k as ActionKind]++;
    if (r.failure) {
      failures++;
      const sig = signature(r.failure);
      if (!sessionSeen.has(sig)) {
        sessionSeen.add(sig);
        if (!fromCorpus) corpusAdds.push({ policy: o.policy.name, signature: sig, case: fc });
        if (!seen.has(sig) || !o.out) {
          const f = reportFailure(o, fc, r, "deterministic");
          findings.push(f);
          o.onFinding?.(f);
        } else {
          // Already in the folder: still a finding of this session, not rewritten.
          const file = `${o.out}/${findingFileName(o.policy.name, sig)}`;
          const f: FuzzFinding = {
            finding: makeFinding(
              fc,
              r,
              {
                mode: "deterministic",
                seed: fc.seed,
                actions: actionCount(fc.program),
                shrinkRuns: 0,
              },
              file,
            ),
            file,
            fresh: false,
            stable: true,
          };
          findings.push(f);
          o.onFinding?.(f);
        }
      }
    }
    progress();
  };

  const useCorpus = o.corpus ?? Boolean(o.out);
  if (useCorpus && o.out) {
    for (const e of readCorpus(o.out).entries) {
      if (e.policy !== o.policy.name) continue;
      corpusRuns++;
      one(e.case, true);
    }
  }
  for (let i = 0; ; i++) {
    if (o.runs !== undefined && i >= o.runs) break;
    if (o.timeMs !== undefined && performance.now() - t0 >= o.timeMs) break;
    if (o.maxFindings !== undefined && findings.length >= o.maxFindings) break;
    one(caseFor(o, (o.seed + i) >>> 0), false);
  }
  if (o.out) addToCorpus(o.out, corpusAdds);
  progress(true);
  return {
    runs,
    corpusRuns,
    elapsedMs: performance.now() - t0,
    failures,
    findings,
    coverage,
  };
}

/** What `shmlab replay` reports. */
export interface ReplayResult {
  result: CaseResult;
  /** Same invariant at the same place. */
  sameFailure: boolean;
  /** Same digest: the very same run. */
  sameDigest: boolean;
}

export function replayFinding(
  f: Finding,
  policy: Policy,
  opts: { trace?: boolean } = {},
): ReplayResult {
  const result = runCase(f.case, policy, opts);
  return {
    result,
    sameFailure: !!result.failure && signature(result.failure) === f.signature,
    sameDigest: result.digest === f.digest,
  };
}
