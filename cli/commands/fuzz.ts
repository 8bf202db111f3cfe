/**
 * `shmlab fuzz`: generated hostile clients against one policy until --runs or --time is
 * used up; every failure shrunk and written to the findings folder (docs/fuzz.md). Exits 1
 * when a finding was made, as fuzzers do. `--workers N` (N >= 1) is the stress mode: the
 * same generated clients in N piscina worker threads with real concurrency, whose failures
 * are re-checked deterministically before they are reported as reproducible.
 */
import type { Command } from "commander";
import { loadPolicy, policyNames } from "../../compositor/policies/index.ts";
import type { Policy } from "../../compositor/policy.ts";
import { checkNames } from "../../lab/compare.ts";
import { type FuzzFinding, type FuzzProgress, fuzz } from "../../lab/fuzz/fuzz.ts";
import { mergeFindings } from "../../lab/fuzz/merge.ts";
import { variantNames } from "../../protocol/variant.ts";
import { KERNEL_FEATURES, type KernelFeature } from "../../shm/scenario.ts";
import { fuzzRealCommand } from "./fuzz-real.ts";

interface Opts {
  policy: string;
  seed: string;
  runs?: string;
  time?: string;
  workers: string;
  stress: string;
  blind?: boolean;
  shard?: string;
  minimizeCorpus?: boolean;
  out: string;
  frames: string;
  honest: string;
  clients: string;
  variant: string;
  kernelFeature: string[];
  corpus: boolean;
  progress: boolean;
  real?: string;
}

function bad(message: string, code = "SHMLAB_ERR_BAD_OPTION"): Error {
  return Object.assign(new Error(message), { code });
}

function int(s: string, name: string, min: number): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < min)
    throw bad(`--${name} must be an integer >= ${min}, not ${s}`);
  return n;
}

/** "30s", "2m", "500ms", or plain seconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s.trim());
  if (!m) throw bad(`--time must look like 30s, 2m or 500ms, not ${s}`);
  const n = Number(m[1]);
  return m[2] === "ms" ? n : m[2] === "m" ? n * 60_000 : n * 1000;
}

export function printFinding(f: FuzzFinding): void {
  const x = f.finding;
  const tag = x.expected ? "expected (the policy says so)" : "FINDING";
  console.log(
    `\n${tag}: ${x.signature} [${x.policy}]\n  ${x.detail}\n  minimal case: seed ${x.case.seed}, ${x.actions.reduce((s, l) => s + l.length, 0)} action(s) in ${x.actions.length} client(s), ${x.case.frames} frame(s), ${x.case.honest} honest (from ${x.found.actions} actions, ${x.found.shrinkRuns} shrink runs)`,
  );
  x.actions.forEach((l, i) => {
    console.log(`  client ${i}: ${l.join("; ") || "(no actions)"}`);
  });
  if (!f.stable) console.log("  WARNING: the minimal case did not replay with the same digest");
  if (!f.fresh) console.log("  (already in the findings folder)");
  console.log(`  replay: ${x.replay}`);
}

/** "K/N" with 1 <= K <= N. */
export function parseShard(s: string): { k: number; n: number } {
  const m = /^(\d+)\/(\d+)$/.exec(s.trim());
  const k = m ? Number(m[1]) : Number.NaN;
  const n = m ? Number(m[2]) : Number.NaN;
  if (!m || n < 1 || k < 1 || k > n) throw bad(`--shard must be K/N with 1 <= K <= N, not ${s}`);
  return { k, n };
}

async function minimizeCorpusCommand(out: string, policy: Policy, policyArg: string) {
  const { minimizeCorpus } = await import("../../lab/fuzz/corpus-minimize.ts");
  const r = minimizeCorpus(out, policy);
  console.log(
    `${out}/corpus (${policyArg}): ${r.before} entries, ${r.features} features -> ${r.after} entries with the same ${r.features} features (${r.removed} removed)`,
  );
}

