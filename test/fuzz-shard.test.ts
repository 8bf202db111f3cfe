/**
 * Campaigns over several machines: `--shard K/N` partitions the seeds, and `fuzz merge`
 * of the shards' folders holds exactly the union of their features and findings.
 */
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { getPolicy } from "../compositor/policies/index.ts";
import { featureUnion, readEntries } from "../lab/fuzz/corpus.ts";
import { knownSignatures } from "../lab/fuzz/finding.ts";
import { type FuzzReport, fuzz, shardSeed } from "../lab/fuzz/fuzz.ts";
import { mergeFindings } from "../lab/fuzz/merge.ts";

describe("fuzz shards and merge", () => {
  it("shards K/N take disjoint seeds whose union is the unsharded run's", () => {
    const all = Array.from({ length: 40 }, (_, j) => shardSeed({ seed: 7 }, j));
    const shards = [1, 2, 3, 4].flatMap((k) =>
      Array.from({ length: 10 }, (_, j) => shardSeed({ seed: 7, shard: { k, n: 4 } }, j)),
    );
    expect(new Set(shards).size).toBe(40);
    expect([...shards].sort()).toEqual([...all].sort());
  });

  it("blind shards reach, together, what the unsharded blind run reaches", () => {
    const policy = getPolicy("wlroots");
    const o = { policy, policyArg: "wlroots", seed: 3, mode: "blind" as const, shrink: false };
    const whole = fuzz({ ...o, runs: 24 });
    const union = new Set<string>();
    for (let k = 1; k <= 4; k++)
      for (const f of fuzz({ ...o, runs: 6, shard: { k, n: 4 } }).features) union.add(f);
    expect(union).toEqual(whole.features);
  });

  it("a sharded run (N = 4) merged equals the features and findings of the shards", () => {
    const root = mkdtempSync(join(tmpdir(), "shmlab-shards-"));
    // `none` dies of a truncation under a read: shards make (expected) findings quickly.
    const policy = getPolicy("none");
    const reports: FuzzReport[] = [];
    const dirs: string[] = [];
    for (let k = 1; k <= 4; k++) {
      const out = join(root, `shard-${k}`);
      dirs.push(out);
      reports.push(
        fuzz({
          policy,
          policyArg: "none",
          seed: 1,
          runs: 12,
          out,
          shard: { k, n: 4 },
          shrinkRuns: 8,
        }),
      );
    }
    const merged = join(root, "merged");
    const m = mergeFindings(dirs, merged);
    const shardFeatures = new Set(reports.flatMap((r) => [...r.features]));
    expect(featureUnion(readEntries(merged, "none"))).toEqual(shardFeatures);
    expect(m.features).toBe(shardFeatures.size);
    const shardSigs = new Set(reports.flatMap((r) => r.findings.map((f) => f.finding.signature)));
    expect(shardSigs.size).toBeGreaterThan(0);
    expect(knownSignatures(merged, "none")).toEqual(shardSigs);
    expect(m.findings).toBe(shardSigs.size);
    // One file per signature, however many shards found it.
    const files = readdirSync(merged).filter((n) => n.endsWith(".json") && n !== "corpus.json");
    expect(files.length).toBe(shardSigs.size);
    // Merging again changes nothing.
    expect(mergeFindings(dirs, merged)).toEqual({
      ...m,
      findingsIn: m.findingsIn + m.findings,
      entriesIn: m.entriesIn + m.entries,
    });
  });
});
