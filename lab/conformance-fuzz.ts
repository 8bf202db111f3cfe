/**
 * The differential fuzzer: random scenario scripts, from a seed, run on the model and on the
 * host; every disagreement is shrunk to a minimal script and saved as a conformance case
 * whose `expect` is what the host did.
 *
 * Why not fast-check here: each candidate costs a host process (tens of milliseconds), and a
 * script's steps depend on names bound by earlier steps. A generator that tracks live fds and
 * mappings makes valid scripts from the start, and a dependency-aware greedy shrinker removes
 * whole steps with far fewer host runs than generic shrinking of a command list would.
 *
 * Reads from pipes are left to the hand-written cases: whether a pipe holds data depends on
 * whether an earlier write's source page was readable, and a read of an empty pipe blocks
 * (the host helper waits 3 s for every such step).
 *
 * The generator avoids what would compare addresses rather than semantics: accesses never go
 * past the mapping they name (both kernels pack mappings next to each other, but above the
 * topmost one the host has the process's loader and libraries, the model nothing), and a
 * mapping is unmapped whole and then forgotten.
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HostRunError, runOnHost } from "../native/host.ts";
import type { Scenario, Step, StepResult } from "../shm/scenario.ts";
import { runScenarioOnModel } from "../shm/scenario-runner.ts";
import { firstDifference } from "./conformance.ts";
import { Rng } from "./rng.ts";

const PG = 4096;
const SIZES = [0, 1, 100, PG - 1, PG, PG + 1, 2 * PG, 3 * PG, 3 * PG + 7, 4 * PG];

interface Mapping {
  name: string;
  length: number;
  dontFork?: boolean;
}

interface ProcState {
  name: string;
  fds: string[];
  pipes: [string, string][];
  maps: Mapping[];
}

/** Generates one script of about `steps` steps from `seed`. */
export function generateScenario(seed: number, steps = 20): Scenario {
  const rng = new Rng(seed);
  const procs: ProcState[] = [
    { name: "a", fds: [], pipes: [], maps: [] },
    { name: "b", fds: [], pipes: [], maps: [] },
  ];
  const out: Step[] = [];
  let n = 0;
  let forked = false;
  const fresh = (prefix: string) => `${prefix}${n++}`;
  const live = () => procs.filter((p) => p.name !== "dead");

  /** A step over the whole of one of the process's mappings (mprotect, madvise). */
  const wholeMapping = (
    p: ProcState,
    op: string,
    extra: () => Record<string, string>,
  ): Step | undefined => {
    if (!p.maps.length) return undefined;
    const m = rng.pick(p.maps);
    return { p: p.name, op, addr: `$${m.name}`, offset: 0, length: m.length, ...extra() };
  };
  const gen: Record<string, (p: ProcState) => Step | undefined> = {
    memfd(p) {
      const as = fresh("f");
      p.fds.push(as);
      const flags = rng.pick(["MFD_ALLOW_SEALING", "MFD_ALLOW_SEALING", "0", "MFD_NOEXEC_SEAL"]);
      return { p: p.name, op: "memfd_create", name: "fz", flags, as };
    },
    truncate(p) {
      if (!p.fds.length) return undefined;
      return { p: p.name, op: "ftruncate", fd: `$${rng.pick(p.fds)}`, length: rng.pick(SIZES) };
    },
    fallocate(p) {
      if (!p.fds.length) return undefined;
      const mode = rng.pick([
        "FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE",
        "FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE",
        "0",
        "FALLOC_FL_KEEP_SIZE",
      ]);
      return {
        p: p.name,
        op: "fallocate",
        fd: `$${rng.pick(p.fds)}`,
        mode,
        offset: rng.pick([0, 10, PG, PG + 10]),
        length: rng.pick([1, 100, PG, 2 * PG, PG + 20]),
      };
    },
    pwrite(p) {
      if (!p.fds.length) return undefined;
      return {
        p: p.name,
        op: "pwrite",
        fd: `$${rng.pick(p.fds)}`,
        offset: rng.pick([0, 50, PG - 2, PG, 2 * PG + 5]),
        length: rng.int(1, 16),
        fill: rng.int(1, 255),
      };
    },
    pread(p) {
      if (!p.fds.length) return undefined;
      return {
        p: p.name,
        op: "pread",
        fd: `$${rng.pick(p.fds)}`,
        offset: rng.pick([0, 90, PG - 1, PG, 3 * PG]),
        length: rng.int(1, 24),
      };
    },
    seal(p) {
      if (!p.fds.length) return undefined;
      const seals = rng.pick([
        "F_SEAL_SHRINK",
        "F_SEAL_GROW",
        "F_SEAL_WRITE",
        "F_SEAL_FUTURE_WRITE",
        "F_SEAL_SEAL",
        "F_SEAL_SHRINK|F_SEAL_GROW",
      ]);
      return { p: p.name, op: "add_seals", fd: `$${rng.pick(p.fds)}`, seals };
    },
    getSeals(p) {
      if (!p.fds.length) return undefined;
      return { p: p.name, op: "get_seals", fd: `$${rng.pick(p.fds)}` };
    },
    size(p) {
      if (!p.fds.length) return undefined;
      return { p: p.name, op: "fstat_size", fd: `$${rng.pick(p.fds)}` };
    },
    mmap(p) {
      if (!p.fds.length) return undefined;
      const as = fresh("m");
      const length = rng.pick([PG, 2 * PG, 3 * PG, 4 * PG]);
      p.maps.push({ name: as, length });
      return {
        p: p.name,
        op: "mmap",
        length,
        prot: rng.pick(["PROT_READ|PROT_WRITE", "PROT_READ|PROT_WRITE", "PROT_READ", "PROT_NONE"]),
        flags: rng.pick([
          "MAP_SHARED",
          "MAP_SHARED",
          "MAP_PRIVATE",
          "MAP_SHARED|MAP_POPULATE",
          "MAP_PRIVATE|MAP_POPULATE",
        ]),
        fd: `$${rng.pick(p.fds)}`,
        offset: rng.pick([0, 0, PG]),
        as,
      };
    },
    load(p) {
      if (!p.maps.length) return undefined;
      const m = rng.pick(p.maps);
      const offset = rng.int(0, m.length - 1);
      const length = Math.min(rng.pick([1, 4, 64, PG]), m.length - offset);
      return { p: p.name, op: "load", addr: `$${m.name}`, offset, length };
    },
    store(p) {
      if (!p.maps.length) return undefined;
      const m = rng.pick(p.maps);
      const offset = rng.int(0, m.length - 1);
      const length = Math.min(rng.int(1, 32), m.length - offset);
      return { p: p.name, op: "store", addr: `$${m.name}`, offset, length, fill: rng.int(1, 255) };
    },
    munmap(p) {
      if (!p.maps.length) return undefined;
      const m = p.maps.splice(rng.int(0, p.maps.length - 1), 1)[0];
      return { p: p.name, op: "munmap", addr: `$${m.name}`, offset: 0, length: m.length };
    },
    mprotect: (p) =>
      wholeMapping(p, "mprotect", () => ({
        prot: rng.pick(["PROT_READ", "PROT_READ|PROT_WRITE", "PROT_NONE"]),
      })),
    madvise: (p) =>
      wholeMapping(p, "madvise", () => ({
        advice: rng.pick(["MADV_DONTNEED", "MADV_DONTNEED", "MADV_REMOVE"]),
      })),
    handler(p) {
      return {
        p: p.name,
        op: "sigaction",
        signal: "SIGBUS",
        handler: rng.pick(["zero-page", "catch"]),
      };
    },
    pipeWrite(p) {
      if (!p.maps.length) return undefined;
      let pipe = p.pipes[0];
      if (!pipe) {
        pipe = [fresh("r"), fresh("w")];
        p.pipes.push(pipe);
        return { p: p.name, op: "pipe", as: [...pipe] };
      }
      const m = rng.pick(p.maps);
      const offset = Math.min(rng.pick([0, PG - 8, m.length - 16]), m.length - 16);
      return { p: p.name, op: "write", fd: `$${pipe[1]}`, addr: `$${m.name}`, offset, length: 16 };
    },
    sendFd(p) {
      const to = live().find((q) => q !== p && q.name !== "c");
      if (!p.fds.length || !to) return undefined;
      const as = fresh("f");
      to.fds.push(as);
      return { p: p.name, op: "send_fd", fd: `$${rng.pick(p.fds)}`, to: to.name, as };
    },
    anon(p) {
      const as = fresh("m");
      const length = rng.pick([PG, 2 * PG]);
      p.maps.push({ name: as, length });
      return {
        p: p.name,
        op: "mmap",
        length,
        prot: "PROT_READ|PROT_WRITE",
        flags: rng.pick(["MAP_PRIVATE|MAP_ANONYMOUS", "MAP_SHARED|MAP_ANONYMOUS"]),
        as,
      };
    },
    forkAdvice(p) {
      if (!p.maps.length) return undefined;
      const m = rng.pick(p.maps);
      const advice = rng.pick(["MADV_WIPEONFORK", "MADV_DONTFORK", "MADV_DOFORK"]);
      // The child will not have a DONTFORK range: its binding must not be used there (the
      // host may place the child's next mapping exactly where it was).
      if (advice === "MADV_DONTFORK") m.dontFork = true;
      if (advice === "MADV_DOFORK") m.dontFork = false;
      return { p: p.name, op: "madvise", addr: `$${m.name}`, offset: 0, length: m.length, advice };
    },
    mremapGrow(p) {
      if (!p.maps.length) return undefined;
      const i = rng.int(0, p.maps.length - 1);
      const m = p.maps[i];
      const as = fresh("m");
      const length = m.length + rng.pick([PG, 2 * PG]);
      // The old binding is forgotten: its range may be reused differently on each kernel.
      p.maps.splice(i, 1, { name: as, length, dontFork: m.dontFork });
      return {
        p: p.name,
        op: "mremap",
        addr: `$${m.name}`,
        offset: 0,
        old_length: m.length,
        new_length: length,
        flags: "MREMAP_MAYMOVE",
        as,
      };
    },
    dupClose(p) {
      if (!p.fds.length) return undefined;
      if (rng.chance(0.5)) {
        const as = fresh("f");
        const st: Step = { p: p.name, op: "dup", fd: `$${rng.pick(p.fds)}`, as };
        p.fds.push(as);
        return st;
      }
      const fd = p.fds.splice(rng.int(0, p.fds.length - 1), 1)[0];
      return { p: p.name, op: "close", fd: `$${fd}` };
    },
    fork(p) {
      if (forked || p.name !== "a") return undefined;
      forked = true;
      procs.push({
        name: "c",
        fds: [...p.fds],
        pipes: [...p.pipes],
        maps: p.maps.filter((m) => !m.dontFork).map((m) => ({ ...m })),
      });
      return { p: "a", op: "fork", child: "c" };
    },
  };
  const weights: [string, number][] = [
    ["memfd", 2],
    ["truncate", 4],
    ["fallocate", 2],
    ["pwrite", 2],
    ["pread", 2],
    ["seal", 2],
    ["getSeals", 1],
    ["size", 1],
    ["mmap", 4],
    ["load", 6],
    ["store", 4],
    ["munmap", 1],
    ["mprotect", 1],
    ["madvise", 2],
    ["handler", 1],
    ["pipeWrite", 1],
    ["sendFd", 2],
    ["fork", 1],
    ["anon", 1],
    ["forkAdvice", 1],
    ["mremapGrow", 1],
    ["dupClose", 1],
  ];
  const total = weights.reduce((s, [, w]) => s + w, 0);
  // Every script starts with a file and a mapping, so the interesting operations have targets.
  out.push(gen.memfd(procs[0])!);
  out.push({ p: "a", op: "ftruncate", fd: `$${procs[0].fds[0]}`, length: 2 * PG });
  out.push(gen.mmap(procs[0])!);
  let guard = 0;
  while (out.length < steps && guard++ < steps * 20) {
    let r = rng.next() * total;
    let kind = weights[0][0];
    for (const [k, w] of weights) {
      r -= w;
      if (r < 0) {
        kind = k;
        break;
      }
    }
    const p = rng.pick(live());
    const st = gen[kind](p);
    if (st) out.push(st);
  }
  return {
    name: `fuzz-${seed}`,
    description: `Found by shmlab conformance --fuzz (seed ${seed}).`,
    rules: [],
    processes: ["a", "b"],
    steps: out,
  };
}

