/**
 * Real-compositor cases per second, instance start and stop included (a fresh weston or
 * sway per case, as conformance and fuzz --real run them), beside model cases per second of
 * the same behaviour on the policy that follows that compositor, measured in the same run.
 * No goal: the figure says what a real column costs. Skips (with a note) where a compositor
 * or the C compiler is missing.
 */
import { realCompositorPolicy } from "../lab/real-conformance.ts";
import { driverFor } from "../lab/real-drivers.ts";
import { planOf, runReal } from "../lab/real-run.ts";
import { makeSpec, runOne } from "../lab/run.ts";
import { wlClientAvailability } from "../native/wl-client.ts";
import { getReal } from "../real/index.ts";
import { type BenchResult, type BenchSuite, measureRate } from "./harness.ts";

const BEHAVIOUR = "truncate-after-commit";
const CASES = 6;

const suite: BenchSuite = {
  name: "real: cases per second on a real compositor (start included) vs the model",
  async run() {
    const out: BenchResult[] = [];
    const client = await wlClientAvailability();
    if (!client.available) {
      console.log(`  skipped: ${client.reason}`);
      return out;
    }
    const driver = await driverFor("wayland");
    if (!("run" in driver)) {
      console.log(`  skipped: ${driver.why}`);
      return out;
    }
    for (const kind of ["weston", "sway"]) {
      const comp = getReal(kind);
      const a = comp.probe();
      if (!a.available) {
        console.log(`  ${kind} skipped: ${a.why}`);
        continue;
      }
      const policy = realCompositorPolicy(comp.kind, a.version);
      if (!policy) continue;
      const spec = makeSpec({ policy, behaviour: BEHAVIOUR, seed: 1, frames: 8, honest: 1 });
      const t0 = performance.now();
      for (let i = 0; i < CASES; i++) {
        const inst = await comp.start();
        try {
          await runReal(inst, driver, planOf({ ...spec, seed: 1 + i }, 5000));
        } finally {
          await inst.stop();
        }
      }
      const realRate = (CASES * 1000) / (performance.now() - t0);
      let seed = 1;
      const modelRate = measureRate(() => {
        runOne({ ...spec, seed: seed++ });
      });
      out.push({
        name: `${a.version.split(" / ")[0]} × ${BEHAVIOUR} (fresh instance per case)`,
        value: realRate,
        unit: "cases/s",
        baseline: { name: `model ${policy}, same behaviour`, value: modelRate },
      });
    }
    return out;
  },
};
export default suite;
