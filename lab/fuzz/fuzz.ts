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
import {
  ACTION_KINDS,
  type ActionKind,
  actionCount,
  generateProgram,
  MUTATION_KINDS,
} from "./actions.ts";
import { CASE_DEFAULTS, type CaseResult, type FuzzCase, runCase, signature } from "./case.ts";
import { makeEntry, readEntries, saveEntry } from "./corpus.ts";
import {
  addToCorpus,
  type Finding,
  findingFileName,
  knownSignatures,
  makeFinding,
  readCorpus,
  saveFinding,
} from "./finding.ts";
import { Guide } from "./guide.ts";
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
  /** "guided" (default): mutate what reached new features; "blind": fresh cases only. */
  mode?: "guided" | "blind";
  /** Shard K of N: this run takes every N-th seed from seed + K-1 (1 <= K <= N). */
  shard?: { k: number; n: number };
  /** Guided: a fixed share of fresh (blind) cases (default: adaptive, guide.ts). */
  freshShare?: number;
  /** Guided: the share of mutations of failing entries (default guide.ts EXPLORE_FAILURES). */
  exploreFailures?: number;
  /** Asked before each batch: true stops the run (benchmarks interleaving two runs). */
  stop?: () => boolean;
  /** Shrink findings (default true; benchmarks count signatures without shrinking). */
  shrink?: boolean;
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
  /** Distinct features reached so far, and entries kept (guided). */
  features: number;
  corpus: number;
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
  /** Every feature any case reached. */
  features: Set<string>;
  /** Entries the guided loop kept (in memory; on disk in <out>/corpus/). */
  corpus: number;
  /** Each distinct failure signature, when (ms) and after how many cases it first came. */
  firstSeen: { signature: string; elapsedMs: number; runs: number }[];
  /** Cases drawn fresh by the blind generator (blind: every case; guided: its quota). */
  fresh: number;
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

/** Cases per batch: the guide's state is refreshed between batches, never within one. */
export const BATCH = 16;

/** What the loop needs back from running one case (a worker sends the same). */
export interface CaseOutcome {
  failure: CaseResult["failure"];
  digest: string;
  kinds: string[];
  features: string[];
  /** Actions each hostile client performed, in program order. */
  executed: number[];
  /** The whole result, when the case ran on this thread. */
  result?: CaseResult;
}

export function outcomeOf(fc: FuzzCase, r: CaseResult, keepResult: boolean): CaseOutcome {
  // Program client i is roster index honest + i (lab/run.ts: bystanders first), label "#n".
  const byIndex = new Map(r.actions.map((a) => [Number(a.label.split("#").pop()), a.executed]));
  return {
    executed: fc.program.clients.map((_, i) => byIndex.get(fc.honest + i) ?? 0),
    failure: r.failure,
    digest: r.digest,
    kinds: r.kinds,
    features: r.features ? [...r.features] : [],
    ...(keepResult ? { result: r } : {}),
  };
}

/** Seed of case j of this shard: shard K of N takes seed + K-1, seed + K-1 + N, ... */
export function shardSeed(o: Pick<FuzzOptions, "seed" | "shard">, j: number): number {
  const n = o.shard?.n ?? 1;
  const k = o.shard?.k ?? 1;
  return (o.seed + j * n + (k - 1)) >>> 0;
}

/** A failure's finding: shrunk and written, or (not shrinking, or known) as it came. */
function findingOf(
  o: FuzzOptions,
  fc: FuzzCase,
  r: CaseResult,
  sig: string,
  known: boolean,
): FuzzFinding {
  if (o.shrink !== false && !(known && o.out)) return reportFailure(o, fc, r, "deterministic");
  // Not shrunk: asked so (benchmarks), or already in the folder (not rewritten).
  const file = o.out ? `${o.out}/${findingFileName(o.policy.name, sig)}` : "(not written)";
  return {
    finding: makeFinding(
      fc,
      r,
      { mode: "deterministic", seed: fc.seed, actions: actionCount(fc.program), shrinkRuns: 0 },
      file,
    ),
    ...(o.out ? { file } : {}),
    fresh: !known,
    stable: true,
  };
}

/** What the findings folder holds for this policy, to replay first. */
function corpusCases(o: FuzzOptions, mode: "guided" | "blind"): FuzzCase[] {
  if (!(o.corpus ?? Boolean(o.out)) || !o.out) return [];
  const start = readCorpus(o.out)
    .entries.filter((e) => e.policy === o.policy.name)
    .map((e) => e.case);
  if (mode === "guided") for (const e of readEntries(o.out, o.policy.name)) start.push(e.case);
  return start;
}

