// Which file bin/shmlab.js runs: the command's bundle (no loader hooks), or cli/main.ts
// through tsx. See bin/shmlab.js for why.
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { currentBundle } from "../lab/bundle-manifest.js";
import { namesTypeScript } from "./names-typescript.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const MAIN = join(ROOT, "cli", "main.ts");
const CACHE = join(ROOT, ".cache", "cli");

let tsx = false;
/** Registers tsx's loader in this thread (once). */
export async function registerTsx() {
  if (tsx) return;
  tsx = true;
  const { register } = await import("tsx/esm/api");
  register();
}

/** The current bundle of cli/main.ts, built now if there is none (tsx registered to build). */
async function cliBundle() {
  const esbuildVersion = createRequire(import.meta.url)("esbuild/package.json").version;
  const found = currentBundle(MAIN, ROOT, CACHE, esbuildVersion);
  if (found) return found;
  await registerTsx();
  const { bundleWorker } = await import("../lab/worker-bundle.ts");
  return bundleWorker(MAIN, ROOT, CACHE);
}

/**
 * The file to run for these arguments: { file, bundled, note? }. tsx is registered here
 * when the file is cli/main.ts (or the bundle had to be built first).
 */
export async function cliEntry(args, cwd, env) {
  let note;
  if (env.SHMLAB_CLI_BUNDLE === "0") note = "SHMLAB_CLI_BUNDLE=0";
  else if (namesTypeScript(args, cwd)) note = "an argument names a TypeScript file";
  else {
    try {
      return { file: await cliBundle(), bundled: true };
    } catch (e) {
      // Anything that keeps the bundle from being had (esbuild missing or failing, a
      // read-only checkout) leaves the command as it was before bundles: tsx.
      note = `command bundle unavailable (${(e instanceof Error ? e.message : String(e)).split("\n")[0]})`;
    }
  }
  await registerTsx();
  return { file: MAIN, bundled: false, note };
}
