/**
 * Mutations of fuzz cases, for the guided fuzzer: the way libFuzzer and AFL++ make new
 * inputs from kept ones, on this fuzzer's structure (a list of actions per hostile client,
 * a run seed that decides the interleaving).
 *
 * Every operator returns a valid case: actions address objects by slot (actions.ts), so any
 * insertion, deletion or reordering is still a program. A case's mutations come from one
 * Rng, so the same parent, donor and seed give the same child (test/fuzz-mutate.test.ts).
 *
 * Operators (one to sixteen stacked per child, AFL's "havoc"):
 *   insert      a fresh action, drawn by the generator for what the prefix created, or
 *               now and then a `wire` action (a real request with bytes replaced or cut)
 *   delete      one action or a run of them
 *   duplicate   an action or a run repeated in place (a second truncate, a second commit)
 *   swap        two actions exchanged
 *   splice      a run of actions from another client, of this case or of another entry
 *   client      a whole client taken from another entry, or dropped
 *   retarget    an action pointed at another object of its kind (another file, pool,
 *               buffer or surface slot), as syzkaller mutates a resource argument to
 *               another resource of its type: every other operator keeps an action's
 *               slots, so after an insertion shifts them, the action names a neighbour of
 *               what it named, and nothing moved it back (a buffer made in the second of two
 *               pools, a truncation of the file under another pool)
 *   value       an argument moved to an interesting value: page edges, 0, -1, INT32_MAX,
 *               the file's size, a page past it, half, the pool's size and a page past it;
 *               a `wire` action's bytes (msgpack markers, lengths, extremes), request, cut
 *   frame       an action moved across a frame boundary (a `frame`/`yield` inserted before
 *               it or removed), so it lands in another frame or inside another read
 *   reseed      the run's seed changed: the same program under another interleaving (where
 *               the scheduler preempts the compositor's read)
 */
import { Rng } from "../rng.ts";
import { type Action, drawAction, PG, type SizeArg } from "./actions.ts";
import type { FuzzCase } from "./case.ts";

export const MUTATORS = [
  "insert",
  "delete",
  "duplicate",
  "swap",
  "splice",
  "client",
  "retarget",
  "value",
  "frame",
  "reseed",
] as const;
export type Mutator = (typeof MUTATORS)[number];

const WEIGHTS: Record<Mutator, number> = {
  insert: 5,
  delete: 3,
  duplicate: 2,
  swap: 2,
  splice: 2,
  client: 1,
  retarget: 2,
  value: 5,
  frame: 3,
  reseed: 2,
};
const TOTAL = MUTATORS.reduce((s, m) => s + WEIGHTS[m], 0);

const INT32_MAX = 0x7fffffff;
/** Sizes worth trying: page edges, nothing, negative, huge, and relative to the file/pool. */
const SIZES: SizeArg[] = [
  0,
  1,
  -1,
  PG - 1,
  PG,
  PG + 1,
  2 * PG,
  INT32_MAX,
  "file",
  "file+page",
  "half",
  "pool",
  "pool+page",
];
const NUMBERS = [0, 1, -1, 4, PG - 4, PG - 1, PG, PG + 1, 2 * PG, 16 * PG, INT32_MAX, -PG];
/**
 * File sizes stay within what the blind generator uses (a 2 GiB memfd is a valid lie to tell
 * the compositor as a pool size, but a file that big only makes every case slow, under
 * populate-style policies most of all).
 */
const FILE_SIZES = [0, 1, PG - 1, PG, PG + 1, 2 * PG, 9 * PG, 16 * PG];
const FILE_SIZE_ARGS: SizeArg[] = [...FILE_SIZES, "file", "file+page", "half", "pool", "pool+page"];
const DIMS = [0, 1, 16, 32, 48, 64, 4096, 0x10000];
const SEALS = [0x1, 0x2, 0x4, 0x6, 0x8, 0x10, 0xf];
/** The fields that name an object by slot (actions.ts): file, pool, buffer, surface. */
const SLOTS = ["f", "p", "b", "s"] as const;
type Slot = (typeof SLOTS)[number];
/** Clients per case, at most (the generator's default). */
const MAX_CLIENTS = 4;
/** Actions per client, at most: a case stays a few milliseconds. */
const MAX_ACTIONS = 40;

function pickMutator(rng: Rng): Mutator {
  let r = rng.next() * TOTAL;
  for (const m of MUTATORS) {
    r -= WEIGHTS[m];
    if (r < 0) return m;
  }
  return "value";
}

function clone(c: FuzzCase): FuzzCase {
  return { ...c, program: { clients: c.program.clients.map((l) => l.map((a) => ({ ...a }))) } };
}

