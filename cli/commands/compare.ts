/**
 * `shmlab compare`: every policy against every behaviour on the same seeds, as a matrix.
 * `npm start` runs it with the defaults. `shmlab review` (review.ts) compares two protocols.
 */
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import { behaviourNames, loadBehaviour, looksLikePath } from "../../client/behaviours/index.ts";
import { policyNames } from "../../compositor/policies/index.ts";
import {
  type CompareOptions,
  type CompareResult,
  checkNames,
  defaultBehaviours,
  defaultPolicies,
} from "../../lab/compare.ts";
import {
  compareParallel,
  defaultWorkers,
  type ParallelOptions,
} from "../../lab/compare-parallel.ts";
import { renderLegend, renderMatrix, renderRun, replayLines } from "../../lab/matrix-text.ts";
import { compareReal, type RealColumn, withRealColumns } from "../../lab/real-compare.ts";
import { ensureProposalVariant, proposalName } from "../../protocol/proposal.ts";
import { variantNames } from "../../protocol/variant.ts";
import { getReal } from "../../real/index.ts";
import type { RealKind } from "../../real/target.ts";
import { KERNEL_FEATURES, type KernelFeature } from "../../shm/scenario.ts";

const list = (v: string, prev: string[] = []) => [...prev, ...v.split(",").filter(Boolean)];

export interface Opts {
  policies?: string[];
  behaviours?: string[];
  seed: string;
  seeds: string;
  variant: string[];
  kernelFeature: string[];
  frames: string;
  honest: string;
  json?: string;
  html?: string;
  progress: boolean;
  real?: string;
  workers: string;
}

export function optionsFrom(o: Opts, variant: string): Omit<CompareOptions, "onProgress"> {
  const policies = o.policies?.length ? o.policies : defaultPolicies();
  const behaviours = o.behaviours?.length ? o.behaviours : defaultBehaviours();
  checkNames("policy", policies, policyNames());
  checkNames("behaviour", behaviours, behaviourNames());
  const known = variantNames();
  if (!known.includes(variant)) {
    throw Object.assign(new Error(`unknown variant ${variant}; valid: ${known.join(", ")}`), {
      code: "SHMLAB_ERR_UNKNOWN_NAME",
    });
  }
  const bad = o.kernelFeature.filter((f) => !KERNEL_FEATURES.includes(f as KernelFeature));
  if (bad.length) {
    throw Object.assign(
      new Error(`unknown kernel feature ${bad.join(", ")}; valid: ${KERNEL_FEATURES.join(", ")}`),
      { code: "SHMLAB_ERR_UNKNOWN_NAME" },
    );
  }
  const int = (s: string, name: string, min: number) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < min) {
      throw Object.assign(new Error(`--${name} must be an integer >= ${min}, not ${s}`), {
        code: "SHMLAB_ERR_BAD_OPTION",
      });
    }
    return n;
  };
  return {
    policies,
    behaviours,
    seed: int(o.seed, "seed", 0),
    seeds: int(o.seeds, "seeds", 1),
    variant,
    kernelFeatures: o.kernelFeature as KernelFeature[],
    frames: int(o.frames, "frames", 1),
    honest: int(o.honest, "honest", 0),
  };
}

/** --workers: threads running the comparison, this one included (1: one thread). */
export function workersFrom(o: Pick<Opts, "workers">): number {
  if (o.workers === "auto") return defaultWorkers();
  const n = Number(o.workers);
  if (!Number.isInteger(n) || n < 1) {
    throw Object.assign(new Error(`--workers must be an integer >= 1 or auto, not ${o.workers}`), {
      code: "SHMLAB_ERR_BAD_OPTION",
    });
  }
  return n;
}

export async function runWithProgress(
  opts: Omit<CompareOptions, "onProgress">,
  show: boolean,
  images: boolean,
  trace = false,
  workers = 1,
  stats?: ParallelOptions["stats"],
): Promise<CompareResult> {
  const total = opts.policies.length * opts.behaviours.length * opts.seeds;
  const bar =
    show && process.stderr.isTTY && total > 1
      ? new SingleBar({
          format: " {bar} {value}/{total} runs | {cell}",
          stream: process.stderr,
          hideCursor: true,
          clearOnComplete: true,
        })
      : undefined;
  bar?.start(total, 0, { cell: "" });
  try {
    return await compareParallel(
      {
        ...opts,
        images,
        trace,
        onProgress: (done, runs, last) => {
          // Pairs a policy cannot express are not run: the bar counts the runs.
          if (bar && bar.getTotal() !== runs) bar.setTotal(runs);
          bar?.update(done, { cell: `${last.spec.policy} × ${last.spec.behaviour}` });
        },
      },
      { workers, stats },
    );
  } finally {
    bar?.stop();
  }
}

export function addSelection(c: Command): Command {
  return c
    .option("--policies <names>", "comma-separated policies (default: all)", list)
    .option(
      "--behaviours <names>",
      "comma-separated behaviours (default: all but worker-only)",
      list,
    )
    .option("--seed <n>", "base seed (run i uses seed + i)", "1")
    .option("--seeds <n>", "seeds per cell", "1")
    .option(
      "--kernel-feature <name>",
      "switch a kernel proposal on (repeatable)",
      (v: string, p: string[]) => [...p, v],
      [] as string[],
    )
    .option("--frames <n>", "compositor frames per run", "16")
    .option("--honest <n>", "honest bystanders per run", "2")
    .option("--no-progress", "no progress bar")
    .option(
      "--workers <n>",
      "threads running the runs, this one included; auto: as many as the idle cores fit, ~1.8 cores each with V8's compiler and GC threads (same records either way)",
      "auto",
    );
}

