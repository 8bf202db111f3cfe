/** `shmlab run FILE.json`: executes one kernel scenario on the model and prints its results. */

import Table from "cli-table3";
import type { Command } from "commander";
import { loadScenario, resultKey, sameResult } from "../../shm/scenario.ts";
import { runScenarioOnModel } from "../../shm/scenario-runner.ts";

export function register(program: Command): void {
  program
    .command("run")
    .description("run a kernel scenario script (docs/scenarios.md) on the simulated kernel")
    .argument("<file>", "scenario JSON file")
    .option("--json", "print the results as JSON")
    .action((file: string, opts: { json?: boolean }) => {
      const s = loadScenario(file);
      const { results } = runScenarioOnModel(s);
      const agree = s.expect ? results.every((r, i) => sameResult(r, s.expect![i])) : undefined;
      if (opts.json) {
        console.log(JSON.stringify({ name: s.name, results, matchesExpect: agree }, null, 2));
      } else {
        const t = new Table({ head: ["#", "proc", "op", "result", "expected"] });
        s.steps.forEach((st, i) => {
          const exp = s.expect?.[i];
          const mark =
            exp === undefined ? "" : sameResult(results[i], exp) ? "=" : `≠ ${resultKey(exp)}`;
          t.push([i, st.p, st.op, resultKey(results[i]), mark]);
        });
        console.log(`${s.name}: ${s.description}`);
        console.log(t.toString());
        if (agree !== undefined) console.log(agree ? "matches expect" : "DIFFERS from expect");
      }
      if (agree === false) process.exitCode = 1;
    });
}
