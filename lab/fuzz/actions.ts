/**
 * The fuzzer's vocabulary: what one hostile client does, as a plain JSON list of actions,
 * and the generator that draws such lists from a seed.
 *
 * Actions name the objects they act on by slot: `f` is the client's f-th file (memfd or
 * pipe end, in creation order), `p` its p-th pool, `b` its b-th buffer, `s` its s-th surface,
 * each taken modulo the number created so far when the action runs (an action with no
 * object to act on is skipped). So any sub-list of a program is still a program, and the
 * shrinker may drop any action without repairing the rest. Slots of destroyed objects stay
 * in the list: acting on them is how requests on dead ids happen.
 *
 * Between two actions the client yields (one scheduler step per action), so the seeded
 * scheduler may run any action inside a page of the compositor's read of a buffer; `yield`
 * actions add idle steps and `frame` waits for the compositor's next frame, which is how a
 * program chooses *where* in the compositor's work its next action lands.
 */
import { Rng } from "../rng.ts";

export const PG = 4096;

/** A size argument: bytes, or a size relative to the file or pool it applies to. */
export type SizeArg = number | "file" | "file+page" | "half" | "pool" | "pool+page";

export type RawKind =
  | "unknown-opcode"
  | "dead-id"
  | "destroyed-buffer"
  | "wrong-type"
  | "short-frame"
  | "server-id"
  | "pool-without-fd"
  | "garbage-bytes";

export type Action =
  // ---- files and syscalls on them (the client's own process) --------------------------
  | { k: "memfd"; size: number; sealing: boolean }
  | { k: "pipe" }
  | { k: "truncate"; f: number; size: SizeArg }
  | { k: "punch"; f: number; offset: number; length: number }
  | { k: "fallocate"; f: number; offset: number; length: number }
  | { k: "seal"; f: number; seals: number }
  | { k: "close"; f: number }
  | { k: "dup"; f: number }
  | { k: "draw"; f: number; b: number; frame: number }
  | { k: "fork" }
  | { k: "child-truncate"; f: number; size: SizeArg }
  | { k: "child-exit" }
  // ---- protocol requests ----------------------------------------------------------------
  | { k: "surface" }
  | { k: "create-pool"; f: number; size: SizeArg }
  | {
      k: "create-buffer";
      p: number;
      offset: number;
      width: number;
      height: number;
      stride: number;
      format: number;
    }
  | { k: "resize"; p: number; size: SizeArg }
  | { k: "destroy-pool"; p: number }
  | { k: "destroy-buffer"; b: number }
  | { k: "attach"; s: number; b: number; commit: boolean }
  | { k: "commit"; s: number }
  | { k: "raw"; what: RawKind; n: number }
  /**
   * A well-formed request (`req` picks which, on the client's own objects) with bytes of
   * its encoding replaced (`edits`: [position modulo length, byte]) and `cut` bytes cut
   * off the end: the codec's, the validation's and the dispatch's paths. Only the guided
   * fuzzer's mutations make it (mutate.ts); the blind generator's programs stay as they were.
   */
  | { k: "wire"; req: number; edits: [number, number][]; cut: number }
  | { k: "disconnect" }
  // ---- timing ---------------------------------------------------------------------------
  | { k: "yield"; n: number }
  | { k: "frame"; s: number }
  | { k: "roundtrip" };

export type ActionKind = Action["k"];

export const ACTION_KINDS: readonly ActionKind[] = [
  "memfd",
  "pipe",
  "truncate",
  "punch",
  "fallocate",
  "seal",
  "close",
  "dup",
  "draw",
  "fork",
  "child-truncate",
  "child-exit",
  "surface",
  "create-pool",
  "create-buffer",
  "resize",
  "destroy-pool",
  "destroy-buffer",
  "attach",
  "commit",
  "raw",
  "disconnect",
  "yield",
  "frame",
  "roundtrip",
];

/** Kinds only mutations make (never drawn by the blind generator). */
export const MUTATION_KINDS: readonly ActionKind[] = ["wire"];

/** Requests a `wire` action starts from (behaviour.ts encodes them on live objects). */
export const WIRE_REQUESTS = [
  "wl_shm_pool.create_buffer",
  "wl_surface.attach",
  "wl_surface.commit",
  "wl_shm_pool.resize",
  "wl_surface.damage_buffer",
  "wl_display.sync",
] as const;

