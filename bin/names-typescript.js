// Whether a command line names a TypeScript file the command would import: a policy,
// behaviour or proposal's rules given as a path (compositor/policies/index.ts loadPolicy,
// client/behaviours/index.ts loadBehaviour, protocol/proposal.ts parseProposalName). Only
// tsx's loader can import those, so bin/shmlab.js then runs the sources through tsx.
import { existsSync } from "node:fs";
import { resolve } from "node:path";

const TS = /\.[cm]?tsx?$/;

/**
 * True when an argument, or one of its comma- or `=`-separated parts, ends in a TypeScript
 * extension, or is an extensionless path that tsx would resolve to a .ts file (`./mine` for
 * ./mine.ts or ./mine/index.ts). Output paths (`--json out.json`, `--out dir`) are neither.
 */
export function namesTypeScript(args, cwd) {
  for (const arg of args) {
    for (const part of arg.split(/[,=]/)) {
      if (TS.test(part)) return true;
      if (!/[\\/]/.test(part) || /\.[A-Za-z0-9]+$/.test(part)) continue;
      const base = resolve(cwd, part.startsWith("file:") ? new URL(part).pathname : part);
      if (existsSync(`${base}.ts`) || existsSync(resolve(base, "index.ts"))) return true;
    }
  }
  return false;
}