/** A new value for one numeric or size argument of `a` (or `a` unchanged if it has none). */
function revalue(rng: Rng, a: Action): Action {
  switch (a.k) {
    case "memfd":
      return rng.chance(0.3) ? { ...a, sealing: !a.sealing } : { ...a, size: rng.pick(FILE_SIZES) };
    case "truncate":
    case "child-truncate":
      return { ...a, size: rng.pick(FILE_SIZE_ARGS) };
    case "create-pool":
    case "resize":
      return { ...a, size: rng.pick(SIZES) };
    case "punch":
      return rng.chance(0.5)
        ? { ...a, offset: rng.pick(NUMBERS) }
        : { ...a, length: rng.pick(NUMBERS) };
    case "fallocate":
      return rng.chance(0.5)
        ? { ...a, offset: rng.pick(FILE_SIZES) }
        : { ...a, length: rng.pick(FILE_SIZES) };
    case "seal":
      return { ...a, seals: rng.pick(SEALS) };
    case "create-buffer": {
      switch (rng.int(0, 4)) {
        case 0:
          return { ...a, offset: rng.pick(NUMBERS) };
        case 1:
          return { ...a, width: rng.pick(DIMS) };
        case 2:
          return { ...a, height: rng.pick(DIMS) };
        case 3:
          // A row off by a pixel; the width in pixels, the least stride libwayland's
          // shm_pool_create_buffer accepts (it checks `stride < width`, not width * 4);
          // or an interesting number.
          return {
            ...a,
            stride: rng.pick([a.width * 4 + rng.pick([-4, 4]), a.width, rng.pick(NUMBERS)]),
          };
        default:
          return { ...a, format: rng.pick([0, 1, 7, 0x34325258, 0xffffffff]) };
      }
    }
    case "attach":
      return rng.chance(0.5)
        ? { ...a, commit: !a.commit }
        : { ...a, b: rng.chance(0.2) ? -1 : rng.int(0, 3) };
    case "draw":
      return { ...a, frame: rng.int(0, 7) };
    case "yield":
      return { ...a, n: rng.pick([1, 2, 3, 8, 16]) };
    case "raw":
      return { ...a, n: rng.int(0, 255) };
    case "wire":
      return rng.chance(0.6)
        ? { ...a, edits: [...a.edits, wireEdit(rng)].slice(-16) }
        : rng.chance(0.5)
          ? { ...a, req: rng.int(0, 255) }
          : { ...a, cut: rng.chance(0.5) ? 0 : rng.int(1, 8) };
    default:
      return a;
  }
}

/** Bytes that mean something to msgpack: type markers, lengths, extremes. */
const WIRE_BYTES = [
  0x00, 0x01, 0x7f, 0x80, 0x90, 0x93, 0x9f, 0xa0, 0xc0, 0xc1, 0xc2, 0xcc, 0xcd, 0xce, 0xcf, 0xd0,
  0xd2, 0xd3, 0xdc, 0xdd, 0xe0, 0xff,
];

function wireEdit(rng: Rng): [number, number] {
  return [rng.int(0, 31), rng.chance(0.7) ? rng.pick(WIRE_BYTES) : rng.int(0, 255)];
}

/** A fresh `wire` action: a real request with one to three bytes replaced. */
export function wireAction(rng: Rng): Action {
  const edits = Array.from({ length: rng.int(1, 3) }, () => wireEdit(rng));
  return { k: "wire", req: rng.int(0, 255), edits, cut: rng.chance(0.2) ? rng.int(1, 8) : 0 };
}