export const RAW_KINDS: readonly RawKind[] = [
  "unknown-opcode",
  "dead-id",
  "destroyed-buffer",
  "wrong-type",
  "short-frame",
  "server-id",
  "pool-without-fd",
  "garbage-bytes",
];

/** One fuzz case: everything a run needs, as JSON. */
export interface Program {
  /** One action list per hostile client (the last is the run's "client under test"). */
  clients: Action[][];
}

export interface GenerateOptions {
  /** Most hostile clients (at least 1). */
  maxClients?: number;
  /** Actions per client, roughly. */
  length?: number;
}

/** Sizes of files: page edges, odd sizes, what a 32×32 or 48×48 buffer needs. */
const FILE_SIZES = [0, 1, PG - 1, PG, 2 * PG, 3 * PG + 7, 4 * PG, 9 * PG, 16 * PG];
const SHRINK_SIZES: SizeArg[] = [0, 0, 1, PG - 1, PG, 2 * PG, "half"];
const GROW_SIZES: SizeArg[] = ["file+page", 16 * PG, 9 * PG, "file"];
/** Lies: a pool bigger than its file, half of it, zero, negative, one byte, INT32_MAX. */
const POOL_LIES: SizeArg[] = ["file+page", "half", 0, -1, 1, 0x7fffffff];
const RESIZE_SIZES: SizeArg[] = ["pool+page", "pool+page", 16 * PG, "pool"];
const RESIZE_LIES: SizeArg[] = [PG, 0, -4096, 1];
const DIMS = [1, 8, 16, 32, 48, 48, 64];
const FORMATS = [1, 1, 1, 1, 0, 0, 7, 0x34325258, 0xffffffff];
const SEALS = [0x2, 0x2, 0x4, 0x8, 0x1, 0x6, 0x10];

/** Weights: the truncation race is the point, so files, pools, commits and shrinking dominate. */
const WEIGHTS: [ActionKind, number][] = [
  ["memfd", 3],
  ["pipe", 1],
  ["truncate", 8],
  ["punch", 2],
  ["fallocate", 1],
  ["seal", 2],
  ["close", 1],
  ["dup", 1],
  ["draw", 4],
  ["fork", 3],
  ["child-truncate", 3],
  ["child-exit", 1],
  ["surface", 2],
  ["create-pool", 5],
  ["create-buffer", 5],
  ["resize", 3],
  ["destroy-pool", 1],
  ["destroy-buffer", 1],
  ["attach", 8],
  ["commit", 2],
  ["raw", 1],
  ["disconnect", 1],
  ["yield", 5],
  ["frame", 4],
  ["roundtrip", 1],
];
const TOTAL = WEIGHTS.reduce((s, [, w]) => s + w, 0);

/** Generation-time view of a client: how many of each object exist, and rough sizes. */
interface Sketch {
  /**
   * Probability that a request lies (malformed size, stride, offset, format). Drawn per
   * client: a lie usually ends the connection, so low rates reach deep states (many
   * commits, truncations mid-read) and high rates probe the validation paths.
   */
  lie: number;
  files: number;
  fileSizes: number[];
  pools: number;
  poolSizes: number[];
  buffers: number;
  surfaces: number;
  forked: boolean;
}

function weighted(rng: Rng): ActionKind {
  let r = rng.next() * TOTAL;
  for (const [k, w] of WEIGHTS) {
    r -= w;
    if (r < 0) return k;
  }
  return WEIGHTS[0][0];
}

/**
 * A plausible client's start, so most programs reach the interesting part: a file, a
 * surface, a pool over it, a buffer, pixels, a commit. Each piece is dropped now and then,
 * so programs that skip a step (a pool over nothing, a commit with no buffer) happen too.
 */
function prologue(rng: Rng, sk: Sketch, out: Action[]): void {
  const dim = rng.pick([16, 32, 32, 48]);
  const buffers = rng.int(1, 2);
  const size = dim * dim * 4 * buffers;
  if (rng.chance(0.95)) {
    out.push({ k: "memfd", size, sealing: rng.chance(0.4) });
    sk.files++;
    sk.fileSizes.push(size);
  }
  if (rng.chance(0.9)) {
    out.push({ k: "surface" });
    sk.surfaces++;
  }
  if (rng.chance(0.9)) {
    out.push({ k: "create-pool", f: 0, size: "file" });
    sk.pools++;
    sk.poolSizes.push(size);
  }
  for (let i = 0; i < buffers; i++) {
    if (rng.chance(0.85)) {
      out.push({
        k: "create-buffer",
        p: 0,
        offset: i * dim * dim * 4,
        width: dim,
        height: dim,
        stride: dim * 4,
        format: 1,
      });
      sk.buffers++;
    }
  }
  if (rng.chance(0.9)) out.push({ k: "draw", f: 0, b: 0, frame: 0 });
  if (rng.chance(0.9)) out.push({ k: "attach", s: 0, b: 0, commit: true });
}

