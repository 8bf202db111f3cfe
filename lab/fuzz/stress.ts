/**
 * The stress mode: the same generated hostile clients, in piscina worker threads with real
 * concurrency, beside honest clients, against one compositor on this thread composing on a
 * timer — client/stress.ts's runStress (docs/workers.md), which was usable as it is: its
 * `pool` argument takes our own piscina pool, whose entry (stress-worker.ts) registers the
 * action-list behaviour in every thread; the actions travel in the session's params as JSON.
 *
 * What stress mode checks is what runStress reports after a session: the compositor alive,
 * every honest frame exactly a committed frame, no protocol error to an honest client, no
 * pool and no client process left after everyone left. (The per-frame hostile-promise and
 * memory checks need the deterministic run's hooks; they are not checked here.)
 *
 * A session that fails is not reported on its own word: its program is rerun in the
 * deterministic mode, with the session's seed and then a few neighbouring seeds and
 * preemption rates (the timing of a real race is not in the seed). Only a failure that
 * reproduces there is shrunk and written as a finding (mode "stress"); the rest are
 * listed as not reproducible, with the session's seed.
 */
import { Piscina } from "piscina";
import { behaviourNames, registerBehaviour } from "../../client/behaviours/index.ts";
import type { Policy } from "../../compositor/policy.ts";
import { workerEntry } from "../worker-bundle.ts";
import { runStress, type StressClientSpec } from "../worker-stress.ts";
import { ACTION_KINDS } from "./actions.ts";
import { actionBehaviour, FUZZ_BEHAVIOUR_NAME } from "./behaviour.ts";
import { type FuzzCase, runCase, signature } from "./case.ts";
import { knownSignatures } from "./finding.ts";
import { caseFor, type FuzzFinding, type FuzzOptions, reportFailure } from "./fuzz.ts";

export interface StressFuzzOptions extends FuzzOptions {
  /** Worker threads (each runs one client of a session). */
  workers: number;
  /** One session's length (ms; default 1000). */
  sessionMs?: number;
  /** Deterministic reruns tried per failing session (default 6). */
  recheck?: number;
}

export interface StressFuzzReport {
  sessions: number;
  failures: number;
  findings: FuzzFinding[];
  /** Failures that did not reproduce deterministically: "seed N: what". */
  unreproduced: string[];
  /** Per session: its seed, what failed (or null), and how each hostile worker client ended. */
  log: {
    seed: number;
    failure: string | null;
    hostile: { label: string; outcome: string; commits: number; requests: number }[];
  }[];
  elapsedMs: number;
}

const WORKER = new URL("./stress-worker.ts", import.meta.url);

function ensureRegistered(): void {
  if (!behaviourNames().includes(FUZZ_BEHAVIOUR_NAME))
    registerBehaviour(actionBehaviour(undefined));
}

/** What a stress session's report says went wrong, or null. */
function sessionFailure(
  rep: Awaited<ReturnType<typeof runStress>>,
  mayDie: boolean,
): string | null {
  // A death the policy promises is still reported (as expected), as in the deterministic mode.
  if (!rep.compositorAlive)
    return `compositor died${mayDie ? " (expected)" : ""}: ${rep.compositorDeath}`;
  for (const c of rep.clients) {
    if (!c.honest) continue;
    if (c.badFrames > 0) return `honest ${c.label}: ${c.firstBad}`;
    if (c.protocolError) return `honest ${c.label} got protocol error ${c.protocolError.code}`;
  }
  if (rep.poolsLeft > 0) return `${rep.poolsLeft} pool(s) left after every client left`;
  if (rep.processesLeft > 0) return `${rep.processesLeft} client process(es) left`;
  return null;
}

