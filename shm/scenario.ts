/**
 * Kernel scenario scripts: the types of docs/scenarios.md, a loader that checks a script's
 * shape up front, and result comparison. The model runner (scenario-runner.ts) and the host
 * runner (native/) both produce StepResult lists in exactly this form.
 */
import { readFileSync } from "node:fs";

/**
 * `gup-pre-5.19` is not a proposal but an older kernel: FOLL_PIN without PageAnonExclusive
 * and without the unshare fault (Linux 5.9-5.18), for the lost-write-after-fork hazard.
 */
export type KernelFeature = "map-nofault" | "zero-beyond-eof" | "madv-userfault" | "gup-pre-5.19";
export const KERNEL_FEATURES: readonly KernelFeature[] = [
  "map-nofault",
  "zero-beyond-eof",
  "madv-userfault",
  "gup-pre-5.19",
];

export type ArgValue = string | number | boolean | string[];

export interface Step {
  /** The process that makes the step. */
  p: string;
  op: string;
  as?: string | string[];
  async?: boolean;
  [arg: string]: ArgValue | undefined;
}

export interface Scenario {
  name: string;
  description: string;
  rules: number[];
  modelOnly?: boolean;
  kernelFeatures?: KernelFeature[];
  processes: string[];
  steps: Step[];
  expect?: StepResult[];
}

export interface FaultReport {
  signal: "SIGBUS" | "SIGSEGV";
  code: "BUS_ADRERR" | "SEGV_MAPERR" | "SEGV_ACCERR";
  offset: number;
}

export type StepValue = number | string | number[] | { [k: string]: number | string | boolean };

export type StepResult =
  | { value: StepValue; handled?: FaultReport[] }
  | { errno: string }
  | FaultReport
  | { killed: "SIGBUS" | "SIGSEGV" }
  | { dead: true }
  | { blocked: true };

export const SCENARIO_OPS = [
  "memfd_create",
  "pipe",
  "dup",
  "close",
  "send_fd",
  "ftruncate",
  "fallocate",
  "fstat_size",
  "fstat_blocks",
  "pread",
  "pwrite",
  "read",
  "write",
  "add_seals",
  "get_seals",
  "mmap",
  "munmap",
  "mremap",
  "mprotect",
  "madvise",
  "load",
  "store",
  "touch",
  "sigaction",
  "fork",
  "exit",
  "userfaultfd",
  "uffdio_api",
  "uffdio_register",
  "uffd_read",
  "uffdio_zeropage",
  "uffdio_copy",
  "join",
  // Model-only operations (issue 9 hazards): no host can be told to do these.
  "pin",
  "unpin",
  "device_read",
  "reclaim",
  "pfnmap",
  "set_zero_beyond_eof",
] as const;
export type ScenarioOp = (typeof SCENARIO_OPS)[number];

/** Operations the host helper cannot perform; a scenario using one is model-only. */
export const MODEL_ONLY_OPS: ReadonlySet<string> = new Set([
  "pin",
  "unpin",
  "device_read",
  "reclaim",
  "pfnmap",
  "set_zero_beyond_eof",
]);

export class ScenarioError extends Error {
  readonly code = "SHM_ERR_SCENARIO";
}

/** Checks the shape of a parsed script; throws ScenarioError naming the first problem. */
export function validateScenario(x: unknown, where = "scenario"): Scenario {
  const fail = (msg: string): never => {
    throw new ScenarioError(`${where}: ${msg}`);
  };
  if (typeof x !== "object" || x === null) fail("not an object");
  const s = x as Scenario;
  if (typeof s.name !== "string" || !s.name) fail("missing name");
  if (!Array.isArray(s.processes) || s.processes.length === 0) fail("missing processes");
  if (!Array.isArray(s.steps)) fail("missing steps");
  for (const f of s.kernelFeatures ?? []) {
    if (!KERNEL_FEATURES.includes(f)) fail(`unknown kernel feature ${f}`);
  }
  const known = new Set<string>(s.processes);
  s.steps.forEach((st, i) => {
    if (typeof st !== "object" || st === null) fail(`step ${i} is not an object`);
    if (!(SCENARIO_OPS as readonly string[]).includes(st.op))
      fail(`step ${i}: unknown op ${st.op}`);
    if (!known.has(st.p)) fail(`step ${i}: unknown process ${st.p}`);
    if (st.op === "fork") {
      if (typeof st.child !== "string") fail(`step ${i}: fork needs child`);
      known.add(st.child as string);
    }
  });
  if (s.expect && s.expect.length !== s.steps.length) {
    fail(`expect has ${s.expect.length} results for ${s.steps.length} steps`);
  }
  return s;
}

export function loadScenario(path: string): Scenario {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new ScenarioError(`${path}: ${(e as Error).message}`);
  }
  return validateScenario(parsed, path);
}

/**
 * Whether the host helper can perform a step. A device's read-write long-term pin can be
 * taken from user space (io_uring fixed buffers, as the cow selftest does) and read back;
 * a read-only pin, a device buffer, a PFN map and forced reclaim cannot.
 */
function hostCanRun(st: Step): boolean {
  if (st.op === "pin") return st.write === true;
  if (st.op === "unpin") return true;
  if (st.op === "device_read") return st.device === undefined;
  return !MODEL_ONLY_OPS.has(st.op);
}

/** True when a scenario can run on a host kernel (no proposals, no model-only ops). */
export function isHostRunnable(s: Scenario): boolean {
  return !s.modelOnly && !s.kernelFeatures?.length && s.steps.every(hostCanRun);
}

/** Canonical JSON of a result (key order fixed), for comparing and printing. */
export function resultKey(r: StepResult): string {
  return JSON.stringify(r, (_k, v) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );
}

export function sameResult(a: StepResult, b: StepResult): boolean {
  return resultKey(a) === resultKey(b);
}

/** Run-length hex of bytes: "ab*4,00*4092" ("" for none), as docs/scenarios.md defines. */
export function rle(bytes: Uint8Array): string {
  const out: string[] = [];
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    let j = i + 1;
    while (j < bytes.length && bytes[j] === b) j++;
    out.push(`${b.toString(16).padStart(2, "0")}*${j - i}`);
    i = j;
  }
  return out.join(",");
}

export function unrle(s: string): Uint8Array {
  if (s === "") return new Uint8Array(0);
  const parts = s.split(",").map((t) => {
    const m = /^([0-9a-f]{2})\*(\d+)$/i.exec(t.trim());
    if (!m) throw new ScenarioError(`bad RLE token ${JSON.stringify(t)}`);
    return [Number.parseInt(m[1], 16), Number(m[2])] as const;
  });
  const out = new Uint8Array(parts.reduce((n, [, c]) => n + c, 0));
  let o = 0;
  for (const [b, c] of parts) {
    out.fill(b, o, o + c);
    o += c;
  }
  return out;
}
