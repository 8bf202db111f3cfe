/**
 * The addon native/memory-reclaim.cc (V8's memory-pressure GC and glibc's malloc_trim for
 * this Node process), compiled on demand (build.ts) against the headers of the running
 * node. Where there is no C++ compiler, no node headers of this node's ABI, or no glibc,
 * the answer is a one-line reason and the caller goes on without it.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { buildNative } from "./build.ts";

export interface MemoryReclaimAddon {
  /** A memory-reducing full GC (v8::Isolate::MemoryPressureNotification, critical). */
  lowMemory(): void;
  /** glibc malloc_trim(0); true when memory was given back. */
  mallocTrim(): boolean;
  /** glibc's account of its heap (mallinfo2, summed over arenas), bytes; and its arenas. */
  mallocStats(): MallocStats;
}

export interface MallocStats {
  /** Bytes the arenas' heaps obtained from the system (sbrk and heap mmaps). */
  arena: number;
  /** Bytes of chunks mmap()ed on their own (above the mmap threshold). */
  mmapped: number;
  inUse: number;
  /** Free chunks glibc keeps in its arenas. */
  free: number;
  /** The releasable top of the main heap. */
  topFree: number;
  /** How many arenas (-1 if malloc_info failed). */
  arenas: number;
}

export type MemoryReclaimBuild =
  | { available: true; addon: MemoryReclaimAddon }
  | { available: false; reason: string };

let loaded: Promise<MemoryReclaimBuild> | undefined;

/** node's own headers (<prefix>/include/node beside <prefix>/bin/node), if they are its ABI's. */
function nodeHeaders(): { dir: string } | { reason: string } {
  const dir = join(dirname(dirname(process.execPath)), "include", "node");
  const version = join(dir, "node_version.h");
  if (!existsSync(join(dir, "node.h")) || !existsSync(version))
    return { reason: `no node headers in ${dir}` };
  const abi = /#define NODE_MODULE_VERSION (\d+)/.exec(readFileSync(version, "utf8"))?.[1];
  if (abi !== process.versions.modules)
    return {
      reason: `the node headers in ${dir} are for ABI ${abi ?? "?"}, this node is ${process.versions.modules}`,
    };
  return { dir };
}

async function load(): Promise<MemoryReclaimBuild> {
  const h = nodeHeaders();
  if ("reason" in h) return { available: false, reason: h.reason };
  // The ABI is in the flags, so it is in the build's cache key.
  const b = await buildNative(
    "memory-reclaim",
    ["-shared", "-fPIC", `-I${h.dir}`, `-DSHMLAB_NODE_ABI=${process.versions.modules}`],
    "c++",
  );
  if (!b.available) return b;
  const mod = { exports: {} as Partial<MemoryReclaimAddon> };
  try {
    process.dlopen(mod, b.binary);
  } catch (e) {
    // node refuses an addon of another ABI, or one with a symbol it cannot resolve.
    return { available: false, reason: `cannot load ${b.binary}: ${(e as Error).message}` };
  }
  const { lowMemory, mallocTrim, mallocStats } = mod.exports;
  if (
    typeof lowMemory !== "function" ||
    typeof mallocTrim !== "function" ||
    typeof mallocStats !== "function"
  )
    return {
      available: false,
      reason: `${b.binary} lacks lowMemory(), mallocTrim() or mallocStats()`,
    };
  return { available: true, addon: { lowMemory, mallocTrim, mallocStats } };
}

/** The addon, built and loaded once per process. */
export function memoryReclaimAddon(): Promise<MemoryReclaimBuild> {
  loaded ??= load();
  return loaded;
}
