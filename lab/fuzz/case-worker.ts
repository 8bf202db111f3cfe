/**
 * The piscina entry of `shmlab fuzz --workers N`: one task per thread per batch. The thread
 * takes the next case index from a counter shared by every thread of the batch (this one,
 * the other workers and the main thread), runs the case, and sends back what the loop needs
 * (fuzz.ts CaseOutcome) tagged with its index, in one message at the end of the batch. A
 * case's outcome depends only on the case, so which thread ran it changes nothing.
 * Each thread loads the policy once, by the name or file given on the command line, as the
 * main thread did.
 */
import { loadPolicy } from "../../compositor/policies/index.ts";
import type { Policy } from "../../compositor/policy.ts";
import { type FuzzCase, runCase } from "./case.ts";
import { type CaseOutcome, outcomeOf } from "./fuzz.ts";

/** A batch as the threads share it. */
export interface BatchWork {
  policyArg: string;
  cases: FuzzCase[];
  /** [0]: the next case index to take, shared by every thread of the batch. */
  counter: Int32Array;
}

const policies = new Map<string, Promise<Policy>>();

function policyFor(arg: string): Promise<Policy> {
  let p = policies.get(arg);
  if (!p) {
    p = loadPolicy(arg);
    policies.set(arg, p);
  }
  return p;
}

/** Takes and runs cases of `work` until none is left; the outcomes tagged with their index. */
export function drainBatch(
  work: BatchWork,
  policy: Policy,
  keepResult: boolean,
): [number, CaseOutcome][] {
  const out: [number, CaseOutcome][] = [];
  for (;;) {
    const i = Atomics.add(work.counter, 0, 1);
    if (i >= work.cases.length) return out;
    const fc = work.cases[i];
    out.push([i, outcomeOf(fc, runCase(fc, policy, { features: true }), keepResult)]);
  }
}

/** A task without cases only loads the policy (the pool's start-up). */
export default async function runBatch(
  task: BatchWork | { policyArg: string },
): Promise<[number, CaseOutcome][]> {
  const policy = await policyFor(task.policyArg);
  return "cases" in task ? drainBatch(task, policy, false) : [];
}
