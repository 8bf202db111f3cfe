/**
 * Compile-on-demand for the small C helpers of the real-compositor judge (native/*.c), the
 * same way native/host.ts builds host-runner.c: the system compiler, at first use, into
 * .cache/native/NAME-HASH (hash of source, flags and arch; installed atomically, so two
 * concurrent builds of one hash are harmless). Where there is no Linux or no compiler the
 * answer is a one-line reason, never an exception.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import os from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
export const NATIVE_DIR = HERE;
const CACHE_DIR = join(dirname(HERE), ".cache", "native");
const CFLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra"];
const CXXFLAGS = ["-O2", "-std=c++17", "-Wall", "-Wextra"];

export type NativeBuild =
  | { available: true; binary: string; compiler: string }
  | { available: false; reason: string };

function findCompiler(cxx = false): string | undefined {
  const names = cxx
    ? [process.env.CXX, "c++", "g++", "clang++"]
    : [process.env.CC, "cc", "gcc", "clang"];
  for (const c of names) {
    if (!c) continue;
    const r = spawnSync(c, ["--version"], { stdio: "ignore" });
    if (!r.error && r.status === 0) return c;
  }
  return undefined;
}

function compile(
  compiler: string,
  flags: readonly string[],
  src: string,
  out: string,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    const tmp = `${out}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const child = spawn(compiler, [...flags, "-o", tmp, src], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.on("error", (e) => resolve(`${compiler}: ${e.message}`));
    child.on("close", (code) => {
      if (code !== 0) {
        rmSync(tmp, { force: true });
        const first = err.split("\n").find((l) => /error/i.test(l)) ?? err.split("\n")[0];
        resolve(`${compiler} failed to build ${basename(src)}: ${first?.trim() ?? code}`);
        return;
      }
      try {
        renameSync(tmp, out);
        resolve(undefined);
      } catch (e) {
        rmSync(tmp, { force: true });
        resolve(`cannot install ${out}: ${(e as Error).message}`);
      }
    });
  });
}

const builds = new Map<string, Promise<NativeBuild>>();

/**
 * Builds native/NAME.c (or NAME.cc with `lang: "c++"`) once per process (and once per
 * source version on disk), with `extraFlags` after the common ones (host-runner.c needs
 * -pthread).
 */
export function buildNative(
  name: string,
  extraFlags: readonly string[] = [],
  lang: "c" | "c++" = "c",
): Promise<NativeBuild> {
  let b = builds.get(name);
  if (!b) {
    b = build(name, [...(lang === "c++" ? CXXFLAGS : CFLAGS), ...extraFlags], lang === "c++");
    builds.set(name, b);
  }
  return b;
}

async function build(name: string, flags: readonly string[], cxx: boolean): Promise<NativeBuild> {
  if (process.platform !== "linux")
    return { available: false, reason: `${name} needs Linux (this is ${process.platform})` };
  const source = join(HERE, cxx ? `${name}.cc` : `${name}.c`);
  let src: Buffer;
  try {
    src = readFileSync(source);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT")
      return { available: false, reason: `missing ${source}` };
    throw e;
  }
  const hash = createHash("sha256").update(src);
  // The shared headers (native/*.h, e.g. scm-rights.h) are part of every helper's source.
  for (const h of readdirSync(HERE)
    .filter((f) => f.endsWith(".h"))
    .sort())
    hash.update(h).update(readFileSync(join(HERE, h)));
  const digest = hash.update(flags.join(" ")).update(os.arch()).digest("hex").slice(0, 16);
  const binary = join(CACHE_DIR, `${name}-${digest}`);
  if (existsSync(binary)) return { available: true, binary, compiler: "cached" };
  const compiler = findCompiler(cxx);
  if (!compiler)
    return {
      available: false,
      reason: `no ${cxx ? "C++ compiler (c++)" : "C compiler (cc)"} found to build ${name}`,
    };
  try {
    mkdirSync(CACHE_DIR, { recursive: true });
  } catch (e) {
    return { available: false, reason: `cannot create ${CACHE_DIR}: ${(e as Error).message}` };
  }
  const failure = await compile(compiler, flags, source, binary);
  if (failure) return { available: false, reason: failure };
  const stale = new RegExp(`^${name}-[0-9a-f]{16}$`);
  for (const f of readdirSync(CACHE_DIR))
    if (stale.test(f) && join(CACHE_DIR, f) !== binary) rmSync(join(CACHE_DIR, f), { force: true });
  return { available: true, binary, compiler };
}
