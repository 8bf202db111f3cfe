/**
 * The kernel's fast paths (issue 16), each against a baseline measured in the same run and
 * each the median of REPS repetitions, the simulated figure and its baseline measured back to
 * back in every repetition so that both see the same load:
 *
 * - SIGBUS beyond EOF + a handler that maps an anonymous page MAP_FIXED over the faulting
 *   page + retry, per fault, against the same pattern on the real kernel (native/
 *   fault-bench.c, compiled on demand; skipped with a note where there is no compiler).
 * - First touch (a one-byte load) of a page that is in the page cache but not yet in this
 *   mapping's page table, against a plain 4 KiB typed-array copy. As on Linux, a read fault
 *   maps its cached neighbours (fault-around, shm/fault.ts): one touch in 16 faults.
 * - A 4096-page pool's whole mapping life (mmap + one touch per page + munmap) against
 *   copying its 4096 pages one typed-array copy each.
 * - Reading an already-faulted 8 MiB range against one Uint8Array.set of it, where the
 *   scheduler's points are no-ops (one copy per physically contiguous run), and again with
 *   every page a preemption point (the compositor's reads under the seeded scheduler).
 *
 * The median and the spread are computed here (bench/harness.ts reports one figure).
 */
import { spawnSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import { buildNative } from "../native/build.ts";
import { FAULT_AROUND_PAGES } from "../shm/fault.ts";
import { Kernel, NO_PREEMPTION, type Scheduler } from "../shm/kernel.ts";
import type { Process } from "../shm/process.ts";
import { MAP, PAGE_SIZE, PROT, pageOffset } from "../shm/uapi.ts";
import type { BenchResult, BenchSuite } from "./harness.ts";

const REPS = 7;
/** Time each side of one repetition runs for, after its warm-up. */
const MIN_MS = 150;
const POOL_PAGES = 4096;
const RW = PROT.PROT_READ | PROT.PROT_WRITE;

/**
 * The pool figure of main before the fast-path work (3b46b07), as a ratio to its same-run
 * page-copy baseline: the median of six runs of this bench on main (0.41, 0.64, 0.67, 0.77,
 * 0.92, 0.96; load 3-15 on the shared 2-core machine). "4096-page pools faulted in >= 10x
 * faster than now" is then a same-run ratio ten times this one. docs/performance.md says how
 * to measure it again.
 */
const MAIN_POOL_RATIO = 0.72;

/** Runs `fn` (which does `ops` operations) for MIN_MS after a warm-up; ns per operation. */
function nsPerOp(fn: () => number): number {
  const warm = performance.now() + MIN_MS / 3;
  while (performance.now() < warm) fn();
  let ops = 0;
  let spent = 0;
  while (spent < MIN_MS) {
    const t0 = performance.now();
    ops += fn();
    spent += performance.now() - t0;
  }
  return (spent * 1e6) / ops;
}

interface Series {
  median: number;
  min: number;
  max: number;
  /** Every repetition's figure, in measurement order. */
  xs: number[];
}

function series(xs: number[]): Series {
  const s = [...xs].sort((a, b) => a - b);
  const median = s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median, min: s[0], max: s[s.length - 1], xs };
}

/** "median (min-max)" of ns-per-operation figures. */
const ns = (x: Series) => `${x.median.toFixed(0)} ns (${x.min.toFixed(0)}-${x.max.toFixed(0)})`;

interface Paired {
  sim: Series;
  base: Series;
  /** sim's speed over base's, per repetition (both measured back to back). */
  ratio: Series;
}

/** One repetition of each side, REPS times; both sides' figures in ns per operation. */
function repeat(sim: () => number, base: () => number): Paired {
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < REPS; r++) {
    a.push(sim());
    b.push(base());
  }
  return { sim: series(a), base: series(b), ratio: series(a.map((x, i) => b[i] / x)) };
}

/**
 * A result in operations per second from figures in ns per operation. `samples`,
 * `baseline.samples` and `ratios` carry every repetition (a harness that reads them judges
 * the goal on the median same-repetition ratio; one that does not uses the medians).
 */
function result(
  name: string,
  unit: string,
  m: Paired,
  baseName: string,
  goal: BenchResult["goal"],
  /** Units per operation (MiB per read). */
  per = 1,
): BenchResult {
  // (Not a literal typed BenchResult: samples and ratios are extra fields the plain harness
  // does not declare and ignores.)
  const r = {
    name: `${name}: ${ns(m.sim)}, same-repetition ratio ${m.ratio.median.toFixed(2)} (${m.ratio.min.toFixed(2)}-${m.ratio.max.toFixed(2)}), median of ${REPS}`,
    value: (per * 1e9) / m.sim.median,
    unit,
    samples: m.sim.xs.map((x) => (per * 1e9) / x),
    baseline: {
      name: `${baseName}: ${ns(m.base)}`,
      value: (per * 1e9) / m.base.median,
      samples: m.base.xs.map((x) => (per * 1e9) / x),
    },
    ratios: m.ratio.xs,
    goal,
  };
  return r;
}