/**
 * The loop, as a generator of batches: it yields the next batch of cases and receives their
 * outcomes in the same order, so one thread (`fuzz`) and a worker pool (`fuzzParallel`)
 * drive the very same sequence of decisions.
 */
export function* fuzzLoop(o: FuzzOptions): Generator<FuzzCase[], FuzzReport, CaseOutcome[]> {
  if (o.runs === undefined && o.timeMs === undefined && !o.stop)
    throw new Error("fuzz: give runs, timeMs or stop");
  const t0 = performance.now();
  const mode = o.mode ?? "guided";
  const guide = new Guide(o.freshShare, o.exploreFailures);
  const coverage = Object.fromEntries(
    [...ACTION_KINDS, ...MUTATION_KINDS].map((k) => [k, 0]),
  ) as Record<ActionKind, number>;
  const seen = o.out ? knownSignatures(o.out, o.policy.name) : new Set<string>();
  const sessionSeen = new Set<string>();
  const findings: FuzzFinding[] = [];
  const firstSeen: FuzzReport["firstSeen"] = [];
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
      features: guide.hits.size,
      corpus: guide.entries.length,
    });
  };

  const fold = (
    fc: FuzzCase,
    out: CaseOutcome,
    fromCorpus: boolean,
    source?: "fresh" | "mutated",
  ) => {
    runs += fromCorpus ? 0 : 1;
    for (const k of out.kinds) coverage[k as ActionKind]++;
    const isNew = guide.observe(fc, out.features, mode === "guided", out.executed, source);
    if (isNew && mode === "guided" && o.out && !fromCorpus)
      saveEntry(o.out, makeEntry(fc, out.features));
    if (!out.failure) return;
    failures++;
    const sig = signature(out.failure);
    if (sessionSeen.has(sig)) return;
    sessionSeen.add(sig);
    firstSeen.push({ signature: sig, elapsedMs: performance.now() - t0, runs });
    if (!fromCorpus && o.out)
      addToCorpus(o.out, [{ policy: o.policy.name, signature: sig, case: fc }]);
    const f = findingOf(o, fc, out.result ?? runCase(fc, o.policy), sig, seen.has(sig));
    findings.push(f);
    o.onFinding?.(f);
  };

  // The corpus first: finding cases of earlier runs, then (guided) the kept entries.
  const start = corpusCases(o, mode);
  for (let at = 0; at < start.length; at += BATCH) {
    const batch = start.slice(at, at + BATCH);
    const outs = yield batch;
    batch.forEach((fc, j) => {
      corpusRuns++;
      fold(fc, outs[j], true);
    });
  }
  const seedOf = (j: number) => shardSeed(o, j);
  const fresh = (s: number) => caseFor(o, s);
  for (let i = 0; ; ) {
    if (o.runs !== undefined && i >= o.runs) break;
    if (o.timeMs !== undefined && performance.now() - t0 >= o.timeMs) break;
    if (o.maxFindings !== undefined && findings.length >= o.maxFindings) break;
    if (o.stop?.()) break;
    guide.reweigh();
    const n = o.runs !== undefined ? Math.min(BATCH, o.runs - i) : BATCH;
    const batch: FuzzCase[] = [];
    const sources: ("fresh" | "mutated")[] = [];
    for (let j = 0; j < n; j++, i++) {
      const next = mode === "guided" ? guide.next(i, seedOf, fresh) : null;
      batch.push(next ? next.case : fresh(seedOf(i)));
      sources.push(!next || next.fresh ? "fresh" : "mutated");
    }
    const outs = yield batch;
    batch.forEach((fc, j) => {
      fold(fc, outs[j], false, sources[j]);
    });
    progress();
  }
  progress(true);
  return {
    runs,
    corpusRuns,
    elapsedMs: performance.now() - t0,
    failures,
    findings,
    coverage,
    features: new Set(guide.hits.keys()),
    corpus: guide.entries.length,
    firstSeen,
    fresh: mode === "guided" ? guide.fresh : runs,
  };
}

/** The loop on this thread. */
export function fuzz(o: FuzzOptions): FuzzReport {
  const loop = fuzzLoop(o);
  let step = loop.next(undefined as unknown as CaseOutcome[]);
  while (!step.done) {
    const outs = step.value.map((fc) =>
      outcomeOf(fc, runCase(fc, o.policy, { features: true }), true),
    );
    step = loop.next(outs);
  }
  return step.value;
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
