/**
 * The fuzzer's pieces: programs are a pure function of the seed and cover every action
 * kind; a case is a pure function of its JSON (same digest twice); the action-list
 * behaviour runs every kind; the policy promise is read off the policy's own text.
 */
import { describe, expect, it } from "vitest";
import { getPolicy, policyNames } from "../compositor/policies/index.ts";
import { ACTION_KINDS, type Action, generateProgram } from "../lab/fuzz/actions.ts";
import { CASE_DEFAULTS, type FuzzCase, runCase } from "../lab/fuzz/case.ts";
import { promiseOf } from "../lab/fuzz/invariants.ts";
import { SHM_ERROR } from "../protocol/schema.ts";

const caseOf = (seed: number, policy: string, clients?: Action[][]): FuzzCase => ({
  ...CASE_DEFAULTS,
  seed,
  policy,
  program: clients ? { clients } : generateProgram(seed),
});

describe("fuzz programs and cases", () => {
  it("a program is a pure function of its seed, and seeds cover every action kind", () => {
    expect(generateProgram(7)).toEqual(generateProgram(7));
    expect(generateProgram(7)).not.toEqual(generateProgram(8));
    const seen = new Set<string>();
    for (let s = 0; s < 200; s++)
      for (const l of generateProgram(s).clients) for (const a of l) seen.add(a.k);
    expect([...seen].sort()).toEqual([...ACTION_KINDS].sort());
    // Several hostile clients at once happen.
    expect(
      Array.from({ length: 50 }, (_, s) => generateProgram(s).clients.length).some((n) => n > 1),
    ).toBe(true);
  });

  it("a case replays to the same digest, and any sub-list of actions is still a case", () => {
    const p = getPolicy("libwayland");
    const a = runCase(caseOf(3, "libwayland"), p);
    const b = runCase(caseOf(3, "libwayland"), p);
    expect(a.digest).toBe(b.digest);
    const prog = generateProgram(3);
    const cut = prog.clients.map((l) => l.filter((_, i) => i % 2 === 1));
    const c = runCase(caseOf(3, "libwayland", cut), p);
    expect(c.failure).toBeNull();
  });

  it("every action kind runs (hostile requests, syscalls, timing) without the executor throwing", () => {
    const every: Action[] = [
      { k: "memfd", size: 4 * 4096, sealing: true },
      { k: "surface" },
      { k: "create-pool", f: 0, size: "file" },
      { k: "create-buffer", p: 0, offset: 0, width: 32, height: 32, stride: 128, format: 1 },
      { k: "draw", f: 0, b: 0, frame: 1 },
      { k: "attach", s: 0, b: 0, commit: true },
      { k: "frame", s: 0 },
      { k: "yield", n: 3 },
      { k: "roundtrip" },
      { k: "dup", f: 0 },
      { k: "pipe" },
      { k: "fork" },
      { k: "child-truncate", f: 0, size: "file+page" },
      { k: "child-exit" },
      { k: "punch", f: 0, offset: 4096, length: 4096 },
      { k: "fallocate", f: 0, offset: 0, length: 8192 },
      { k: "seal", f: 0, seals: 0x4 },
      { k: "truncate", f: 0, size: "file+page" },
      { k: "resize", p: 0, size: "pool+page" },
      { k: "commit", s: 0 },
      { k: "destroy-buffer", b: 0 },
      { k: "destroy-pool", p: 0 },
      { k: "close", f: 1 },
      { k: "raw", what: "unknown-opcode", n: 1 },
      { k: "disconnect" },
    ];
    expect(new Set(every.map((a) => a.k)).size).toBe(ACTION_KINDS.length);
    const r = runCase(caseOf(11, "libwayland", [every]), getPolicy("libwayland"));
    expect(r.failure).toBeNull();
    const results = r.actions[0].results;
    expect(r.kinds.length).toBeGreaterThanOrEqual(ACTION_KINDS.length - 1);
    for (const x of results) expect(x.result, `${x.i} ${x.k}`).not.toMatch(/^refused locally/);
  });

  it("the promise read off each policy's clientReceives is what its namesake does after a fault", () => {
    // What each implementation does to a client whose pool faulted (docs/policy-sources.md;
    // LINUX.md rules 2 and 16 for the ones that die). Kept here, independent of promiseOf's
    // parsing, so that a parser that misreads a text is caught.
    const DIES = ["none", "userfaultfd", "populate"];
    const TELLS_INVALID_FD = ["libwayland", "smithay", "copy-pread", "seals-required"];
    const SILENT = [
      "wlroots",
      "kwin",
      "xorg-mit-shm",
      "map-nofault",
      "zero-beyond-eof",
      "droppable-cache",
    ];
    // The installed versions' models (docs/real-compositors.md): libwayland's error, and a
    // death their real namesakes showed (weston 10: SIGSEGV after a resize; sway 1.7:
    // SIGBUS on a destroyed buffer still on screen; kwin_wayland 5.27.5: SIGBUS on a
    // destroyed buffer's savedData).
    TELLS_INVALID_FD.push("libwayland-1.21", "weston-10", "wlroots-0.15", "kwin-5.27");
    DIES.push("weston-10", "wlroots-0.15", "kwin-5.27");
    // Hyprland has no handler (issue #7518), before and after PR #8572.
    DIES.push("hyprland", "hyprland-0.45");
    // The constructs (compositor/policies/own-handler.ts, render-thread.ts): libwayland's
    // error until the compositor's own handler is on top, then death; a render-thread fault
    // under per-thread state dies, under wlroots' process-wide list shows zeros.
    TELLS_INVALID_FD.push("libwayland-own-handler", "libwayland-chained-handler");
    DIES.push("libwayland-own-handler", "render-thread-libwayland");
    SILENT.push("render-thread-wlroots");
    // libwayland >= 1.24 keeping destroyed buffers: invalid_fd while the wl_buffer lives
    // (once it is gone, wl_display.implementation: test/policy-libwayland-kept-buffer.test.ts).
    TELLS_INVALID_FD.push("libwayland-kept-buffer");
    expect([...new Set([...DIES, ...TELLS_INVALID_FD, ...SILENT])].sort()).toEqual(
      [...policyNames()].sort(),
    );
    for (const name of policyNames()) {
      const pr = promiseOf(getPolicy(name));
      expect(pr.text).toBe(getPolicy(name).clientReceives);
      expect(pr.compositorMayDie, name).toBe(DIES.includes(name));
      expect(pr.faultError, name).toEqual(
        TELLS_INVALID_FD.includes(name)
          ? { name: "wl_shm.invalid_fd", code: SHM_ERROR.invalid_fd }
          : null,
      );
      // A policy that dies tells nothing either: "nothing: the compositor dies".
      expect(pr.silent, name).toBe(!TELLS_INVALID_FD.includes(name));
    }
  });
});
