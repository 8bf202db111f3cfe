import {
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname, extname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Loader, Plugin } from "esbuild";
import { currentBundle, FORMAT, hashOf, type Manifest, manifestPath } from "./bundle-manifest.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CACHE_DIR = join(ROOT, ".cache", "workers");

/** How a pool starts its workers: piscina's `filename` and `execArgv`. */
export interface WorkerEntry {
  filename: string;
  execArgv: string[];
  /** True when the workers load one bundled file; false: the sources through tsx. */
  bundled: boolean;
  /** Why the workers go through tsx, when they do. */
  note?: string;
}

export interface WorkerEntryOptions {
  /**
   * Set (to the reason) when the worker will import a user's TypeScript file (a policy,
   * behaviour or proposal given as a path): only tsx's hooks can load it in the thread.
   */
  needsTsx?: string;
}

/** tsx's loader, resolved from here so that any working directory finds it. */
export function tsxImport(): string {
  const resolveFn = (import.meta as { resolve?: (s: string) => string }).resolve;
  return resolveFn ? resolveFn("tsx") : "tsx";
}

function viaTsx(entryPath: string, note?: string): WorkerEntry {
  return {
    filename: pathToFileURL(entryPath).href,
    execArgv: ["--import", tsxImport()],
    bundled: false,
    ...(note ? { note } : {}),
  };
}

const entries = new Map<string, Promise<WorkerEntry>>();
const noted = new Set<string>();

/**
 * The worker entry `entry` (a source file's URL or path) as a pool should start it: the
 * bundle when it can be had, tsx otherwise. Bundling happens at the first use of a source
 * version; later processes find it by the hash of the sources (a few milliseconds).
 */
export function workerEntry(
  entry: URL | string,
  opts: WorkerEntryOptions = {},
): Promise<WorkerEntry> {
  const entryPath =
    entry instanceof URL || entry.startsWith("file:") ? fileURLToPath(entry) : entry;
  if (opts.needsTsx) return Promise.resolve(viaTsx(entryPath, opts.needsTsx));
  if (process.env.SHMLAB_WORKER_BUNDLE === "0")
    return Promise.resolve(viaTsx(entryPath, "SHMLAB_WORKER_BUNDLE=0"));
  let e = entries.get(entryPath);
  if (!e) {
    e = bundleWorker(entryPath).then(
      (filename): WorkerEntry => ({
        filename: pathToFileURL(filename).href,
        execArgv: [],
        bundled: true,
      }),
      (err: unknown) => {
        const note = `worker bundle for ${relative(ROOT, entryPath)} unavailable (${why(err)}): workers load the sources through tsx (slower start-up)`;
        if (!noted.has(note)) {
          noted.add(note);
          process.stderr.write(`shmlab: ${note}\n`);
        }
        return viaTsx(entryPath, note);
      },
    );
    entries.set(entryPath, e);
  }
  return e;
}

/** esbuild's first error ("file: text"), or the error's first line. */
function why(err: unknown): string {
  const first = (err as { errors?: { text: string; location?: { file: string } | null }[] })
    .errors?.[0];
  if (first) return first.location ? `${first.location.file}: ${first.text}` : first.text;
  return (err instanceof Error ? err.message : String(err)).split("\n")[0];
}

/** Writes `data` to `path` through a temporary file, so readers never see half of it. */
function writeAtomic(path: string, data: string): void {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * The current bundle of `entryPath` (a file under `root`), in `cacheDir`: found by its
 * sources' hash, or built now. Returns its path.
 */
export async function bundleWorker(
  entryPath: string,
  root = ROOT,
  cacheDir = CACHE_DIR,
): Promise<string> {
  const esbuild = await import("esbuild");
  const mpath = manifestPath(entryPath, root, cacheDir);
  const current = currentBundle(entryPath, root, cacheDir, esbuild.version);
  if (current) return current;
  const tsconfig = join(root, "tsconfig.json");
  const read = new Map<string, Buffer>();
  const result = await esbuild.build({
    entryPoints: [entryPath],
    absWorkingDir: root,
    bundle: true,
    write: false,
    metafile: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    ...(existsSync(tsconfig) ? { tsconfig } : {}),
    logLevel: "silent",
    plugins: [ownUrls(read)],
  });
  const inputs = Object.keys(result.metafile?.inputs ?? {}).sort();
  // The hash of the bytes bundled, not of the files now: an edit during the build is seen
  // as a change by the next process.
  const hash = hashOf(esbuild.version, inputs, (rel) => read.get(join(root, rel)) ?? null);
  if (!hash) throw new Error(`an input was not read through the bundler: ${inputs.join(", ")}`);
  const bundle = `${basename(mpath, ".json")}-${hash}.mjs`;
  mkdirSync(cacheDir, { recursive: true });
  const file = join(cacheDir, bundle);
  const out = result.outputFiles?.[0];
  if (!out) throw new Error("esbuild wrote no bundle");
  writeAtomic(file, out.text);
  writeAtomic(mpath, JSON.stringify({ format: FORMAT, inputs, hash, bundle } satisfies Manifest));
  pruneOlder(cacheDir, basename(mpath, ".json"), bundle);
  return file;
}

/** A bundle older than this is no longer in use by a process that started from it. */
const STALE_MS = 60 * 60 * 1000;

/**
 * Removes the entry's earlier bundles (one per source version: every edit makes one), once
 * they are old enough that no worker still starting from one can be loading it.
 */
function pruneOlder(cacheDir: string, name: string, keep: string): void {
  const now = Date.now();
  for (const f of readdirSync(cacheDir)) {
    if (f === keep || !f.startsWith(`${name}-`) || !f.endsWith(".mjs")) continue;
    const p = join(cacheDir, f);
    try {
      if (now - statSync(p).mtimeMs > STALE_MS) rmSync(p, { force: true });
    } catch (e) {
      // Another process pruned it first.
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
  }
}

/** `import.meta.url` as an expression: not right after a quote (a string naming it). */
const OWN_URL = /(?<!["'`])\bimport\.meta\.url\b/g;

const LOADERS: Record<string, Loader> = {
  ".ts": "ts",
  ".mts": "ts",
  ".cts": "ts",
  ".js": "js",
  ".mjs": "js",
  ".cjs": "js",
  ".json": "json",
};

/**
 * Reads every source the bundle holds (into `read`, for its hash), and gives each module its
 * own `import.meta.url`: esbuild leaves the expression to the bundle, whose URL is
 * .cache/workers/'s, so it is replaced by the source file's URL as the file loads.
 */
function ownUrls(read: Map<string, Buffer>): Plugin {
  return {
    name: "own-import-meta-url",
    setup(build) {
      build.onLoad({ filter: /./ }, async (args) => {
        const bytes = await readFile(args.path);
        read.set(args.path, bytes);
        const loader = LOADERS[extname(args.path)];
        if (!loader) throw new Error(`${args.path}: no loader for its extension`);
        const url = JSON.stringify(pathToFileURL(args.path).href);
        // Not where the text is quoted: this very file names the expression in a string.
        return { contents: bytes.toString("utf8").replace(OWN_URL, url), loader };
      });
    },
  };
}
