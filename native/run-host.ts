/**
 * Developer tool: runs scenario files on the host kernel and prints each step with the host's
 * result (and the recorded `expect`, when it differs). With --record, writes the host's
 * results into the file's `expect` — only after you have checked them against LINUX.md and
 * the kernel source (docs/conformance.md, "Adding a scenario").
 *
 *   node --import tsx native/run-host.ts scenarios/truncate/*.json [--record]
 */
import { readFileSync, writeFileSync } from "node:fs";
import { loadScenario, resultKey } from "../shm/scenario.ts";
import { hostAvailability, hostKernelVersion, runOnHost } from "./host.ts";

const args = process.argv.slice(2);
const record = args.includes("--record");
const files = args.filter((a) => !a.startsWith("--"));

const avail = await hostAvailability();
if (!avail.available) {
  console.log(avail.reason);
  process.exit(0);
}
console.log(`host: ${hostKernelVersion()}`);
let differ = 0;
for (const file of files) {
  const s = loadScenario(file);
  const results = await runOnHost(s);
  console.log(`\n== ${file}`);
  s.steps.forEach((st, i) => {
    const { p, op, ...rest } = st;
    const got = resultKey(results[i]);
    const want = s.expect ? resultKey(s.expect[i]) : undefined;
    const mark = want === undefined ? " " : want === got ? "=" : "!";
    console.log(`${mark} ${p} ${op} ${JSON.stringify(rest)}\n    -> ${got}`);
    if (want !== undefined && want !== got) console.log(`    expected ${want}`);
  });
  if (s.expect?.some((e, i) => resultKey(e) !== resultKey(results[i]))) differ++;
  if (record) {
    const raw = JSON.parse(readFileSync(file, "utf8"));
    raw.expect = results;
    writeFileSync(file, `${JSON.stringify(raw, null, 2)}\n`);
  }
}
if (differ) {
  console.log(`\n${differ} file(s) differ from their expect`);
  process.exitCode = 1;
}
