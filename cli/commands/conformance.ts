/**
 * `shmlab conformance`: every scenario on the model and on the host kernel, side by side;
 * `--fuzz` generates random scripts and saves every shrunk disagreement as a new case.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Table from "cli-table3";
import type { Command } from "commander";
import pc from "picocolors";
import { describeDiff, runConformance } from "../../lab/conformance.ts";
import { fuzzConformance } from "../../lab/conformance-fuzz.ts";
import { hostAvailability, hostKernelVersion } from "../../native/host.ts";
import { resultKey } from "../../shm/scenario.ts";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

interface Opts {
  json?: boolean;
  dir: string;
  filter?: string;
  fuzz?: boolean;
  seed: string;
  runs: string;
  steps: string;
  save: string;
}

export function register(program: Command): void {
  program
    .command("conformance")
    .description(
      "run every kernel scenario on the simulated kernel and on the host kernel, and compare",
    )
    .option("--json", "print the full report as JSON")
    .option("--dir <dir>", "scenario folder", join(REPO, "scenarios"))
    .option("--filter <text>", "only scenarios whose group/name contains this")
    .option("--fuzz", "differential fuzzing: random scripts on both kernels")
    .option("--seed <n>", "fuzz seed", "1")
    .option("--runs <n>", "fuzz runs", "200")
    .option("--steps <n>", "steps per fuzz script", "20")
    .option("--save <dir>", "where shrunk disagreements are saved", join(REPO, "scenarios", "fuzz"))
    .action(async (opts: Opts) => {
      if (opts.fuzz) return fuzz(opts);
      const report = await runConformance(opts.dir, opts.filter);
      if (opts.json) {
        console.log(JSON.stringify(report, null, 2));
      } else {
        const t = new Table({
          head: ["scenario", "model", "host / expect", "agree?"],
          style: { head: [], border: [] },
          colWidths: [44, 34, 34, 10],
          wordWrap: true,
        });
        for (const r of report.rows) {
          const last = (xs?: readonly unknown[]) =>
            xs?.length ? resultKey(xs[xs.length - 1] as never).slice(0, 60) : "";
          const ok = r.verdict === "agree" || r.verdict === "model-only-ok";
          const mark =
            r.verdict === "no-host"
              ? pc.yellow("no host")
              : ok
                ? pc.green(r.verdict === "agree" ? "yes" : "yes (model-only)")
                : pc.red("NO");
          t.push([
            r.id,
            r.firstDiff >= 0 ? describeDiff(r) : last(r.model),
            last(r.reference),
            mark,
          ]);
        }
        console.log(t.toString());
        console.log(
          `host kernel: ${report.hostKernel}${report.hostNote ? ` (${report.hostNote})` : ""}; ${report.rows.length} scenarios, ${report.disagreements} disagreement(s)`,
        );
      }
      if (report.disagreements > 0) process.exitCode = 1;
    });
}

async function fuzz(opts: Opts): Promise<void> {
  const avail = await hostAvailability();
  if (!avail.available) {
    console.log(`conformance fuzz skipped: ${avail.reason}`);
    return;
  }
  const seed = Number(opts.seed);
  const runs = Number(opts.runs);
  console.log(`differential fuzzing against ${hostKernelVersion()}: seed ${seed}, ${runs} runs`);
  const report = await fuzzConformance({
    seed,
    runs,
    steps: Number(opts.steps),
    saveDir: opts.save,
    onProgress: (done, found) => {
      if (process.stdout.isTTY) process.stdout.write(`\r${done}/${runs} runs, ${found} finding(s)`);
    },
  });
  if (process.stdout.isTTY) process.stdout.write("\n");
  for (const f of report.findings) {
    const d = f.disagreement;
    console.log(
      `${d.scenario.name}: ${d.scenario.steps.length} steps, differs at step ${d.step} (${d.scenario.steps[d.step].op}): model ${resultKey(d.model[d.step])} host ${resultKey(d.host[d.step])}`,
    );
    console.log(`  saved: ${f.file}\n  replay: npx shmlab run ${f.file}`);
  }
  console.log(`${report.runs} runs, ${report.findings.length} disagreement(s)`);
  if (report.findings.length) process.exitCode = 1;
}
