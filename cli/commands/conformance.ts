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
import { type RealConformanceCell, runRealConformance } from "../../lab/real-conformance.ts";
import { hostAvailability, hostKernelVersion } from "../../native/host.ts";
import { getReal } from "../../real/index.ts";
import type { RealKind } from "../../real/target.ts";
import { resultKey } from "../../shm/scenario.ts";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

interface Opts {
  json?: boolean;
  compositors?: string | boolean;
  behaviours?: string;
  frames: string;
  honest: string;
  timeout: string;
  retries: string;
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
    .option(
      "--compositors [names]",
      "instead: hold each model policy against the real compositor it follows (weston,sway,xvfb,cage by default; kwin by name)",
    )
    .option("--behaviours <list>", "with --compositors: only these behaviours (comma-separated)")
    .option("--frames <n>", "with --compositors: frames per run", "8")
    .option("--honest <n>", "with --compositors: honest bystanders per run", "1")
    .option("--timeout <ms>", "with --compositors: wall-clock bound of one real run", "8000")
    .option(
      "--retries <n>",
      "with --compositors: reruns of a disagreeing real cell on a fresh instance (real runs are not seeded); every real verdict is reported",
      "1",
    )
    .option("--seed <n>", "fuzz seed", "1")
    .option("--runs <n>", "fuzz runs", "200")
    .option("--steps <n>", "steps per fuzz script", "20")
    .option("--save <dir>", "where shrunk disagreements are saved", join(REPO, "scenarios", "fuzz"))
    .action(async (opts: Opts) => {
      if (opts.fuzz) return fuzz(opts);
      if (opts.compositors) return compositors(opts);
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

/**
 * kwin is not among them: one of its cells (destroy-buffer-then-shrink) is a race in the
 * real KWin that our request-at-a-time wire lets it lose (docs/real-compositors.md).
 */
const DEFAULT_COMPOSITORS = "weston,sway,xvfb,cage";

function cellText(c: RealConformanceCell, side: "model" | "real"): string {
  const v = c[side];
  if (!v) return c.notApplicable ? "n/a" : `error: ${c.error ?? "?"}`.slice(0, 60);
  return `${v.cell}${c.masked ? " *" : ""}`;
}

async function compositors(opts: Opts): Promise<void> {
  const names = (opts.compositors === true ? DEFAULT_COMPOSITORS : String(opts.compositors))
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names) getReal(n); // unknown names: a typed error listing the known ones
  const report = await runRealConformance({
    compositors: names as RealKind[],
    behaviours: opts.behaviours?.split(",").map((s) => s.trim()),
    seed: Number(opts.seed),
    frames: Number(opts.frames),
    honest: Number(opts.honest),
    timeoutMs: Number(opts.timeout),
    retries: Number(opts.retries),
    onCell: (c) => {
      if (!opts.json && process.stderr.isTTY)
        process.stderr.write(`\r${c.compositor} ${c.behaviour}`.padEnd(60));
    },
  });
  if (!opts.json && process.stderr.isTTY) process.stderr.write(`${"\r".padEnd(61)}\r`);
  if (opts.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    for (const t of report.targets) {
      const head = `${t.compositor}${t.version ? ` (${t.version})` : ""}`;
      if (t.skipped) {
        console.log(`${head}: skipped: ${t.skipped}`);
        continue;
      }
      console.log(
        `${head}: policies ${t.policies.join(", ")}; ${t.cells} cells, ${t.disagreements} disagreement(s), ${t.seconds.toFixed(1)} s`,
      );
      const table = new Table({
        head: ["behaviour", "policy", "model", "real", "agree?"],
        style: { head: [], border: [] },
        colWidths: [30, 16, 32, 32, 8],
        wordWrap: true,
      });
      for (const c of report.cells.filter((x) => x.compositor === t.compositor)) {
        const mark = c.notApplicable
          ? pc.yellow("n/a")
          : c.flipped
            ? pc.yellow("flipped")
            : c.agree
              ? pc.green("yes")
              : pc.red("NO");
        table.push([c.behaviour, c.policy, cellText(c, "model"), cellText(c, "real"), mark]);
      }
      console.log(table.toString());
    }
    for (const c of report.cells.filter((x) => x.realRuns))
      console.log(
        `${c.compositor} × ${c.behaviour}: real runs gave ${c.realRuns!.map((v) => v?.cell ?? "a failed run").join(" | ")}; the model gave ${c.model.cell}${c.flipped ? " (agreed on a rerun: a race the real compositor decides)" : ""}`,
      );
    console.log(
      `* pixels unchecked on the real compositor (no capture): compared without pixel facts on both sides.\n${report.disagreements} disagreement(s), ${report.errors} error(s), ${report.cells.filter((c) => c.flipped).length} flipped`,
    );
  }
  if (report.disagreements > 0 || report.errors > 0) process.exitCode = 1;
}
