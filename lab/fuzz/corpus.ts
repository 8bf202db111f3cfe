/**
 * The guided fuzzer's corpus: the cases that reached something new, one file each in
 * `<findings>/corpus/<id>.json` (schema `shmlab.fuzz-corpus-entry/1`), as libFuzzer keeps
 * one file per input. One file per entry means an entry is written once, atomically (temp +
 * rename), the moment it is kept: a killed run loses nothing it had kept, and two shards'
 * corpora merge by copying files. The id is a hash of the case, so the same case is the same
 * file on every machine.
 *
 * An entry carries the features its run reached when it was kept (for merging and
 * minimising without rerunning); a fuzz run that loads the corpus reruns every entry of its
 * policy and uses what it reaches now.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { actionCount } from "./actions.ts";
import type { FuzzCase } from "./case.ts";
import { writeAtomic } from "./finding.ts";

export const CORPUS_ENTRY_SCHEMA = "shmlab.fuzz-corpus-entry/1";

export interface CorpusFile {
  schema: typeof CORPUS_ENTRY_SCHEMA;
  id: string;
  policy: string;
  case: FuzzCase;
  /** Features the case reached when it was kept, sorted. */
  features: string[];
}

export function corpusDir(out: string): string {
  return join(out, "corpus");
}

/** The entry's id: a hash of the case (policy, seed, shape and program). */
export function entryId(c: FuzzCase): string {
  return createHash("sha256").update(JSON.stringify(c)).digest("hex").slice(0, 16);
}

export function makeEntry(c: FuzzCase, features: Iterable<string>): CorpusFile {
  return {
    schema: CORPUS_ENTRY_SCHEMA,
    id: entryId(c),
    policy: c.policy,
    case: c,
    features: [...features].sort(),
  };
}

/**
 * Writes an entry (once: an existing file with its id is the same case; `replace` rewrites
 * it, with the features it reaches now).
 */
export function saveEntry(out: string, e: CorpusFile, replace = false): string {
  const dir = corpusDir(out);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${e.id}.json`);
  if (replace || !existsSync(file)) writeAtomic(file, `${JSON.stringify(e)}\n`);
  return file;
}

/** The entries in a findings folder (of one policy, if given), in id order. */
export function readEntries(out: string, policy?: string): CorpusFile[] {
  const dir = corpusDir(out);
  if (!existsSync(dir)) return [];
  const entries: CorpusFile[] = [];
  for (const name of readdirSync(dir).sort()) {
    // A temporary file of an interrupted write is not an entry.
    if (!name.endsWith(".json")) continue;
    const e = JSON.parse(readFileSync(join(dir, name), "utf8")) as CorpusFile;
    if (e.schema !== CORPUS_ENTRY_SCHEMA) continue;
    if (policy === undefined || e.policy === policy) entries.push(e);
  }
  return entries;
}

/**
 * The smallest set with the same features (libFuzzer's -merge=1 order): entries by size,
 * smallest first, each kept when it brings a feature the kept ones do not have.
 */
export function minimalSet(entries: readonly CorpusFile[]): CorpusFile[] {
  const sorted = [...entries].sort(
    (a, b) =>
      actionCount(a.case.program) - actionCount(b.case.program) ||
      b.features.length - a.features.length ||
      (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
  const have = new Set<string>();
  const keep: CorpusFile[] = [];
  for (const e of sorted) {
    if (e.features.some((f) => !have.has(f))) {
      keep.push(e);
      for (const f of e.features) have.add(f);
    }
  }
  return keep;
}

/** Removes entry files not in `keep` (of the entries given). Returns how many went. */
export function pruneEntries(
  out: string,
  all: readonly CorpusFile[],
  keep: readonly CorpusFile[],
): number {
  const kept = new Set(keep.map((e) => e.id));
  let n = 0;
  for (const e of all) {
    if (kept.has(e.id)) continue;
    unlinkSync(join(corpusDir(out), `${e.id}.json`));
    n++;
  }
  return n;
}

/** The union of the entries' features. */
export function featureUnion(entries: readonly CorpusFile[]): Set<string> {
  const s = new Set<string>();
  for (const e of entries) for (const f of e.features) s.add(f);
  return s;
}
