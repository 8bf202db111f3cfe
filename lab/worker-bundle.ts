/**
 * Cheap start-up for worker threads. A piscina worker started with `--import tsx` compiles
 * every source it imports again, through tsx's loader hooks: about 1.2 CPU-s per thread for
 * the comparison's graph (docs/performance.md), as long as the default matrix itself. Here a
 * worker entry is bundled once into one JavaScript file with esbuild (tsx's own compiler)
 * under .cache/workers/, keyed by a hash of every source the bundle holds, and a worker
 * loads that file with no loader hooks at all. Every pool of the project takes its
 * filename and execArgv from `workerEntry`.
 *
 * What stays as in the sources: packages are left to Node (imported from node_modules, not
 * bundled), and each module's `import.meta.url` is its own source file's URL, not the
 * bundle's, so paths built from it (protocol/xml/, a worker's sibling, createRequire) name
 * the same files. Where bundling is not possible (esbuild missing or failing, a
 * read-only tree) or not wanted (the worker must import a user's .ts file: tsx's hooks are
 * needed there; SHMLAB_WORKER_BUNDLE=0), the worker loads the sources through tsx as before,
 * with a one-line note on stderr saying why when bundling failed.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname, extname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Loader, Plugin } from "esbuild";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CACHE_DIR = join(ROOT, ".cache", "workers");
/** Bumped when the bundle's options change, so older bundles are not taken for current ones. */
const FORMAT = "1";

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

/** What a bundle was made from: the sources, relative to the repository, and their hash. */
interface Manifest {
  format: string;
  inputs: string[];
  hash: string;
  bundle: string;
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

function manifestPath(entryPath: string, root: string, cacheDir: string): string {
  const name = relative(root, entryPath)
    .replace(/[\\/]/g, "_")
    .replace(/\.[cm]?ts$/, "");
  return join(cacheDir, `${name}.json`);
}

/** Hash of the bundle's format, esbuild's version and every input's path and bytes. */
function hashOf(
  esbuildVersion: string,
  inputs: readonly string[],
  bytes: (rel: string) => Uint8Array | null,
): string | null {
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

function readManifest(path: string): Manifest | null {
  if (!existsSync(path)) return null;
  try {
    const m = JSON.parse(readFileSync(path, "utf8")) as Manifest;
    return m.format === FORMAT && Array.isArray(m.inputs) ? m : null;
  } catch (e) {
    // A manifest cut short by a crash mid-write is rebuilt, like a missing one.
    if (e instanceof SyntaxError) return null;
    throw e;
  }
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
  const old = readManifest(mpath);
  if (old) {
    const hash = hashOf(esbuild.version, old.inputs, (rel) => {
      const abs = join(root, rel);
      return existsSync(abs) ? readFileSync(abs) : null;
    });
    const file = join(cacheDir, old.bundle);
    if (hash === old.hash && existsSync(file)) return file;
  }
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
  return file;
}

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
        return { contents: bytes.toString("utf8").replaceAll("import.meta.url", url), loader };
      });
    },
  };
}