/** Applies one mutator to `c` in place; false when it could not apply (nothing changed). */
function apply(
  m: Mutator,
  rng: Rng,
  c: FuzzCase,
  donor: FuzzCase | undefined,
  executed: readonly number[] | undefined,
): boolean {
  const clients = c.program.clients;
  if (!clients.length) clients.push([]);
  const ci = rng.int(0, clients.length - 1);
  const list = clients[ci];
  // Where the parent's client stopped (disconnected, killed): a change after that point
  // changes nothing, so most changes land at or before it.
  const ran = executed?.[ci];
  const reach = (len: number) =>
    ran !== undefined && ran < len && rng.chance(0.8) ? Math.max(0, ran) : len;
  const at = () => rng.int(0, reach(list.length));
  const idx = () => rng.int(0, Math.max(0, reach(list.length - 1)));
  switch (m) {
    case "insert": {
      if (list.length >= MAX_ACTIONS) return false;
      const i = at();
      // The wire's own kind comes only from here: blind programs never contain it.
      const a = rng.chance(0.12) ? wireAction(rng) : drawAction(rng, list.slice(0, i));
      if (!a) return false;
      list.splice(i, 0, a);
      return true;
    }
    case "delete": {
      if (!list.length) return false;
      const i = idx();
      list.splice(i, rng.chance(0.7) ? 1 : rng.int(1, Math.max(1, list.length - i)));
      return true;
    }
    case "duplicate": {
      if (!list.length || list.length >= MAX_ACTIONS) return false;
      const i = idx();
      const n = rng.chance(0.7) ? 1 : rng.int(1, Math.min(4, list.length - i));
      list.splice(i + n, 0, ...list.slice(i, i + n).map((a) => ({ ...a })));
      return true;
    }
    case "swap": {
      if (list.length < 2) return false;
      const i = idx();
      const j = idx();
      if (i === j) return false;
      [list[i], list[j]] = [list[j], list[i]];
      return true;
    }
    case "splice": {
      const from = donor && rng.chance(0.6) ? donor.program.clients : clients;
      const src = rng.pick(from.length ? from : [[]]);
      if (!src.length || list.length >= MAX_ACTIONS) return false;
      const s = rng.int(0, src.length - 1);
      const n = rng.int(1, Math.min(8, src.length - s));
      list.splice(at(), 0, ...src.slice(s, s + n).map((a) => ({ ...a })));
      return true;
    }
    case "client": {
      if (donor?.program.clients.length && (clients.length < 2 || rng.chance(0.6))) {
        if (clients.length >= MAX_CLIENTS) return false;
        const src = rng.pick(donor.program.clients);
        clients.splice(
          rng.int(0, clients.length),
          0,
          src.map((a) => ({ ...a })),
        );
        return true;
      }
      if (clients.length < 2) return false;
      clients.splice(ci, 1);
      return true;
    }
    case "retarget": {
      if (!list.length) return false;
      const i = idx();
      const a = list[i] as Action & Partial<Record<Slot, number>>;
      const keys = SLOTS.filter((k) => typeof a[k] === "number" && (a[k] as number) >= 0);
      if (!keys.length) return false;
      const key = rng.pick(keys);
      const now = a[key] as number;
      // The next or previous object, or any of the first few (slots are taken modulo what
      // exists when the action runs, so every number names something).
      const next = rng.chance(0.5) ? now + rng.pick([1, -1]) : rng.int(0, 3);
      if (next < 0 || next === now) return false;
      list[i] = { ...a, [key]: next } as Action;
      return true;
    }
    case "value": {
      if (!list.length) return false;
      const i = idx();
      const next = revalue(rng, list[i]);
      if (next === list[i]) return false;
      list[i] = next;
      return true;
    }
    case "frame": {
      if (!list.length) return false;
      const i = idx();
      const a = list[i];
      if ((a.k === "frame" || a.k === "yield") && rng.chance(0.5)) {
        list.splice(i, 1);
        return true;
      }
      if (list.length >= MAX_ACTIONS) return false;
      list.splice(
        i,
        0,
        rng.chance(0.5) ? { k: "frame", s: 0 } : { k: "yield", n: rng.pick([1, 1, 2, 3, 5]) },
      );
      return true;
    }
    case "reseed":
      c.seed = rng.u32();
      return true;
  }
}

/**
 * A child of `parent`: one to sixteen stacked mutations drawn from `rng` (the donor is another
 * corpus entry, for splicing; `executed`: how many actions of each client the parent's run
 * performed). Never returns the parent unchanged.
 */
export function mutateCase(
  rng: Rng,
  parent: FuzzCase,
  donor?: FuzzCase,
  executed?: readonly number[],
): FuzzCase {
  const c = clone(parent);
  const n = 1 << rng.int(0, 4);
  let changed = 0;
  for (let tries = 0; changed < n && tries < n * 4; tries++) {
    // Client-level changes shift indices: the parent's stopping points no longer apply.
    const m = pickMutator(rng);
    const ex = c.program.clients.length === parent.program.clients.length ? executed : undefined;
    if (apply(m, rng, c, donor, ex)) changed++;
  }
  // Stacked changes can cancel out (a swap of equal actions, a value drawn again): then the
  // child differs by its interleaving.
  if (!changed || JSON.stringify(c.program) === JSON.stringify(parent.program))
    c.seed = (c.seed + 1) >>> 0;
  return c;
}

/** A seed for case `i` of a run seeded `seed` (its own stream, whatever else was drawn). */
export function caseRng(seed: number, i: number): Rng {
  return new Rng((seed ^ Math.imul(i + 1, 0x9e3779b1) ^ 0x67756964) >>> 0);
}
