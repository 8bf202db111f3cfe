/**
 * Shrinking: the smallest case that still breaks the same invariant at the same place.
 *
 * Greedy and structure-aware, like lab/conformance-fuzz.ts: every candidate is a whole
 * deterministic run (tens of milliseconds), so the order of attempts matters more than
 * generality. In turn, while anything helps: fewer frames (stop just after the failure),
 * fewer hostile clients, each client cut after the last action it ran, chunks of actions
 * removed (halves, quarters, ... single actions: ddmin's schedule), fewer honest bystanders
 * (kept when the broken invariant is about them), and numbers made plainer (yields of 1).
 * Because actions address objects by slot (actions.ts), any sub-list is a valid program;
 * no repair step is needed. The seed never changes: the scheduler's choices for the smaller
 * program come from the same seed, which is what `shmlab replay` reruns.
 */
import type { Policy } from "../../compositor/policy.ts";
import type { Action, Program } from "./actions.ts";
import { actionCount } from "./actions.ts";
import { type CaseResult, type Failure, type FuzzCase, runCase, signature } from "./case.ts";

export interface ShrinkResult {
  case: FuzzCase;
  result: CaseResult;
  /** Candidate runs tried. */
  runs: number;
  /** Actions before and after. */
  from: number;
  to: number;
}

export interface ShrinkOptions {
  /** Most candidate runs (default 400). */
  maxRuns?: number;
  /** Stop after this long (ms; default 20 s). */
  maxMs?: number;
}

export function shrinkCase(
  start: FuzzCase,
  first: CaseResult,
  policy: Policy,
  opts: ShrinkOptions = {},
): ShrinkResult {
  const want = signature(first.failure as Failure);
  const maxRuns = opts.maxRuns ?? 400;
  const deadline = performance.now() + (opts.maxMs ?? 20_000);
  let best = start;
  let bestResult = first;
  let runs = 0;
  const budgetLeft = () => runs < maxRuns && performance.now() < deadline;

  const attempt = (c: FuzzCase): boolean => {
    if (!budgetLeft()) return false;
    runs++;
    const r = runCase(c, policy);
    if (r.failure && signature(r.failure) === want) {
      best = c;
      bestResult = r;
      return true;
    }
    return false;
  };
  const withClients = (clients: Action[][]): FuzzCase => ({
    ...best,
    program: { clients } satisfies Program,
  });

  let progress = true;
  while (progress && budgetLeft()) {
    progress = false;
    // Frames: stop right after the one where it broke.
    const f = bestResult.failure!.frame;
    const stopAt = Math.max(1, f);
    if (stopAt < best.frames && attempt({ ...best, frames: stopAt })) progress = true;
    // Whole clients.
    for (let i = best.program.clients.length - 1; i >= 0 && best.program.clients.length > 1; i--) {
      if (attempt(withClients(best.program.clients.filter((_, j) => j !== i)))) progress = true;
    }
    // Cut each client after the last action it ran.
    const ran = bestResult.actions;
    if (ran.length === best.program.clients.length) {
      const cut = best.program.clients.map((l, i) => l.slice(0, Math.max(0, ran[i].executed)));
      if (
        cut.some((l, i) => l.length < best.program.clients[i].length) &&
        attempt(withClients(cut))
      )
        progress = true;
    }
    // Chunks of actions, largest first.
    for (let ci = 0; ci < best.program.clients.length; ci++) {
      let chunk = Math.max(1, Math.floor(best.program.clients[ci].length / 2));
      while (chunk >= 1 && budgetLeft()) {
        let removed = false;
        for (let at = best.program.clients[ci].length - chunk; at >= 0; at -= chunk) {
          const list = best.program.clients[ci];
          const next = [...list.slice(0, at), ...list.slice(at + chunk)];
          const clients = best.program.clients.map((l, j) => (j === ci ? next : l));
          if (attempt(withClients(clients))) {
            removed = true;
            progress = true;
          }
          if (!budgetLeft()) break;
        }
        if (!removed) chunk = Math.floor(chunk / 2);
      }
    }
    // Fewer bystanders, unless they are what broke.
    const inv = bestResult.failure!.invariant;
    if (inv !== "honest-pixels" && inv !== "foreign-pixels") {
      for (const h of [0, 1]) {
        if (h < best.honest && attempt({ ...best, honest: h })) {
          progress = true;
          break;
        }
      }
    }
    // Plainer numbers: a yield of many steps becomes one.
    for (let ci = 0; ci < best.program.clients.length; ci++) {
      const list = best.program.clients[ci];
      for (let i = 0; i < list.length; i++) {
        const a = list[i];
        if (a.k !== "yield" || a.n <= 1) continue;
        const next = list.map((x, j) => (j === i ? { k: "yield" as const, n: 1 } : x));
        if (attempt(withClients(best.program.clients.map((l, j) => (j === ci ? next : l)))))
          progress = true;
      }
    }
  }
  return {
    case: best,
    result: bestResult,
    runs,
    from: actionCount(start.program),
    to: actionCount(best.program),
  };
}
