/**
 * The piscina entry of `shmlab fuzz --workers N`: runs one case on a worker thread and sends
 * back what the loop needs (fuzz.ts CaseOutcome). Each thread loads the policy once, by the
 * name or file given on the command line, as the main thread did.
 */
import { loadPolicy } from "../../compositor/policies/index.ts";
import type { Policy } from "../../compositor/policy.ts";
import { type FuzzCase, runCase } from "./case.ts";
import { type CaseOutcome, outcomeOf } from "./fuzz.ts";

const policies = new Map<string, Promise<Policy>>();

export default async function runOne(task: {
  policyArg: string;
  fc?: FuzzCase;
}): Promise<CaseOutcome | null> {
  let p = policies.get(task.policyArg);
  if (!p) {
    p = loadPolicy(task.policyArg);
    policies.set(task.policyArg, p);
  }
  const policy = await p;
  if (!task.fc) return null;
  return outcomeOf(task.fc, runCase(task.fc, policy, { features: true }), false);
}
