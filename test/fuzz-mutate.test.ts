/**
 * The guided fuzzer's mutations: a child is a pure function of (parent, donor, rng seed);
 * every child is a valid program (known action kinds, bounded); the operators really move
 * arguments to the interesting values, splice other entries' actions in, and reseed.
 */
import { describe, expect, it } from "vitest";
import { ACTION_KINDS, type Action, generateProgram, MUTATION_KINDS } from "../lab/fuzz/actions.ts";
import { CASE_DEFAULTS, type FuzzCase } from "../lab/fuzz/case.ts";
import { caseRng, mutateCase } from "../lab/fuzz/mutate.ts";

const caseOf = (seed: number, clients?: Action[][]): FuzzCase => ({
  ...CASE_DEFAULTS,
  seed,
  policy: "libwayland",
  program: clients ? { clients } : generateProgram(seed),
});

const children = (parent: FuzzCase, donor: FuzzCase, n: number) =>
  Array.from({ length: n }, (_, i) => mutateCase(caseRng(1, i), parent, donor));

describe("fuzz mutations", () => {
  it("a child is a pure function of its parent, donor and seed, and differs from the parent", () => {
    const p = caseOf(3);
    const d = caseOf(4);
    for (let i = 0; i < 50; i++) {
      const a = mutateCase(caseRng(9, i), p, d);
      expect(mutateCase(caseRng(9, i), p, d)).toEqual(a);
      expect(a).not.toEqual(p);
    }
    // The parent is never modified in place.
    expect(p).toEqual(caseOf(3));
    // Different seeds give different children.
    const distinct = new Set(children(p, d, 50).map((c) => JSON.stringify(c)));
    expect(distinct.size).toBeGreaterThan(40);
  });

  it("every child is a valid, bounded program", () => {
    for (let s = 0; s < 20; s++) {
      let c = caseOf(s);
      // Mutations of mutations, as a long run makes them.
      for (let i = 0; i < 30; i++) {
        c = mutateCase(caseRng(s, i), c, caseOf(s + 100));
        expect(c.program.clients.length).toBeGreaterThanOrEqual(1);
        expect(c.program.clients.length).toBeLessThanOrEqual(4);
        for (const l of c.program.clients) {
          expect(l.length).toBeLessThanOrEqual(40 + 8);
          for (const a of l) expect([...ACTION_KINDS, ...MUTATION_KINDS]).toContain(a.k);
        }
      }
    }
  });

  it("values move to the interesting ones: 0, -1, INT32_MAX, page edges, the file's size", () => {
    const p = caseOf(1, [
      [
        { k: "memfd", size: 8192, sealing: false },
        { k: "create-pool", f: 0, size: "file" },
        { k: "resize", p: 0, size: "pool+page" },
        { k: "truncate", f: 0, size: 4096 },
      ],
    ]);
    const sizes = new Set<unknown>();
    for (const c of children(p, p, 600))
      for (const a of c.program.clients.flat())
        if (a.k === "resize" || a.k === "truncate" || a.k === "create-pool") sizes.add(a.size);
    for (const v of [0, -1, 0x7fffffff, 4095, 4097, "file", "file+page", "pool+page"])
      expect(sizes).toContain(v);
  });

  it("retargets: an action comes to name another object of its kind (file, pool, buffer)", () => {
    const p = caseOf(1, [
      [
        { k: "memfd", size: 8192, sealing: false },
        { k: "memfd", size: 8192, sealing: false },
        { k: "create-pool", f: 0, size: "file" },
        { k: "create-pool", f: 0, size: "file" },
        { k: "create-buffer", p: 0, offset: 0, width: 16, height: 16, stride: 64, format: 1 },
        { k: "truncate", f: 0, size: 0 },
      ],
    ]);
    const kids = children(p, p, 3000).map((c) => c.program.clients[0]);
    // The same action list, one slot moved: no other operator changes a slot in place.
    const moved = (k: Action["k"], field: "f" | "p") =>
      kids.some(
        (l) =>
          l.length === 6 &&
          l.every((a, i) => a.k === p.program.clients[0][i].k) &&
          l.some((a) => a.k === k && (a as Record<string, unknown>)[field] === 1),
      );
    expect(moved("create-buffer", "p")).toBe(true);
    expect(moved("truncate", "f")).toBe(true);
    expect(moved("create-pool", "f")).toBe(true);
  });

  it("splices a donor's actions, reseeds, and moves actions across frames", () => {
    const p = caseOf(1, [[{ k: "memfd", size: 4096, sealing: false }]]);
    const d = caseOf(2, [[{ k: "fork" }, { k: "child-exit" }]]);
    const kids = children(p, d, 400);
    expect(kids.some((c) => c.program.clients.flat().some((a) => a.k === "child-exit"))).toBe(true);
    expect(kids.some((c) => c.seed !== p.seed)).toBe(true);
    expect(kids.some((c) => c.program.clients.flat().some((a) => a.k === "frame"))).toBe(true);
  });

  it("changes land where the parent's client stopped, not after it", () => {
    // Distinct actions, so the first difference is where the change landed.
    const long: Action[] = Array.from({ length: 30 }, (_, j) => ({ k: "yield", n: 100 + j }));
    const p = caseOf(1, [long]);
    let before = 0;
    let after = 0;
    for (let i = 0; i < 300; i++) {
      const c = mutateCase(caseRng(5, i), p, p, [3]);
      const l = c.program.clients[0];
      const firstDiff = l.findIndex((a, j) => JSON.stringify(a) !== JSON.stringify(long[j]));
      if (firstDiff < 0) continue;
      if (firstDiff <= 3) before++;
      else after++;
    }
    expect(before).toBeGreaterThan(after * 2);
  });
});
