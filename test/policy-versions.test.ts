/**
 * The models of the versions installed here (docs/real-compositors.md): each rule that
 * settled a disagreement with the real compositor is pinned, beside the policy it differs
 * from, so that removing the rule turns this red.
 */
import { describe, expect, it } from "vitest";
import { registerBehaviour } from "../client/behaviours/index.ts";
import { defaultPolicies } from "../lab/compare.ts";
import { makeSpec, runOne } from "../lab/run.ts";
import { destroyThenGrow } from "./fixtures/behaviours/destroy-then-grow.ts";

const run = (policy: string, behaviour: string) =>
  runOne(makeSpec({ policy, behaviour, seed: 1, frames: 8, honest: 1 }));

describe("weston-10: the pixman image is made from the data pointer at commit", () => {
  it("a pool resize between commit and repaint moves the mapping: the repaint dies of SIGSEGV", () => {
    const r = run("weston-10", "resize-during-read");
    expect(r.verdict).toBe("died");
    expect(r.compositor.death?.signal).toBe("SIGSEGV");
  });
  it("libwayland 1.21 alone reads at the new address and lives", () => {
    expect(run("libwayland-1.21", "resize-during-read").verdict).not.toBe("died");
  });
});

describe("wlroots-0.15: a destroyed wl_buffer still on screen is read without begin_access", () => {
  it("destroy-buffer-then-shrink kills it with SIGBUS", () => {
    const r = run("wlroots-0.15", "destroy-buffer-then-shrink");
    expect(r.verdict).toBe("died");
    expect(r.compositor.death?.signal).toBe("SIGBUS");
  });
  it("libwayland 1.21 alone drops the destroyed buffer and nothing happens", () => {
    expect(run("libwayland-1.21", "destroy-buffer-then-shrink").verdict).toBe("undetected");
  });
});

describe("wlroots-0.15: the destroyed buffer's wl_shm_buffer_ref_pool defers the pool's resize", () => {
  // wayland 1.21 wl_shm_buffer_ref_pool: "buffer->pool->external_refcount++"; shm_pool_resize:
  // "if (pool->external_refcount == 0) shm_pool_finish_resize(pool)". Undeferred, the grow
  // moves the mapping (mremap MREMAP_MAYMOVE) and the repaint reads saved_data, the old
  // address: SIGSEGV on a client that did nothing wrong.
  registerBehaviour(destroyThenGrow);
  it("growing file and pool after destroying the buffer on screen is harmless", () => {
    const r = run("wlroots-0.15", destroyThenGrow.name);
    expect(r.compositor.death).toBeNull();
    expect(r.verdict).toBe("ok");
  });
});

describe("release only on replace (weston 10 and wlroots 0.15 read the client's memory at repaint)", () => {
  it("a single-buffered client waiting for its release never gets to truncate", () => {
    const held = run("weston-10", "memory-pressure");
    expect(held.verdict).toBe("undetected");
    const attacker = held.clients[held.clients.length - 1];
    expect(attacker.releases).toBe(0);
    // Released after each read, the same client truncates and is told.
    expect(run("libwayland-1.21", "memory-pressure").verdict).toBe("error-to-client");
  });
  it("an honest double-buffered client still gets its releases and every frame", () => {
    const r = run("wlroots-0.15", "honest-renderer");
    expect(r.verdict).toBe("ok");
    expect(r.clients.every((c) => c.releases > 0)).toBe(true);
  });
});

describe("versioned policies stay out of the default comparison", () => {
  it("they run where their version is installed, not in `shmlab compare`", () => {
    for (const p of ["libwayland-1.21", "weston-10", "wlroots-0.15", "kwin-5.27", "hyprland-0.45"])
      expect(defaultPolicies()).not.toContain(p);
    expect(defaultPolicies()).toContain("libwayland");
  });
});

describe("hyprland-0.45 / hyprland: PR #8572's fstat size checks (issues #7518, #8570)", () => {
  it("before: a pool larger than its file is read at create_buffer and kills it (SIGBUS)", () => {
    const r = run("hyprland-0.45", "pool-larger-than-file");
    expect(r.verdict).toBe("died");
    expect(r.compositor.death?.signal).toBe("SIGBUS");
  });
  it("after: create_pool refuses it with error -1 (4294967295 on the wire)", () => {
    const r = run("hyprland", "pool-larger-than-file");
    expect(r.verdict).toBe("error-to-client");
    const attacker = r.clients[r.clients.length - 1];
    expect(attacker.protocolError?.code).toBe(4294967295);
    // Named as the implementation wrote it, not as the uint32 on the wire.
    expect(attacker.protocolError?.error).toBe("wl_shm#-1");
    expect(attacker.protocolError?.message).toContain("not big enough");
  });
  it("neither has a SIGBUS handler: a truncation after create_pool kills both", () => {
    for (const p of ["hyprland-0.45", "hyprland"])
      expect(run(p, "truncate-after-commit").verdict, p).toBe("died");
  });
  it("the texture made at create_buffer reads a stride lie past the mapping (SIGSEGV)", () => {
    const r = run("hyprland", "stride-overflow");
    expect(r.verdict).toBe("died");
    expect(r.compositor.death?.signal).toBe("SIGSEGV");
  });
});

describe("kwin-5.27 / kwin: libwayland's wl_shm before KWin's own", () => {
  it("5.27 tells the truncating client (invalid_fd); KWin 6 shows zeros and tells nothing", () => {
    expect(run("kwin-5.27", "truncate-after-commit").verdict).toBe("error-to-client");
    expect(run("kwin", "truncate-after-commit").verdict).toBe("tolerated");
  });
  it("both upload damage only: a truncation outside the damage is never read", () => {
    expect(run("kwin-5.27", "truncate-outside-damage").verdict).toBe("undetected");
  });
  it("5.27 reads a destroyed buffer's savedData outside any access and dies; KWin 6 reads it inside one", () => {
    // buffer_destroy_callback keeps savedData; ShmClientBuffer::data() returns it with no
    // wl_shm_buffer_begin_access, so libwayland's handler re-raises (seen on 5.27.5).
    const r = run("kwin-5.27", "destroy-buffer-then-shrink");
    expect(r.verdict).toBe("died");
    expect(r.compositor.death?.signal).toBe("SIGBUS");
    expect(run("kwin", "destroy-buffer-then-shrink").verdict).toBe("tolerated");
  });
});

describe("read moments of the installed versions (fuzz seeds 100 and 102 on sway 1.7)", () => {
  it("wlroots-0.15 and weston-10 re-read a shown buffer at later repaints", () => {
    for (const p of ["wlroots-0.15", "weston-10"])
      expect(run(p, "shown-then-truncated").verdict, p).toBe("error-to-client");
  });
});
