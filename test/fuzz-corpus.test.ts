/**
 * The guided corpus on disk: one file per entry, named by a hash of the case, written
 * atomically (a killed run leaves whole files or none); minimisation keeps every feature
 * with fewer entries; `--minimize-corpus` reruns the entries and prunes the rest.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { getPolicy } from "../compositor/policies/index.ts";
import { generateProgram } from "../lab/fuzz/actions.ts";
import { CASE_DEFAULTS, type FuzzCase } from "../lab/fuzz/case.ts";
import {
  corpusDir,
  entryId,
  featureUnion,
  makeEntry,
  minimalSet,
  readEntries,
  saveEntry,
} from "../lab/fuzz/corpus.ts";
import { minimizeCorpus } from "../lab/fuzz/corpus-minimize.ts";
import { fuzz } from "../lab/fuzz/fuzz.ts";

const repo = join(import.meta.dirname, "..");
const caseOf = (seed: number): FuzzCase => ({
  ...CASE_DEFAULTS,
  seed,
  policy: "libwayland",
  program: generateProgram(seed),
});

describe("fuzz corpus", () => {
  it("an entry's file is named by its case, written whole, and read back", () => {
    const dir = mkdtempSync(join(tmpdir(), "shmlab-corpus-"));
    expect(entryId(caseOf(1))).toBe(entryId(caseOf(1)));
    expect(entryId(caseOf(1))).not.toBe(entryId(caseOf(2)));
    const e = makeEntry(caseOf(1), ["b", "a"]);
    expect(e.features).toEqual(["a", "b"]);
    saveEntry(dir, e);
    // A leftover of an interrupted write is not an entry.
    writeFileSync(join(corpusDir(dir), `${e.id}.json.tmp-1-2`), "{ half");
    expect(readdirSync(corpusDir(dir)).filter((n) => n.endsWith(".json"))).toEqual([
      `${e.id}.json`,
    ]);
    expect(readEntries(dir)).toEqual([e]);
    expect(readEntries(dir, "wlroots")).toEqual([]);
  });

  it("the minimal set keeps every feature, with the smallest entries that bring them", () => {
    const big = makeEntry(caseOf(1), ["a", "b", "c"]);
    const small = makeEntry({ ...caseOf(2), program: { clients: [[]] } }, ["a", "b"]);
    const other = makeEntry({ ...caseOf(3), program: { clients: [[{ k: "roundtrip" }]] } }, ["c"]);
    const dup = makeEntry({ ...caseOf(4), program: { clients: [[{ k: "pipe" }]] } }, ["a"]);
    const keep = minimalSet([big, small, other, dup]);
    expect(featureUnion(keep)).toEqual(featureUnion([big, small, other, dup]));
    expect(keep.map((e) => e.id).sort()).toEqual([small.id, other.id].sort());
  });

  it("a guided run keeps entries whose features cover all it reached; --minimize-corpus keeps them", () => {
    const out = mkdtempSync(join(tmpdir(), "shmlab-corpus-"));
    const policy = getPolicy("libwayland");
    const r = fuzz({ policy, policyArg: "libwayland", seed: 5, runs: 40, out, shrinkRuns: 10 });
    const entries = readEntries(out, "libwayland");
    expect(entries.length).toBe(r.corpus);
    expect(featureUnion(entries)).toEqual(r.features);
    const m = minimizeCorpus(out, policy);
    expect(m.before).toBe(entries.length);
    expect(m.after).toBeLessThanOrEqual(m.before);
    expect(featureUnion(readEntries(out, "libwayland")).size).toBe(m.features);
    expect(m.features).toBe(r.features.size);
  });

  it("a run killed mid-way leaves only whole files", async () => {
    const out = mkdtempSync(join(tmpdir(), "shmlab-kill-"));
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "cli/main.ts",
        "fuzz",
        "--policy",
        "none",
        "--time",
        "120s",
        "--out",
        out,
        "--no-progress",
      ],
      { cwd: repo, stdio: "ignore" },
    );
    try {
      // Wait until the run has kept a few entries (and, on `none`, written findings).
      const deadline = Date.now() + 50_000;
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        let n = 0;
        try {
          n = readdirSync(corpusDir(out)).length;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
        }
        if (n >= 8) break;
      }
    } finally {
      child.kill("SIGKILL");
    }
    await new Promise((r) => child.once("exit", r));
    const files = [
      ...readdirSync(out).map((n) => join(out, n)),
      ...readdirSync(corpusDir(out)).map((n) => join(corpusDir(out), n)),
    ].filter((f) => f.endsWith(".json"));
    expect(files.length).toBeGreaterThanOrEqual(8);
    for (const f of files) expect(() => JSON.parse(readFileSync(f, "utf8"))).not.toThrow();
  });
});
