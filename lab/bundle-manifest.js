// How a bundle of the project's sources (lab/worker-bundle.ts) is found again: its manifest
// names every input and the hash of their bytes. Plain JavaScript, because bin/shmlab.js
// checks the command's own bundle with it before any TypeScript (or tsx) is loaded.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

/** Bumped when the bundle's options change, so older bundles are not taken for current ones. */
export const FORMAT = "1";

/** The manifest of `entryPath`'s bundle in `cacheDir`: cli/main.ts → cli_main.json. */
export function manifestPath(entryPath, root, cacheDir) {
  const name = relative(root, entryPath)
    .replace(/[\\/]/g, "_")
    .replace(/\.[cm]?ts$/, "");
  return join(cacheDir, `${name}.json`);
}

/** Hash of the bundle's format, esbuild's version and every input's path and bytes. */
export function hashOf(esbuildVersion, inputs, bytes) {
  const h = createHash("sha256");
  h.update(`${FORMAT}\0${esbuildVersion}\0`);
  for (const rel of inputs) {
    const b = bytes(rel);
    if (!b) return null;
    h.update(rel);
    h.update("\0");
    h.update(b);
    h.update("\0");
  }
  return h.digest("hex").slice(0, 16);
}

export function readManifest(path) {
  if (!existsSync(path)) return null;
  try {
    const m = JSON.parse(readFileSync(path, "utf8"));
    return m.format === FORMAT && Array.isArray(m.inputs) ? m : null;
  } catch (e) {
    // A manifest cut short by a crash mid-write is rebuilt, like a missing one.
    if (e instanceof SyntaxError) return null;
    throw e;
  }
}

/**
 * The bundle of `entryPath` in `cacheDir` if it was built from the sources as they are now
 * (every input's bytes hash as its manifest says), else null.
 */
export function currentBundle(entryPath, root, cacheDir, esbuildVersion) {
  const old = readManifest(manifestPath(entryPath, root, cacheDir));
  if (!old) return null;
  const hash = hashOf(esbuildVersion, old.inputs, (rel) => {
    const abs = join(root, rel);
    return existsSync(abs) ? readFileSync(abs) : null;
  });
  const file = join(cacheDir, old.bundle);
  return hash === old.hash && existsSync(file) ? file : null;
}