function namesUsed(st: Step): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(st)) {
    if (k === "as") continue;
    if (typeof v === "string" && v.startsWith("$")) out.push(v.slice(1).split(".")[0]);
  }
  return out;
}

function namesBound(st: Step): string[] {
  if (st.as === undefined) return [];
  return Array.isArray(st.as) ? st.as : [st.as];
}

/** Whether a script can drop step i: nothing left depends on it. */
function removable(steps: Step[], i: number): boolean {
  const bound = new Set(namesBound(steps[i]));
  const child = steps[i].op === "fork" ? String(steps[i].child) : undefined;
  for (let j = i + 1; j < steps.length; j++) {
    if (namesUsed(steps[j]).some((n) => bound.has(n))) return false;
    if (child && (steps[j].p === child || steps[j].to === child)) return false;
  }
  return true;
}

export interface Disagreement {
  scenario: Scenario;
  model: StepResult[];
  host: StepResult[];
  step: number;
}

async function disagrees(s: Scenario): Promise<Disagreement | undefined> {
  const model = runScenarioOnModel(s).results;
  let host: StepResult[];
  try {
    host = await runOnHost(s, { timeoutMs: 15_000 });
  } catch (e) {
    if (e instanceof HostRunError) return undefined; // a script the host refuses is not a finding
    throw e;
  }
  const step = firstDifference(model, host);
  return step === -1 ? undefined : { scenario: s, model, host, step };
}