export async function fuzzStress(o: StressFuzzOptions): Promise<StressFuzzReport> {
  ensureRegistered();
  const t0 = performance.now();
  const threads = Math.max(1, o.workers);
  // The threads load stress-worker.ts bundled (lab/worker-bundle.ts).
  const entry = await workerEntry(WORKER);
  const pool = new Piscina({
    filename: entry.filename,
    minThreads: threads,
    maxThreads: threads,
    concurrentTasksPerWorker: 1,
    idleTimeout: 60_000,
    execArgv: entry.execArgv,
  });
  await Promise.all(Array.from({ length: threads }, () => pool.run({ warm: true })));
  const mayDie = /compositor dies/i.test(o.policy.clientReceives);
  const seen = o.out ? knownSignatures(o.out, o.policy.name) : new Set<string>();
  const findings: FuzzFinding[] = [];
  const unreproduced: string[] = [];
  const log: StressFuzzReport["log"] = [];
  // Coverage here is of the kinds sent to the workers (their results stay in the threads).
  const kinds = new Set<string>();
  let sessions = 0;
  let failures = 0;
  try {
    for (let i = 0; ; i++) {
      if (o.runs !== undefined && i >= o.runs) break;
      if (o.timeMs !== undefined && performance.now() - t0 >= o.timeMs) break;
      const fc = caseFor(o, (o.seed + i) >>> 0);
      const hostile = fc.program.clients.slice(0, Math.max(1, threads - 1));
      for (const a of hostile.flat()) kinds.add(a.k);
      const honest = Math.min(fc.honest, threads - hostile.length);
      const clients: StressClientSpec[] = [
        ...Array.from({ length: honest }, () => ({
          behaviour: "honest-renderer",
          params: { frames: 0, seal: true, width: 48, height: 48 },
        })),
        ...hostile.map((actions) => ({
          behaviour: FUZZ_BEHAVIOUR_NAME,
          params: { actions: JSON.stringify(actions) },
        })),
      ];
      const rep = await runStress(
        {
          clients,
          durationMs: o.sessionMs ?? 1000,
          threads,
          policy: o.policy.name,
          seed: fc.seed,
          width: 256,
          height: 128,
          hangMs: 5000,
        },
        pool,
      );
      sessions++;
      const what = sessionFailure(rep, mayDie);
      log.push({
        seed: fc.seed,
        failure: what,
        hostile: rep.clients
          .filter((c) => !c.honest)
          .map((c) => ({
            label: c.label,
            outcome: c.outcome,
            commits: c.commits,
            requests: c.channel?.calls ?? 0,
          })),
      });
      if (what) {
        failures++;
        const det: FuzzCase = { ...fc, honest, program: { clients: hostile } };
        const got = recheck(o.policy, det, o.recheck ?? 6);
        if (!got) {
          unreproduced.push(`seed ${fc.seed}: ${what}`);
        } else if (!findings.some((f) => f.finding.signature === signature(got.r.failure!))) {
          const sig = signature(got.r.failure!);
          if (!seen.has(sig) || !o.out) {
            const f = reportFailure(o, got.fc, got.r, "stress");
            findings.push(f);
            o.onFinding?.(f);
          }
        }
      }
      o.onProgress?.({
        runs: sessions,
        elapsedMs: performance.now() - t0,
        runsPerSecond: sessions / ((performance.now() - t0) / 1000),
        findings: findings.length,
        expected: findings.filter((f) => f.finding.expected).length,
        failures,
        kindsCovered: kinds.size,
        kindsTotal: ACTION_KINDS.length,
        features: 0,
        corpus: 0,
      });
    }
  } finally {
    await pool.destroy();
  }
  return { sessions, failures, findings, unreproduced, log, elapsedMs: performance.now() - t0 };
}

/** Deterministic reruns of a stress session's program: its seed, then neighbours. */
export function recheck(
  policy: Policy,
  fc: FuzzCase,
  tries: number,
): { fc: FuzzCase; r: ReturnType<typeof runCase> } | null {
  const preempts = [fc.preempt, 0.6, 0.9];
  for (let t = 0; t < tries; t++) {
    const c: FuzzCase = {
      ...fc,
      seed: (fc.seed + t) >>> 0,
      preempt: preempts[t % preempts.length],
    };
    const r = runCase(c, policy);
    if (r.failure) return { fc: c, r };
  }
  return null;
}