export function register(program: Command): void {
  addSelection(
    program
      .command("compare")
      .description("every policy against every behaviour on the same seeds: the verdict matrix"),
  )
    .option(
      "--variant <name>",
      "protocol variant",
      (v: string, p: string[]) => [...p, v],
      [] as string[],
    )
    .option("--json <file>", "write every run's full record as JSON (docs/run-record.md)")
    .option("--html <file>", "write a self-contained HTML report")
    .option(
      "--real <names>",
      "add a column per real compositor (weston,sway,xvfb), started headless, labelled with its version",
    )
    .option(
      "--trace <file>",
      "write every run's wire traffic in WAYLAND_DEBUG form, kernel events as # comments (- for stdout)",
    )
    .option("--protocol <file.xml>", "a protocol proposal as the variant (docs/review.md)")
    .option("--rules <file.ts>", "the proposal's rules module (with --protocol)")
    .action(async (o: Opts & { protocol?: string; rules?: string; trace?: string }) => {
      if (o.rules && !o.protocol)
        throw Object.assign(new Error("--rules goes with --protocol FILE.xml"), {
          code: "SHMLAB_ERR_BAD_OPTION",
        });
      const variant = o.protocol ? proposalName(o.protocol, o.rules) : (o.variant[0] ?? "standard");
      await ensureProposalVariant(variant);
      // A user's behaviour file loads as a policy file does: imported, registered by name
      // (here, and in each worker thread of the comparison: behaviourFiles).
      const behaviourFiles = (o.behaviours ?? []).filter(looksLikePath).map((f) => resolve(f));
      if (o.behaviours)
        o.behaviours = await Promise.all(
          o.behaviours.map(async (b) => (looksLikePath(b) ? (await loadBehaviour(b)).name : b)),
        );
      const opts = {
        ...optionsFrom(o, variant),
        ...(behaviourFiles.length ? { behaviourFiles } : {}),
      };
      const threads = { byWorkers: 0, threads: 0 };
      const model = await runWithProgress(
        opts,
        o.progress,
        Boolean(o.html),
        Boolean(o.html || o.trace),
        workersFrom(o),
        threads,
      );
      const realCols = o.real ? await realColumns(o.real, opts, o.progress) : [];
      const result = realCols.length ? withRealColumns(model, realCols) : model;
      for (const c of realCols.filter((x) => x.skipped))
        console.log(`real ${c.compositor}: skipped: ${c.skipped}`);
      if (result.runs.length === 1 && !realCols.length) {
        console.log(renderRun(result.runs[0]));
      } else {
        console.log(
          `shmlab compare: ${model.policies.length} policies${realCols.length ? ` + ${realCols.filter((c) => !c.skipped).length} real compositor(s)` : ""} × ${result.behaviours.length} behaviours × ${opts.seeds} seed(s) = ${result.runs.length} runs in ${(result.elapsedMs / 1000).toFixed(1)} s on ${threads.threads + 1} thread(s) (variant ${opts.variant}${opts.kernelFeatures.length ? `, kernel features ${opts.kernelFeatures.join(", ")}` : ""})\n`,
        );
        console.log(renderMatrix(result));
        console.log(`\n${renderLegend(result)}`);
        console.log("\nreplay a cell (one run, with its timeline):");
        console.log(replayLines(model).join("\n"));
        console.log(
          "  any cell: npx shmlab compare --policies <policy> --behaviours <behaviour> --seed <seed>",
        );
      }
      if (o.trace === "-") console.log(`\n${traceText(model)}`);
      else if (o.trace) {
        writeFileSync(o.trace, traceText(model));
        console.log(`\nwire traces written to ${o.trace}`);
      }
      if (o.json) {
        writeFileSync(o.json, JSON.stringify({ ...model, real: realCols }, null, 1));
        console.log(`\nrecords written to ${o.json}`);
      }
      if (o.html) {
        const { renderHtmlReport } = await import("../../lab/report-html.ts");
        writeFileSync(o.html, renderHtmlReport(model));
        console.log(`report written to ${o.html}`);
      }
    });
}

async function realColumns(
  names: string,
  opts: Omit<CompareOptions, "onProgress">,
  progress: boolean,
): Promise<RealColumn[]> {
  const kinds = names
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const k of kinds) getReal(k); // unknown names: a typed error listing the known ones
  const show = progress && process.stderr.isTTY;
  const cols = await compareReal({
    compositors: kinds as RealKind[],
    behaviours: opts.behaviours,
    seed: opts.seed,
    seeds: opts.seeds,
    frames: opts.frames,
    honest: opts.honest,
    onRun: (k, b) => {
      if (show) process.stderr.write(`\r real ${k} × ${b}`.padEnd(60));
    },
  });
  if (show) process.stderr.write(`\r${" ".repeat(60)}\r`);
  return cols;
}

/** Every run's trace, each after a comment naming the run and how to replay it. */
function traceText(r: CompareResult): string {
  return r.runs
    .map((run) =>
      [
        `# shmlab run: ${run.spec.policy} × ${run.spec.behaviour}, seed ${run.spec.seed}, variant ${run.spec.variant}: ${run.cell}`,
        `# replay: ${run.replay} --trace -`,
        ...(run.trace ?? []),
      ].join("\n"),
    )
    .join("\n\n")
    .concat("\n");
}
