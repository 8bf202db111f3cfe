/**
 * The invariants are not vacuous: a policy that breaks its own promise is caught. Two user
 * policies built from libwayland: one that never tells the client after a fault while its
 * clientReceives still names wl_shm.invalid_fd, one that tells it while its clientReceives
 * says "nothing". The same six actions make the compositor take a SIGBUS in both.
 */
import { describe, expect, it } from "vitest";
import { libwayland } from "../compositor/policies/libwayland.ts";
import type { Policy } from "../compositor/policy.ts";
import type { Action } from "../lab/fuzz/actions.ts";
import type { ExecState } from "../lab/fuzz/behaviour.ts";
import { CASE_DEFAULTS, runCase, signature } from "../lab/fuzz/case.ts";
import { Checker, InvariantViolation, promiseOf } from "../lab/fuzz/invariants.ts";
import type { RunView } from "../lab/run.ts";

const TRUNCATE_COMMITTED: Action[] = [
  { k: "memfd", size: 4 * 4096, sealing: false },
  { k: "surface" },
  { k: "create-pool", f: 0, size: "file" },
  { k: "create-buffer", p: 0, offset: 0, width: 32, height: 32, stride: 128, format: 1 },
  { k: "attach", s: 0, b: 0, commit: true },
  { k: "truncate", f: 0, size: 0 },
];

const run = (policy: Policy) =>
  runCase(
    { ...CASE_DEFAULTS, seed: 3, policy: policy.name, program: { clients: [TRUNCATE_COMMITTED] } },
    policy,
  );

describe("fuzz invariants catch a policy breaking its promise", () => {
  it("libwayland itself keeps it: the fault is handled and the client told", () => {
    const r = run(libwayland);
    expect(r.failure).toBeNull();
    expect(r.record!.cost.signals).toBeGreaterThan(0);
    expect(r.record!.clients.at(-1)!.protocolError?.error).toBe("wl_shm.invalid_fd");
  });

  it("promises wl_shm.invalid_fd, tolerates silently: hostile-promise", () => {
    const silent: Policy = {
      ...libwayland,
      name: "libwayland-silent",
      create(proc, env) {
        const inst = libwayland.create(proc, env);
        return {
          ...inst,
          endAccess: (a) => {
            inst.endAccess(a);
            return undefined;
          },
        };
      },
    };
    const r = run(silent);
    expect(r.failure && signature(r.failure)).toBe(
      "hostile-promise @ fault tolerated silently (promised wl_shm.invalid_fd)",
    );
  });

  it("promises nothing, sends an error: hostile-promise", () => {
    const loud: Policy = {
      ...libwayland,
      name: "libwayland-loud",
      clientReceives: "nothing: zeros",
    };
    const r = run(loud);
    expect(r.failure && signature(r.failure)).toBe(
      "hostile-promise @ error sent where nothing is promised",
    );
  });
});

describe("promiseOf reads the policy's clientReceives", () => {
  const promise = (clientReceives: string) =>
    promiseOf({ ...libwayland, clientReceives } as Policy);

  it("names a wl_shm error with its protocol code (wayland.xml: invalid_format 0, invalid_stride 1, invalid_fd 2)", () => {
    expect(promise("wl_shm.invalid_fd on the wl_buffer").faultError).toEqual({
      name: "wl_shm.invalid_fd",
      code: 2,
    });
    expect(promise("a wl_shm.invalid_stride error").faultError).toEqual({
      name: "wl_shm.invalid_stride",
      code: 1,
    });
    expect(promise("wl_shm.no_such_error").faultError).toBeNull();
  });

  it("'nothing' at the start, as a word, is the silent promise; an error named is not silent", () => {
    expect(promise("nothing: the fault is hidden").silent).toBe(true);
    expect(promise("  Nothing at all").silent).toBe(true);
    expect(promise("nothingness").silent).toBe(false);
    expect(promise("it gets nothing").silent).toBe(false);
    expect(promise("nothing but wl_shm.invalid_fd").silent).toBe(false);
  });

  it("'the compositor dies' in any case is a death it may die; the text is kept", () => {
    const p = promise("The Compositor Dies of SIGBUS");
    expect(p.compositorMayDie).toBe(true);
    expect(p.text).toBe("The Compositor Dies of SIGBUS");
    expect(promise("nothing").compositorMayDie).toBe(false);
  });
});

describe("memory-bound: frames in use against what the clients could account for", () => {
  // 512 pages for the compositor, 64 per honest client, twice the fuzz clients' budgets.
  const view = (inUse: number, honest: number) =>
    ({
      frame: 4,
      kernel: { frames: { inUse } },
      clients: Array.from({ length: honest + 1 }, (_, i) => ({ honest: i < honest })),
    }) as unknown as RunView;
  const checker = () =>
    new Checker(
      promiseOf(libwayland),
      1,
      new Map([["c", { budgetBytes: 10 * 4096 } as ExecState]]),
    );

  /** The eighth action checks memory; what it throws, if anything. */
  const eighthAction = (v: RunView): unknown => {
    const c = checker();
    for (let i = 1; i < 8; i++) c.afterAction(v);
    try {
      c.afterAction(v);
    } catch (e) {
      return e;
    }
    return undefined;
  };

  it("holds at the bound and breaks one frame past it", () => {
    const limit = 512 + 2 * 64 + 20;
    expect(eighthAction(view(limit, 2))).toBeUndefined();
    const caught = eighthAction(view(limit + 1, 2));
    expect(caught).toBeInstanceOf(InvariantViolation);
    expect((caught as InvariantViolation).invariant).toBe("memory-bound");
    expect((caught as InvariantViolation).place).toBe("frames in use");
    expect((caught as InvariantViolation).frame).toBe(4);
  });

  it("between frames it is checked on every 8th action only", () => {
    const c = checker();
    const over = view(10_000, 0);
    for (let i = 1; i < 8; i++) c.afterAction(over);
    expect(() => c.afterAction(over)).toThrow(InvariantViolation);
  });
});
