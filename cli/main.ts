/**
 * The `shmlab` command. Each subcommand lives in cli/commands/<name>.ts and exports
 * `register(program)`; this file only lists them.
 */
// First, so that its sample of the cores' CPU times precedes loading everything else
// (compare --workers auto reads how idle the cores stayed meanwhile).
import "../lab/idle-cores.ts";
import { Command } from "commander";
import { register as registerCompare } from "./commands/compare.ts";
import { register as registerConformance } from "./commands/conformance.ts";
import { register as registerFuzz } from "./commands/fuzz.ts";
import { register as registerReplay } from "./commands/replay.ts";
import { register as registerReview } from "./commands/review.ts";
import { register as registerRun } from "./commands/run.ts";
import { register as registerServe } from "./commands/serve.ts";

const program = new Command();
program
  .name("shmlab")
  .description(
    "A testbed for Wayland's shared-memory buffer problem: simulated Linux kernel, compositor policies, honest and hostile clients.",
  )
  .showHelpAfterError();

registerCompare(program);
registerReview(program);
registerRun(program);
registerConformance(program);
registerFuzz(program);
registerReplay(program);
registerServe(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // Typed errors (scenario, protocol, errno...) carry a stable code: print them plainly.
  const err = e as Error & { code?: string };
  console.error(`shmlab: ${err.message}${err.code ? ` [${err.code}]` : ""}`);
  process.exitCode = 2;
}
