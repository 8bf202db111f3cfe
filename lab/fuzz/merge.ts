/**
 * `shmlab fuzz merge DIR... --out OUT`: the findings folders of several runs (the shards of
 * a CI matrix, or runs on several machines) as one.
 *
 *   - findings: one file per (policy, signature) — the file name is a hash of both
 *     (finding.ts findingFileName), so two shards' copies of a finding are the same name;
 *     the one with the smaller minimal case is kept;
 *   - the guided corpus (corpus/<id>.json): entries chosen so that the merged corpus holds
 *     the union of the shards' features (corpus.ts minimalSet, per policy: the smallest set
 *     that keeps every feature);
 *   - corpus.json (the cases that found something): the union, once per (policy, seed,
 *     signature).
 *
 * Every file is written atomically; merging into a folder that already has files merges
 * them too (OUT is one of the inputs).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { actionCount } from "./actions.ts";
import { type CorpusFile, featureUnion, minimalSet, readEntries, saveEntry } from "./corpus.ts";
import {
  addToCorpus,
  FINDING_SCHEMA,
  type Finding,
  findingFileName,
  readCorpus,
  writeAtomic,
} from "./finding.ts";

export interface MergeReport {
  findings: number;
  entries: number;
  features: number;
  /** Findings files read, entries read (duplicates included). */
  findingsIn: number;
  entriesIn: number;
}

function findingsIn(dir: string): Finding[] {
  if (!existsSync(dir)) return [];
  const out: Finding[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (!name.endsWith(".json") || name === "corpus.json") continue;
    const f = JSON.parse(readFileSync(join(dir, name), "utf8")) as Finding;
    if (f?.schema === FINDING_SCHEMA) out.push(f);
  }
  return out;
}

export function mergeFindings(dirs: readonly string[], out: string): MergeReport {
  const all = [out, ...dirs.filter((d) => d !== out)];
  // Findings: the smallest minimal case per (policy, signature).
  const best = new Map<string, Finding>();
  let nFindings = 0;
  for (const d of all) {
    for (const f of findingsIn(d)) {
      nFindings++;
      const key = findingFileName(f.policy, f.signature);
      const have = best.get(key);
      if (!have || actionCount(f.case.program) < actionCount(have.case.program)) best.set(key, f);
    }
  }
  mkdirSync(out, { recursive: true });
  for (const [name, f] of best) {
    const file = join(out, name);
    const text = `${JSON.stringify({ ...f, replay: `npx shmlab replay ${file}` }, null, 1)}\n`;
    if (!existsSync(file) || readFileSync(file, "utf8") !== text) writeAtomic(file, text);
  }
  // corpus.json: the union.
  for (const d of all) if (d !== out) addToCorpus(out, readCorpus(d).entries);
  // The guided corpus: per policy, the smallest set with the union of the features.
  const entries: CorpusFile[] = [];
  for (const d of all) entries.push(...readEntries(d));
  const byPolicy = new Map<string, CorpusFile[]>();
  for (const e of entries) byPolicy.set(e.policy, [...(byPolicy.get(e.policy) ?? []), e]);
  let features = 0;
  const keepIds = new Set(readEntries(out).map((e) => e.id));
  for (const list of byPolicy.values()) {
    for (const e of minimalSet(list)) if (!keepIds.has(e.id)) saveEntry(out, e);
    features += featureUnion(list).size;
  }
  return {
    findings: best.size,
    entries: readEntries(out).length,
    features,
    findingsIn: nFindings,
    entriesIn: entries.length,
  };
}