export function register(program: Command): void {
  const cmd = program.command("fuzz");
  cmd
    .command("merge")
    .description(
      "merge findings folders (shards): findings deduplicated by signature, corpora by feature union",
    )
    .argument("<dirs...>", "findings folders to merge")
    // --out is the fuzz command's own option (commander parses it for the parent).
    .action((dirs: string[]) => {
      const out = (cmd.opts() as { out: string }).out;
      const r = mergeFindings(dirs, out);
      console.log(
        `merged ${dirs.length} folder(s) into ${out}/: ${r.findings} distinct finding(s) (of ${r.findingsIn} files), corpus ${r.entries} entries (of ${r.entriesIn}) covering ${r.features} features`,
      );
    });
  cmd
    .description(
      "generated hostile clients against a policy; failures shrunk into finding files (exit 1 when found)",
    )
    .option("--policy <name|file>", "a policy name or a ./file.ts exporting one", "libwayland")
    .option("--seed <n>", "base seed (case i uses seed + i)", "1")
    .option("--runs <n>", "stop after this many cases")
    .option("--time <duration>", "stop after this long (30s, 2m, 500ms)")
    .option(
      "--workers <n>",
      "run cases on N threads in all, this one included (same seed, same results as one thread)",
      "0",
    )
    .option("--stress <n>", "stress mode: each case's clients in N worker threads, racing", "0")
    .option("--blind", "fresh generated cases only (no feedback, no corpus growth)")
    .option("--shard <K/N>", "take shard K of N of the seeds (a CI matrix: one job per K)")
    .option("--minimize-corpus", "shrink <out>/corpus to the smallest set with the same features")
    .option("--out <dir>", "findings folder (finding files, corpus/ and corpus.json)", "findings")
    .option("--frames <n>", "compositor frames per case", "12")
    .option("--honest <n>", "honest bystanders per case", "2")
    .option("--clients <n>", "most hostile clients per case", "3")
    .option("--variant <name>", "protocol variant", "standard")
    .option(
      "--kernel-feature <name>",
      "switch a kernel proposal on (repeatable)",
      (v: string, p: string[]) => [...p, v],
      [] as string[],
    )
    .option("--no-corpus", "do not replay the corpus first")
    .option("--no-progress", "no progress line")
    .option(
      "--real <name>",
      "fuzz a real compositor (weston, sway, xvfb) beside the model policy that follows it",
    )
    .action(async (o: Opts) => {
      if (o.real) {
        const runs = o.runs !== undefined ? int(o.runs, "runs", 1) : undefined;
        return fuzzRealCommand({
          real: o.real,
          seed: int(o.seed, "seed", 0),
          runs,
          timeMs:
            o.time !== undefined ? parseDuration(o.time) : runs === undefined ? 30_000 : undefined,
          out: o.out,
          frames: int(o.frames, "frames", 1),
          honest: int(o.honest, "honest", 0),
          progress: o.progress,
          blind: o.blind,
        });
      }
      checkNames("policy", [o.policy], policyNames());
      const policy = await loadPolicy(o.policy);
      if (!variantNames().includes(o.variant))
        throw bad(
          `unknown variant ${o.variant}; valid: ${variantNames().join(", ")}`,
          "SHMLAB_ERR_UNKNOWN_NAME",
        );
      const badF = o.kernelFeature.filter((f) => !KERNEL_FEATURES.includes(f as KernelFeature));
      if (badF.length)
        throw bad(
          `unknown kernel feature ${badF.join(", ")}; valid: ${KERNEL_FEATURES.join(", ")}`,
          "SHMLAB_ERR_UNKNOWN_NAME",
        );
      if (o.minimizeCorpus) return minimizeCorpusCommand(o.out, policy, o.policy);
      const runs = o.runs !== undefined ? int(o.runs, "runs", 1) : undefined;
      const timeMs =
        o.time !== undefined ? parseDuration(o.time) : runs === undefined ? 30_000 : undefined;
      const workers = int(o.workers, "workers", 0);
      const stress = int(o.stress, "stress", 0);
      const shard = o.shard !== undefined ? parseShard(o.shard) : undefined;
      const common = {
        policy,
        policyArg: o.policy,
        seed: int(o.seed, "seed", 0),
        runs,
        timeMs,
        out: o.out,
        variant: o.variant,
        kernelFeatures: o.kernelFeature as KernelFeature[],
        frames: int(o.frames, "frames", 1),
        honest: int(o.honest, "honest", 0),
        maxClients: int(o.clients, "clients", 1),
        corpus: o.corpus,
        mode: o.blind ? ("blind" as const) : ("guided" as const),
        ...(shard ? { shard } : {}),
      };
      const tty = o.progress && process.stderr.isTTY;
      let lastLine = 0;
      const line = (p: FuzzProgress) => {
        const s = `runs ${p.runs} (${p.runsPerSecond.toFixed(1)}/s) | features ${p.features}${p.corpus ? ` corpus ${p.corpus}` : ""} | findings ${p.findings}${p.expected ? ` (${p.expected} expected)` : ""} | failures ${p.failures} | action kinds ${p.kindsCovered}/${p.kindsTotal} | ${(p.elapsedMs / 1000).toFixed(1)} s`;
        if (tty) process.stderr.write(`\r${s}   `);
        else if (o.progress && p.elapsedMs - lastLine >= 5000) {
          // Not a terminal (CI logs): one line every 5 s, not a redraw every 250 ms.
          lastLine = p.elapsedMs;
          process.stderr.write(`${s}\n`);
        }
      };
      console.log(
        `shmlab fuzz: policy ${policy.name} (${policy.clientReceives}), seed ${common.seed}, ${runs !== undefined ? `${runs} runs` : `${(timeMs! / 1000).toFixed(0)} s`}, ${stress ? `stress mode, ${stress} worker thread(s)` : `${common.mode}${workers > 1 ? `, ${workers} threads` : ""}`}${shard ? `, shard ${shard.k}/${shard.n}` : ""}, findings in ${o.out}/`,
      );
      let found = 0;
      if (stress > 0) {
        const { fuzzStress } = await import("../../lab/fuzz/stress.ts");
        const r = await fuzzStress({
          ...common,
          workers: stress,
          onProgress: line,
          onFinding: printFinding,
        });
        if (tty) process.stderr.write("\n");
        console.log(
          `\n${r.sessions} stress session(s), ${r.failures} failure(s) observed, ${r.findings.length} reproduced deterministically, ${r.unreproduced.length} not reproducible:`,
        );
        for (const u of r.unreproduced) console.log(`  not reproduced: ${u}`);
        found = r.findings.length + r.unreproduced.length;
      } else {
        const opts = { ...common, onProgress: line, onFinding: printFinding };
        const r =
          workers > 1
            ? await (await import("../../lab/fuzz/parallel.ts")).fuzzParallel({ ...opts, workers })
            : fuzz(opts);
        if (tty) process.stderr.write("\n");
        const cov = Object.entries(r.coverage)
          .map(([k, n]) => `${k} ${n}`)
          .join(", ");
        console.log(
          `\n${r.runs} case(s) (${r.corpusRuns} from the corpus) in ${(r.elapsedMs / 1000).toFixed(1)} s = ${((r.runs * 1000) / r.elapsedMs).toFixed(1)}/s; ${r.failures} failure(s), ${r.findings.length} distinct finding(s)`,
        );
        console.log(
          `features reached: ${r.features.size}${common.mode === "guided" ? `; corpus: ${r.corpus} entries kept this run${o.out ? ` (${o.out}/corpus/)` : ""}` : ""}`,
        );
        console.log(`coverage (cases that ran each action kind): ${cov}`);
        // When each signature came first: what a comparison of two runs needs.
        for (const f of r.firstSeen)
          console.log(
            `first seen: ${f.signature} at case ${f.runs}, ${(f.elapsedMs / 1000).toFixed(1)} s`,
          );
        found = r.findings.length;
      }
      if (found > 0) process.exitCode = 1;
    });
}
