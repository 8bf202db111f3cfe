/**
 * `shmlab fuzz --minimize-corpus`: reruns every corpus entry of a policy (its features as
 * the code reaches them now, not as recorded), keeps the smallest set with the same
 * features (corpus.ts minimalSet) and removes the other files.
 */
import type { Policy } from "../../compositor/policy.ts";
import { runCase } from "./case.ts";
import {
  featureUnion,
  makeEntry,
  minimalSet,
  pruneEntries,
  readEntries,
  saveEntry,
} from "./corpus.ts";

export interface MinimizeReport {
  before: number;
  after: number;
  removed: number;
  features: number;
}

export function minimizeCorpus(out: string, policy: Policy): MinimizeReport {
  const all = readEntries(out, policy.name);
  const now = all.map((e) => {
    const fresh = makeEntry(e.case, runCase(e.case, policy, { features: true }).features ?? []);
    return fresh;
  });
  const keep = minimalSet(now);
  const removed = pruneEntries(out, all, keep);
  // Kept entries carry the features they reach now (same id: the case is unchanged).
  for (const e of keep) saveEntry(out, e, true);
  return { before: all.length, after: keep.length, removed, features: featureUnion(now).size };
}
