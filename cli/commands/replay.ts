/**
 * `shmlab replay FILE`: reruns a fuzz finding's minimal case and prints what happened: the
 * actions and what each got, the event log, the broken invariant, and whether the run is the
 * very same (digest); `--trace` writes its wire traffic in WAYLAND_DEBUG form. Exit 1 when the failure reproduces (as `fuzz` does for a finding), 0
 * when the case now passes, 2 for a file that cannot be read.
 */
import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { getPolicy, loadPolicy } from "../../compositor/policies/index.ts";
import { signature } from "../../lab/fuzz/case.ts";
import { readFinding } from "../../lab/fuzz/finding.ts";
import { replayFinding } from "../../lab/fuzz/fuzz.ts";
import { isRealFinding, replayReal } from "./fuzz-real.ts";

export function register(program: Command): void {
  program
    .command("replay")
    .description("rerun a fuzz finding exactly and print what happened (exit 1 if it still fails)")
    .argument("<file>", "a finding file written by shmlab fuzz")
    .option("--json", "print the replay's result as JSON")
    .option("--trace <file>", "write the run's wire trace, WAYLAND_DEBUG form (- for stdout)")
    .option("--real <name>", "also run the case on a real compositor (weston, sway, xvfb)")
    .action(async (file: string, o: { json?: boolean; trace?: string; real?: string }) => {
      if (isRealFinding(file)) return replayReal(file, o.real, Boolean(o.json));
      const f = readFinding(file);
      const policy = f.policyFile ? await loadPolicy(f.policyFile) : getPolicy(f.policy);
      const { result, sameFailure, sameDigest } = replayFinding(f, policy, {
        trace: Boolean(o.trace),
      });
      if (o.json) {
        const { record: _r, trace: _t, ...rest } = result;
        console.log(JSON.stringify({ file, sameFailure, sameDigest, ...rest }, null, 1));
      } else {
        const c = f.case;
        console.log(
          `${file}\n  policy ${c.policy}, seed ${c.seed}, variant ${c.variant}, kernel features [${c.kernelFeatures.join(", ")}], ${c.frames} frame(s), ${c.honest} honest bystander(s), preempt ${c.preempt}`,
        );
        console.log(`  recorded: ${f.signature}${f.expected ? " (expected by the policy)" : ""}`);
        console.log(`           ${f.detail}`);
        result.actions.forEach((a, i) => {
          console.log(`\n  hostile client ${i} (${a.label}), ${a.executed} action(s) started:`);
          for (const r of a.results)
            console.log(
              `    ${String(r.i).padStart(3)} ${f.actions[i]?.[r.i] ?? r.k}  → ${r.result}`,
            );
        });
        console.log("\n  event log:");
        for (const e of result.log)
          console.log(
            `    ${e.frame !== undefined ? `[${String(e.frame).padStart(2)}] ` : "     "}${e.who}: ${e.what}${e.detail ? ` ${e.detail}` : ""}`,
          );
        const now = result.failure ? signature(result.failure) : "no invariant broken";
        console.log(`\n  now: ${now}${result.failure ? `\n       ${result.failure.detail}` : ""}`);
        console.log(
          sameDigest
            ? `  reproduced exactly (digest ${result.digest})`
            : sameFailure
              ? `  same failure, different run (digest ${result.digest}, recorded ${f.digest})`
              : `  NOT reproduced (digest ${result.digest}, recorded ${f.digest})`,
        );
      }
      if (o.trace) {
        const text = `${(result.trace ?? []).join("\n")}\n`;
        if (o.trace === "-") console.log(`\n${text}`);
        else writeFileSync(o.trace, text);
      }
      process.exitCode = result.failure ? 1 : 0;
      if (o.real) {
        const before = process.exitCode;
        await replayReal(file, o.real, Boolean(o.json));
        process.exitCode = Math.max(Number(before), Number(process.exitCode ?? 0));
      }
    });
}
