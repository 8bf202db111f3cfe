/** Finds the scenario scripts of the conformance suite (scenarios/<group>/<name>.json). */
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { loadScenario, type Scenario } from "./scenario.ts";

export interface ScenarioFile {
  path: string;
  /** group/name, as shown in tables. */
  id: string;
  scenario: Scenario;
}

export function findScenarioFiles(root: string): ScenarioFile[] {
  const out: ScenarioFile[] = [];
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return; // no such folder: no scenarios
      throw e;
    }
    for (const n of names) {
      const p = join(dir, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (n.endsWith(".json")) {
        out.push({
          path: p,
          id: relative(root, p).replace(/\.json$/, ""),
          scenario: loadScenario(p),
        });
      }
    }
  };
  walk(root);
  return out;
}
