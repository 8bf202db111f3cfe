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
import { CASE_DEFAULTS, runCase, signature } from "../lab/fuzz/case.ts";

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