/**
 * Greedy dependency-aware shrinking: repeatedly drop any step whose removal keeps a
 * disagreement, and cut the script after the first differing step.
 */
export async function shrink(d: Disagreement): Promise<Disagreement> {
  let best = d;
  best =
    (await disagrees({ ...best.scenario, steps: best.scenario.steps.slice(0, best.step + 1) })) ??
    best;
  let progress = true;
  while (progress) {
    progress = false;
    for (let i = best.scenario.steps.length - 2; i >= 0; i--) {
      if (!removable(best.scenario.steps, i)) continue;
      const steps = best.scenario.steps.filter((_, j) => j !== i);
      const got = await disagrees({ ...best.scenario, steps });
      if (got) {
        best = got;
        progress = true;
      }
    }
  }
  return best;
}

export interface FuzzOptions {
  seed: number;
  runs: number;
  steps?: number;
  /** Where shrunk disagreements are written as conformance cases (atomically). */
  saveDir?: string;
  onProgress?: (done: number, found: number) => void;
}

export interface FuzzReport {
  runs: number;
  findings: { file?: string; disagreement: Disagreement }[];
}

export async function fuzzConformance(opts: FuzzOptions): Promise<FuzzReport> {
  const findings: FuzzReport["findings"] = [];
  const seenSignatures = new Set<string>();
  for (let i = 0; i < opts.runs; i++) {
    const seed = (opts.seed + i) >>> 0;
    const s = generateScenario(seed, opts.steps ?? 20);
    const d = await disagrees(s);
    if (d) {
      const small = await shrink(d);
      const last = small.scenario.steps[small.step];
      const signature = `${last.op}:${JSON.stringify(small.model[small.step])}:${JSON.stringify(small.host[small.step])}`;
      if (!seenSignatures.has(signature)) {
        seenSignatures.add(signature);
        let file: string | undefined;
        if (opts.saveDir) file = saveCase(opts.saveDir, small);
        findings.push({ file, disagreement: small });
      }
    }
    opts.onProgress?.(i + 1, findings.length);
  }
  return { runs: opts.runs, findings };
}

function saveCase(dir: string, d: Disagreement): string {
  mkdirSync(dir, { recursive: true });
  const s: Scenario = {
    ...d.scenario,
    description: `${d.scenario.description} The model disagreed with the host at step ${d.step}.`,
    expect: d.host,
  };
  const file = join(dir, `${d.scenario.name}.json`);
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(s, null, 2)}\n`);
  renameSync(tmp, file);
  return file;
}