// ---- SIGBUS + handler + retry ----------------------------------------------------------

/** The simulated twin of native/fault-bench.c; ns per fault. */
function simulatedSigbus(): () => number {
  const k = new Kernel({ memoryLimit: 64 * 1024 * 1024 });
  const p = k.spawn("faulter");
  const fd = p.memfdCreate("pool");
  const len = POOL_PAGES * PAGE_SIZE;
  p.ftruncate(fd, len);
  const base = p.mmap(0, len, RW, MAP.MAP_SHARED, fd, 0);
  p.ftruncate(fd, 0);
  p.sigaction("SIGBUS", {
    handler: (info, self) => {
      const page = info.addr - pageOffset(info.addr);
      self.mmap(page, PAGE_SIZE, RW, MAP.MAP_FIXED | MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    },
  });
  const one = new Uint8Array(1);
  return () =>
    nsPerOp(() => {
      p.mmap(base, len, RW, MAP.MAP_FIXED | MAP.MAP_SHARED, fd, 0);
      const before = p.counters.sigbus;
      for (let i = 0; i < POOL_PAGES; i++) p.loadInto(base + i * PAGE_SIZE, one);
      if (p.counters.sigbus - before !== POOL_PAGES || one[0] !== 0)
        throw new Error("simulated SIGBUS bench: not one SIGBUS per page");
      return POOL_PAGES;
    });
}

async function sigbusResult(): Promise<BenchResult> {
  const b = await buildNative("fault-bench");
  const sim = simulatedSigbus();
  if (!b.available) {
    const m = series(Array.from({ length: REPS }, sim));
    console.log(`  (native SIGBUS baseline skipped: ${b.reason})`);
    return {
      name: `SIGBUS beyond EOF + handler mmap + retry (goal <= 1000 ns): ${ns(m)}, median of ${REPS}`,
      value: 1e9 / m.median,
      unit: "faults/s",
    };
  }
  const native = () => {
    const r = spawnSync(b.binary, [String(POOL_PAGES), "1"], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`fault-bench exited ${r.status}: ${r.stderr.trim()}`);
    return (JSON.parse(r.stdout) as { nsPerFault: number[] }).nsPerFault[0];
  };
  const m = repeat(sim, native);
  return result(
    `SIGBUS beyond EOF + handler mmap + retry (goal <= 1000 ns)`,
    "faults/s",
    m,
    "the same on the real kernel (native/fault-bench.c)",
    { minRatio: 8, text: ">= 8x the real kernel" },
  );
}

// ---- first touch of a present page -------------------------------------------------------

/** A process holding a POOL_PAGES memfd whose every page is in the page cache. */
function populatedPool(): { p: Process; fd: number } {
  const k = new Kernel({ memoryLimit: 64 * 1024 * 1024 });
  const p = k.spawn("toucher");
  const fd = p.memfdCreate("pool");
  p.ftruncate(fd, POOL_PAGES * PAGE_SIZE);
  const m = p.mmap(0, POOL_PAGES * PAGE_SIZE, RW, MAP.MAP_SHARED, fd, 0);
  p.fill(m, POOL_PAGES * PAGE_SIZE, 0x5a);
  p.munmap(m, POOL_PAGES * PAGE_SIZE);
  return { p, fd };
}

/**
 * The read faults of a first touch of every page of [m, m+len) on Linux: one per
 * fault_around_bytes window (do_fault_around aligns it on the virtual address; a PTE table's
 * 512 entries are a multiple of it, so no window is split), every page being cached.
 */
function aroundWindows(m: number, len: number): number {
  const win = FAULT_AROUND_PAGES * PAGE_SIZE;
  return Math.floor((m + len - 1) / win) - Math.floor(m / win) + 1;
}

/**
 * ns per first touch of a page: only the touches are timed, not the mmap and munmap around
 * them. As on Linux, one touch in FAULT_AROUND_PAGES faults and maps its cached neighbours.
 */
function simulatedFirstTouch(): () => number {
  const { p, fd } = populatedPool();
  const one = new Uint8Array(1);
  const len = POOL_PAGES * PAGE_SIZE;
  return () => {
    const warm = performance.now() + MIN_MS / 3;
    let ops = 0;
    let spent = 0;
    for (let timed = false; spent < MIN_MS; ) {
      const m = p.mmap(0, len, PROT.PROT_READ, MAP.MAP_SHARED, fd, 0);
      const faults = p.counters.minorFaults;
      const t0 = performance.now();
      for (let i = 0; i < POOL_PAGES; i++) p.loadInto(m + i * PAGE_SIZE, one);
      const t = performance.now() - t0;
      if (p.counters.minorFaults - faults !== aroundWindows(m, len) || one[0] !== 0x5a)
        throw new Error("first-touch bench: not one minor fault per fault-around window");
      p.munmap(m, len);
      if (timed) {
        spent += t;
        ops += POOL_PAGES;
      } else timed = performance.now() > warm;
    }
    return (spent * 1e6) / ops;
  };
}

/** The whole life of a pool mapping: mmap, one touch per page, munmap; ns per pool. */
function simulatedPool(): () => number {
  const { p, fd } = populatedPool();
  const one = new Uint8Array(1);
  const len = POOL_PAGES * PAGE_SIZE;
  return () =>
    nsPerOp(() => {
      const m = p.mmap(0, len, PROT.PROT_READ, MAP.MAP_SHARED, fd, 0);
      for (let i = 0; i < POOL_PAGES; i++) p.loadInto(m + i * PAGE_SIZE, one);
      p.munmap(m, len);
      return 1;
    });
}

/**
 * Plain typed-array copies out of a SharedArrayBuffer, one 4 KiB copy per page, POOL_PAGES
 * per call; ns per `batch` pages (1: one page copy; POOL_PAGES: a whole pool's).
 */
function pageCopies(batch: number): () => number {
  const src = new Uint8Array(new SharedArrayBuffer(POOL_PAGES * PAGE_SIZE)).fill(0x5a);
  const dst = new Uint8Array(PAGE_SIZE);
  return () =>
    nsPerOp(() => {
      for (let o = 0; o < src.length; o += PAGE_SIZE) dst.set(src.subarray(o, o + PAGE_SIZE));
      return POOL_PAGES / batch;
    });
}

// ---- already-faulted read ------------------------------------------------------------------

const READ_SIZE = 8 * 1024 * 1024;

/**
 * A scheduler whose points do nothing but which does not say so (no quietFor): every page of
 * a user access stays a preemption point, as the compositor's are under the seeded scheduler.
 */
const EVERY_PAGE_A_POINT: Scheduler = { point() {}, block: NO_PREEMPTION.block };

function readResults(): BenchResult[] {
  const rig = (scheduler: Scheduler) => {
    const k = new Kernel({ memoryLimit: 64 * 1024 * 1024, scheduler });
    const p = k.spawn("reader");
    const fd = p.memfdCreate("pool");
    p.ftruncate(fd, READ_SIZE);
    const m = p.mmap(0, READ_SIZE, RW, MAP.MAP_SHARED, fd, 0);
    p.fill(m, READ_SIZE, 0x5a); // fault every page in
    return { p, m };
  };
  const quiet = rig(NO_PREEMPTION);
  const paged = rig(EVERY_PAGE_A_POINT);
  const dst = new Uint8Array(READ_SIZE);
  const src = new Uint8Array(new SharedArrayBuffer(READ_SIZE)).fill(0x5a);
  const read = (r: { p: Process; m: number }) => () =>
    nsPerOp(() => {
      r.p.loadInto(r.m, dst);
      return 1;
    });
  const plain = () =>
    nsPerOp(() => {
      dst.set(src);
      return 1;
    });
  const fast = repeat(read(quiet), plain);
  const slow = repeat(read(paged), plain);
  const mib = READ_SIZE / (1024 * 1024);
  const one = (name: string, m: Paired, goal: BenchResult["goal"]) =>
    result(name, "MiB/s", m, "Uint8Array.set from a SharedArrayBuffer", goal, mib);
  return [
    one("read 8 MiB already faulted through a simulated mapping", fast, {
      minRatio: 0.8,
      text: ">= 0.8 of the plain copy",
    }),
    // No goal: the compositor's reads under the seeded scheduler take this path.
    one("the same read with every page a preemption point", slow, undefined),
  ];
}

const suite: BenchSuite = {
  name: "kernel: fault path and user read path",
  async run() {
    const out: BenchResult[] = [];
    out.push(await sigbusResult());
    out.push(
      result(
        "first touch of a present file page, one-byte load (goal <= 300 ns)",
        "touches/s",
        repeat(simulatedFirstTouch(), pageCopies(1)),
        "one 4 KiB typed-array page copy",
        // 300 ns against a page copy that costs ~100-200 ns on this machine.
        undefined,
      ),
    );
    const poolGoal = Number.isNaN(MAIN_POOL_RATIO)
      ? undefined
      : { minRatio: 10 * MAIN_POOL_RATIO, text: `>= 10x main's ${MAIN_POOL_RATIO.toFixed(3)}` };
    out.push(
      result(
        `4096-page pool: mmap + first touch of every page + munmap`,
        "pools/s",
        repeat(simulatedPool(), pageCopies(POOL_PAGES)),
        "4096 typed-array page copies",
        poolGoal,
      ),
    );
    out.push(...readResults());
    return out;
  },
};
export default suite;
