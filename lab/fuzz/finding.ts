/**
 * Finding files and the corpus, in the findings folder (default ./findings).
 *
 *   <invariant>-<policy>-<hash>.json   one per distinct (policy, invariant, place): the
 *                                      minimal case, what broke, the event log, the digest
 *   corpus.json                        the (unshrunk) cases whose seeds found something,
 *                                      replayed first by the next `shmlab fuzz`
 *
 * Every write is atomic (a temporary file in the same folder, then rename), so an
 * interrupted fuzzer never leaves half a finding. docs/fuzz.md documents the format.
 */
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import { describeAction } from "./actions.ts";
import type { ActionResult } from "./behaviour.ts";
import type { CaseResult, Failure, FuzzCase, LogEvent } from "./case.ts";

export const FINDING_SCHEMA = "shmlab.fuzz-finding/1";
export const CORPUS_SCHEMA = "shmlab.fuzz-corpus/1";

export interface Finding {
  schema: typeof FINDING_SCHEMA;
  /** `${invariant} @ ${place}`: with the policy, the dedup key. */
  signature: string;
  invariant: Failure["invariant"];
  place: string;
  detail: string;
  /** The policy's own clientReceives says this happens (e.g. `none` dies of SIGBUS). */
  expected: boolean;
  /** The frame where it broke. */
  frame: number;
  policy: string;
  /** The policy file, when --policy named one (replay loads it from here). */
  policyFile?: string;
  /** The minimal case: seed, kernel features, variant, frames, honest clients, actions. */
  case: FuzzCase;
  /** The minimal actions, one line each, per hostile client. */
  actions: string[][];
  /** What each action got, per client. */
  results: { label: string; executed: number; results: ActionResult[] }[];
  /** The run's event log (timeline, kernel events, protocol errors, policy notices). */
  log: LogEvent[];
  /**
   * The minimal case's wire traffic in WAYLAND_DEBUG form, kernel events as `#` comments
   * (lab/wire-trace.ts). Not part of the digest.
   */
  trace?: string[];
  /** Digest of the minimal case's run: `shmlab replay` must get the same. */
  digest: string;
  /** How it was found and shrunk. */
  found: {
    mode: "deterministic" | "stress";
    seed: number;
    actions: number;
    shrinkRuns: number;
  };
  replay: string;
}

export interface CorpusEntry {
  policy: string;
  signature: string;
  case: FuzzCase;
}

export interface Corpus {
  schema: typeof CORPUS_SCHEMA;
  entries: CorpusEntry[];
}

export function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

function slug(s: string): string {
  return s
    .replace(/[^a-z0-9]+/gi, "-")
    .replace(/^-|-$/g, "")
    .toLowerCase();
}

export function findingFileName(policy: string, signature: string): string {
  const h = createHash("sha256").update(`${policy}\n${signature}`).digest("hex").slice(0, 10);
  const inv = signature.split(" @ ")[0];
  return `${slug(inv)}-${slug(policy.replace(/^.*[\\/]/, "").replace(/\.[cm]?[jt]s$/, ""))}-${h}.json`;
}

export function makeFinding(
  fc: FuzzCase,
  r: CaseResult,
  found: Finding["found"],
  file: string,
  policyFile?: string,
): Finding {
  const f = r.failure as Failure;
  const sig = `${f.invariant} @ ${f.place}`;
  return {
    schema: FINDING_SCHEMA,
    signature: sig,
    invariant: f.invariant,
    place: f.place,
    detail: f.detail,
    expected: f.expected,
    frame: f.frame,
    policy: fc.policy,
    ...(policyFile ? { policyFile } : {}),
    case: fc,
    actions: fc.program.clients.map((l) => l.map(describeAction)),
    results: r.actions,
    log: r.log,
    ...(r.trace ? { trace: r.trace } : {}),
    digest: r.digest,
    found,
    replay: `npx shmlab replay ${relative(process.cwd(), file) || file}`,
  };
}

/** Writes a finding unless one with the same (policy, signature) exists. Returns its path. */
export function saveFinding(dir: string, finding: Finding): { file: string; fresh: boolean } {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, findingFileName(finding.policy, finding.signature));
  if (existsSync(file)) return { file, fresh: false };
  writeAtomic(file, `${JSON.stringify(finding, null, 1)}\n`);
  return { file, fresh: true };
}

export function readFinding(file: string): Finding {
  const f = JSON.parse(readFileSync(file, "utf8")) as Finding;
  if (f.schema !== FINDING_SCHEMA)
    throw Object.assign(new Error(`${file} is not a shmlab fuzz finding (schema ${f.schema})`), {
      code: "SHMLAB_ERR_BAD_FINDING",
    });
  return f;
}

/** Signatures of findings already in the folder, for one policy. */
export function knownSignatures(dir: string, policy: string): Set<string> {
  const out = new Set<string>();
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    if (!name.endsWith(".json") || name === "corpus.json") continue;
    let f: Partial<Finding>;
    try {
      f = JSON.parse(readFileSync(join(dir, name), "utf8")) as Partial<Finding>;
    } catch (e) {
      // Not JSON (not ours, or being written), or gone since the listing: not a finding.
      if (e instanceof SyntaxError || (e as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw e;
    }
    if (f?.schema === FINDING_SCHEMA && f.policy === policy && f.signature) out.add(f.signature);
  }
  return out;
}

export function readCorpus(dir: string): Corpus {
  const file = join(dir, "corpus.json");
  if (!existsSync(file)) return { schema: CORPUS_SCHEMA, entries: [] };
  const c = JSON.parse(readFileSync(file, "utf8")) as Corpus;
  return c.schema === CORPUS_SCHEMA ? c : { schema: CORPUS_SCHEMA, entries: [] };
}

/** Adds entries (by policy + seed, once) and rewrites the corpus atomically. */
export function addToCorpus(dir: string, entries: CorpusEntry[]): void {
  if (!entries.length) return;
  mkdirSync(dir, { recursive: true });
  const c = readCorpus(dir);
  const key = (e: CorpusEntry) => `${e.policy}\n${e.case.seed}\n${e.signature}`;
  const have = new Set(c.entries.map(key));
  for (const e of entries) if (!have.has(key(e))) c.entries.push(e);
  writeAtomic(join(dir, "corpus.json"), `${JSON.stringify(c, null, 1)}\n`);
}