function one(rng: Rng, sk: Sketch): Action | undefined {
  const k = weighted(rng);
  const file = () => rng.int(0, Math.max(0, sk.files - 1));
  const pool = () => rng.int(0, Math.max(0, sk.pools - 1));
  switch (k) {
    case "memfd": {
      const size = rng.pick(FILE_SIZES);
      sk.files++;
      sk.fileSizes.push(size);
      return { k, size, sealing: rng.chance(0.5) };
    }
    case "pipe":
      sk.files++;
      sk.fileSizes.push(0);
      return { k };
    case "truncate":
      if (!sk.files) return undefined;
      return {
        k,
        f: file(),
        size: rng.chance(0.65) ? rng.pick(SHRINK_SIZES) : rng.pick(GROW_SIZES),
      };
    case "punch":
      if (!sk.files) return undefined;
      return {
        k,
        f: file(),
        offset: rng.pick([0, 0, PG, 2 * PG, 100]),
        length: rng.pick([PG, 2 * PG, 16 * PG, 10]),
      };
    case "fallocate":
      if (!sk.files) return undefined;
      return { k, f: file(), offset: rng.pick([0, PG]), length: rng.pick([PG, 8 * PG, 16 * PG]) };
    case "seal":
      if (!sk.files) return undefined;
      return { k, f: file(), seals: rng.pick(SEALS) };
    case "close":
    case "dup":
      if (!sk.files) return undefined;
      if (k === "dup") {
        sk.files++;
        sk.fileSizes.push(0);
      }
      return { k, f: file() };
    case "draw":
      if (!sk.files || !sk.buffers) return undefined;
      return { k, f: file(), b: rng.int(0, sk.buffers - 1), frame: rng.int(0, 7) };
    case "fork":
      if (sk.forked) return undefined;
      sk.forked = true;
      return { k };
    case "child-truncate":
      if (!sk.forked || !sk.files) return undefined;
      return { k, f: file(), size: rng.chance(0.7) ? rng.pick(SHRINK_SIZES) : "file+page" };
    case "child-exit":
      return sk.forked ? { k } : undefined;
    case "surface":
      sk.surfaces++;
      return { k };
    case "create-pool": {
      if (!sk.files) return undefined;
      const f = file();
      const size = rng.chance(sk.lie) ? rng.pick(POOL_LIES) : "file";
      sk.pools++;
      sk.poolSizes.push(size === "file" ? (sk.fileSizes[f] ?? PG) : PG);
      return { k, f, size };
    }
    case "create-buffer": {
      if (!sk.pools) return undefined;
      const p = pool();
      const poolSize = sk.poolSizes[p] ?? PG;
      sk.buffers++;
      if (!rng.chance(sk.lie)) {
        // Honest geometry that fits the pool as the sketch knows it.
        const fits = DIMS.filter((d) => d * d * 4 <= poolSize);
        const d = fits.length ? rng.pick(fits) : 1;
        const slots = Math.max(1, Math.floor(poolSize / (d * d * 4)));
        const offset = rng.int(0, slots - 1) * d * d * 4;
        return { k, p, offset, width: d, height: d, stride: d * 4, format: rng.pick([0, 1, 1]) };
      }
      const width = rng.pick(DIMS);
      const height = rng.pick(DIMS);
      const bytes = width * 4;
      const stride = rng.chance(0.5)
        ? bytes
        : rng.pick([width, bytes + 4, bytes * 2, 0, -4, 0x7fffffff, 0x40000000]);
      const offset = rng.chance(0.5)
        ? 0
        : rng.pick([PG, PG - 4, poolSize - stride * height, poolSize, -1, 0x7fffffff, 4]);
      return { k, p, offset, width, height, stride, format: rng.pick(FORMATS) };
    }
    case "resize":
      if (!sk.pools) return undefined;
      return {
        k,
        p: pool(),
        size: rng.chance(sk.lie) ? rng.pick(RESIZE_LIES) : rng.pick(RESIZE_SIZES),
      };
    case "destroy-pool":
      if (!sk.pools) return undefined;
      return { k, p: pool() };
    case "destroy-buffer":
      if (!sk.buffers) return undefined;
      return { k, b: rng.int(0, sk.buffers - 1) };
    case "attach":
      if (!sk.surfaces) return undefined;
      return {
        k,
        s: rng.int(0, sk.surfaces - 1),
        b: sk.buffers && rng.chance(0.92) ? rng.int(0, sk.buffers - 1) : -1,
        commit: rng.chance(0.85),
      };
    case "commit":
      if (!sk.surfaces) return undefined;
      return { k, s: rng.int(0, sk.surfaces - 1) };
    case "raw":
      if (!rng.chance(Math.max(sk.lie, 0.2))) return undefined;
      return { k, what: rng.pick(RAW_KINDS), n: rng.int(0, 255) };
    case "disconnect":
      return { k };
    case "yield":
      return { k, n: rng.pick([1, 1, 2, 3, 5, 8]) };
    case "frame":
      if (!sk.surfaces) return { k: "roundtrip" };
      return { k, s: rng.int(0, sk.surfaces - 1) };
    case "roundtrip":
      return { k };
  }
}

function emptySketch(lie: number): Sketch {
  return {
    lie,
    files: 0,
    fileSizes: [],
    pools: 0,
    poolSizes: [],
    buffers: 0,
    surfaces: 0,
    forked: false,
  };
}

/**
 * One more action that fits what `prefix` created (for the guided fuzzer's insertions):
 * the generator's own weighted draw, from a sketch of the objects the prefix made.
 */
export function drawAction(rng: Rng, prefix: readonly Action[]): Action | undefined {
  const sk = emptySketch(rng.pick([0.03, 0.1, 0.3]));
  for (const a of prefix) {
    if (a.k === "memfd" || a.k === "pipe" || a.k === "dup") {
      sk.files++;
      sk.fileSizes.push(a.k === "memfd" ? a.size : 0);
    } else if (a.k === "create-pool") {
      sk.pools++;
      sk.poolSizes.push(sk.fileSizes[a.f % Math.max(1, sk.files)] ?? PG);
    } else if (a.k === "create-buffer") sk.buffers++;
    else if (a.k === "surface") sk.surfaces++;
    else if (a.k === "fork") sk.forked = true;
  }
  for (let tries = 0; tries < 8; tries++) {
    const a = one(rng, sk);
    if (a) return a;
  }
  return undefined;
}

/** One hostile client's actions. */
export function generateClient(rng: Rng, length: number): Action[] {
  const sk = emptySketch(rng.pick([0.03, 0.1, 0.1, 0.3]));
  const out: Action[] = [];
  prologue(rng, sk, out);
  const n = rng.int(Math.ceil(length / 2), length);
  let guard = 0;
  while (out.length < n && guard++ < n * 20) {
    const a = one(rng, sk);
    if (!a) continue;
    // A disconnect ends the client: only near the end is it worth its place.
    if (a.k === "disconnect" && out.length < n - 3) continue;
    out.push(a);
  }
  return out;
}

/** A program of 1..maxClients hostile clients from `seed`. */
export function generateProgram(seed: number, opts: GenerateOptions = {}): Program {
  const rng = new Rng(seed ^ 0x46757a7a);
  const maxClients = Math.max(1, opts.maxClients ?? 3);
  const n = rng.chance(0.5) ? 1 : rng.int(1, maxClients);
  const clients: Action[][] = [];
  for (let i = 0; i < n; i++) clients.push(generateClient(rng.fork(i), opts.length ?? 24));
  return { clients };
}

/** One line per action, for finding files and `shmlab replay`. */
export function describeAction(a: Action): string {
  const { k, ...rest } = a;
  const args = Object.entries(rest)
    .map(
      ([key, v]) =>
        `${key}=${typeof v === "number" && Math.abs(v) >= 4096 ? `0x${v.toString(16)}` : v}`,
    )
    .join(" ");
  return args ? `${k} ${args}` : k;
}

export function actionCount(p: Program): number {
  return p.clients.reduce((s, c) => s + c.length, 0);
}
