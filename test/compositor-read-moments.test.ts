/**
 * When and how much the compositor reads (policy.ts ReadRules): at commit, at the next
 * frame, at every repaint; whole buffers or damaged rectangles only; destroyed buffers
 * dropped or still read; frame callbacks only for surfaces with contents. Each rule is
 * pinned against a policy that differs from it, so removing the rule turns a test red.
 */
import { describe, expect, it } from "vitest";
import { Compositor } from "../compositor/compositor.ts";
import { MAX_DAMAGE_RECTS } from "../compositor/output.ts";
import { getPolicy } from "../compositor/policies/index.ts";
import type { Policy } from "../compositor/policy.ts";
import { patternPixel, settle, TestClient } from "../compositor/testing.ts";
import { NEW_ID } from "../protocol/client.ts";

const W = 64;
const H = 64;
const BUF = W * H * 4; // 16 KiB: four pages per buffer

/** Two buffers of W×H in one pool, and a surface. */
async function twoBuffers(policy: string | Policy) {
  const comp = new Compositor({ policy });
  const c = await TestClient.connect(comp);
  const fd = c.memfd(2 * BUF, { width: W });
  const pool = c.createPool(fd, 2 * BUF);
  const a = c.createBuffer(pool, 0, W, H, W * 4);
  const b = c.createBuffer(pool, BUF, W, H, W * 4);
  const surface = c.surface();
  return { comp, c, fd, pool, a, b, surface };
}

describe("frame callbacks wait for contents (fuzz seed 100 on sway 1.7)", () => {
  it("a bare surface's callback is not done until it has a buffer", async () => {
    const { comp, c, a, surface } = await twoBuffers("wlroots-0.15");
    let done = 0;
    const cb = c.client.request(surface, "frame", [NEW_ID]);
    c.client.listen(cb, () => {
      done++;
    });
    c.client.request(surface, "commit");
    await settle();
    comp.frame();
    comp.frame();
    await settle();
    expect(done).toBe(0);
    c.show(surface, a, W, H);
    await settle();
    comp.frame();
    await settle();
    expect(done).toBe(1);
    expect(c.framesDone).toBe(1);
  });
});

describe("frame callbacks on X11 (Xvfb fuzz seed 100)", () => {
  it("xorg-mit-shm answers a bare surface's frame: it stands for a round trip, not a repaint", async () => {
    const { comp, c, surface } = await twoBuffers("xorg-mit-shm");
    let done = 0;
    const cb = c.client.request(surface, "frame", [NEW_ID]);
    c.client.listen(cb, () => {
      done++;
    });
    c.client.request(surface, "commit");
    await settle();
    comp.frame();
    await settle();
    expect(done).toBe(1);
  });
});

describe("read moments", () => {
  it("repaint (wlroots-0.15): a buffer shown once is read again at later frames (fuzz seed 102)", async () => {
    const { comp, c, fd, a, surface } = await twoBuffers("wlroots-0.15");
    c.show(surface, a, W, H);
    await settle();
    comp.frame();
    c.proc.ftruncate(fd, 4096);
    comp.frame();
    await settle();
    expect(comp.stats().sigbus).toBe(1);
    expect(c.error?.message).toContain("error accessing SHM buffer");
  });

  it("frame (libwayland-1.21): read once per commit, a later truncation is never read", async () => {
    const { comp, c, fd, a, surface } = await twoBuffers("libwayland-1.21");
    c.show(surface, a, W, H);
    await settle();
    comp.frame();
    c.proc.ftruncate(fd, 4096);
    comp.frame();
    comp.frame();
    await settle();
    expect(comp.stats().sigbus).toBe(0);
    expect(c.error).toBeFalsy();
  });

  it("commit (wlroots): the buffer is read while the commit is dispatched, before any frame", async () => {
    const { comp, c, fd, a, surface } = await twoBuffers("wlroots");
    c.show(surface, a, W, H);
    await settle();
    const read = comp.stats().bytesUserRead;
    expect(read).toBeGreaterThanOrEqual(BUF);
    // Truncated after the commit: the texture is already made, nothing faults.
    c.proc.ftruncate(fd, 0);
    comp.frame();
    comp.frame();
    expect(comp.stats().sigbus).toBe(0);
    expect(comp.framebuffer.some((px) => px !== 0)).toBe(true);
  });

  it("the same truncation under a frame-time reader (kwin) faults", async () => {
    const { comp, c, fd, a, surface } = await twoBuffers("kwin");
    c.show(surface, a, W, H);
    await settle();
    c.proc.ftruncate(fd, 0);
    comp.frame();
    expect(comp.stats().sigbus).toBe(1);
  });
});

describe("damage-only uploads (wlroots wlr_client_buffer_apply_damage)", () => {
  /** Shows a whole, then b with only its first `rows` rows damaged, after a truncation. */
  async function partial(policy: string | Policy, rows: number) {
    const t = await twoBuffers(policy);
    const { comp, c, fd, a, b, surface } = t;
    c.show(surface, a, W, H);
    await settle();
    comp.frame();
    // b keeps its first page (16 rows); the rest of the file is gone.
    c.proc.ftruncate(fd, BUF + 4096);
    c.client.request(surface, "attach", [b, 0, 0]);
    c.client.request(surface, "damage_buffer", [0, 0, W, rows]);
    c.client.request(surface, "commit");
    await settle();
    comp.frame();
    await settle();
    return t;
  }

  it("rows as wide as the stride are one upload: one range read, not one per row", async () => {
    const base = getPolicy("wlroots");
    const ranges: number[] = [];
    const counting: Policy = {
      ...base,
      create(proc, env) {
        const inst = base.create(proc, env);
        const readRange = inst.readRange!.bind(inst);
        return {
          ...inst,
          readRange: (a, tex, off, n) => {
            ranges.push(n);
            readRange(a, tex, off, n);
          },
        } as typeof inst;
      },
    };
    await partial(counting, 4);
    // Four whole rows of a W*4-byte stride: contiguous, so one read of 4 rows.
    expect(ranges).toEqual([4 * W * 4]);
  });

  it("a truncation outside the damaged rows is never read", async () => {
    const { comp } = await partial("wlroots", 4);
    expect(comp.stats().sigbus).toBe(0);
  });

  it("damage reaching past the truncation faults", async () => {
    const { comp } = await partial("wlroots", 32);
    expect(comp.stats().sigbus).toBe(1);
  });

  it("the same commit under full reads faults", async () => {
    const full: Policy = { ...getPolicy("wlroots"), reads: { at: "commit", damage: "full" } };
    const { comp } = await partial(full, 4);
    expect(comp.stats().sigbus).toBe(1);
  });

  it("only the damaged rows are copied, into the surface's texture", async () => {
    const t = await twoBuffers("wlroots");
    t.c.show(t.surface, t.a, W, H);
    await settle();
    t.comp.frame();
    const before = t.comp.stats().bytesCopied;
    t.c.client.request(t.surface, "attach", [t.b, 0, 0]);
    t.c.client.request(t.surface, "damage_buffer", [8, 2, 16, 3]);
    t.c.client.request(t.surface, "commit");
    await settle();
    t.comp.frame();
    expect(t.comp.stats().bytesCopied - before).toBe(3 * 16 * 4);
  });

  it("a buffer of another size is read whole", async () => {
    const t = await twoBuffers("wlroots");
    t.c.show(t.surface, t.a, W, H);
    await settle();
    t.comp.frame();
    const before = t.comp.stats().bytesCopied;
    const small = t.c.createBuffer(t.pool, BUF, W / 2, H / 2, W * 4);
    t.c.client.request(t.surface, "attach", [small, 0, 0]);
    t.c.client.request(t.surface, "damage_buffer", [0, 0, 1, 1]);
    t.c.client.request(t.surface, "commit");
    await settle();
    t.comp.frame();
    expect(t.comp.stats().bytesCopied - before).toBe((H / 2 - 1) * W * 4 + (W / 2) * 4);
  });

  it("a policy that reads damage only must be able to read a range", () => {
    const p = getPolicy("wlroots");
    const broken: Policy = {
      ...p,
      name: "no-range",
      create(proc, env) {
        const { readRange: _drop, ...rest } = p.create(proc, env);
        return rest;
      },
    };
    expect(() => new Compositor({ policy: broken })).toThrow(/readRange/);
  });
});

describe("destroyed buffers", () => {
  async function destroyThenShrink(policy: string) {
    const { comp, c, fd, a, surface } = await twoBuffers(policy);
    c.show(surface, a, W, H);
    c.client.request(a, "destroy");
    await settle();
    c.proc.ftruncate(fd, 0);
    comp.frame();
    return comp;
  }

  it("kwin: the ShmClientBuffer outlives its wl_buffer and is still read, inside an access", async () => {
    const comp = await destroyThenShrink("kwin");
    expect(comp.alive).toBe(true);
    expect(comp.stats().sigbus).toBe(1);
  });

  it("libwayland: a destroyed buffer is dropped before its read", async () => {
    const comp = await destroyThenShrink("libwayland");
    expect(comp.stats().sigbus).toBe(0);
  });
});

describe("Hyprland's per-buffer textures (CWLSHMBuffer)", () => {
  it("the texture is made at create_buffer: a pool larger than its file kills it with no commit", async () => {
    const comp = new Compositor({ policy: "hyprland-0.45" });
    const c = await TestClient.connect(comp);
    const fd = c.memfd(4096, { width: W });
    const pool = c.createPool(fd, 2 * BUF);
    c.createBuffer(pool, 0, W, H, W * 4);
    await settle();
    expect(comp.alive).toBe(false);
    expect(comp.death?.signal).toBe("SIGBUS");
  });

  it("commitPendingState's update(INT32_MAX box): a partially damaged commit is read whole", async () => {
    const t = await twoBuffers("hyprland");
    t.c.show(t.surface, t.a, W, H);
    await settle();
    t.comp.frame();
    const before = t.comp.stats().bytesCopied;
    t.c.client.request(t.surface, "attach", [t.b, 0, 0]);
    t.c.client.request(t.surface, "damage_buffer", [0, 0, W, 1]);
    t.c.client.request(t.surface, "commit");
    await settle();
    t.comp.frame();
    expect(t.comp.stats().bytesCopied - before).toBe(BUF);
  });

  it("with damage-only updates, a per-buffer texture takes the damage, not the surface's", async () => {
    // The texture: "buffer" mechanism alone (Hyprland itself updates whole, above).
    const hypr = getPolicy("hyprland");
    const damaged: Policy = { ...hypr, reads: { ...hypr.reads, damage: "damage" } };
    const { comp, c, a, b, surface } = await twoBuffers(damaged);
    c.show(surface, a, W, H);
    await settle();
    comp.frame();
    c.show(surface, b, W, H);
    await settle();
    comp.frame();
    // a again, one row damaged: outside it, a's own texture (a's pixels), not b's.
    c.client.request(surface, "attach", [a, 0, 0]);
    c.client.request(surface, "damage_buffer", [0, 0, W, 1]);
    c.client.request(surface, "commit");
    await settle();
    comp.frame();
    const row10 = comp.framebuffer[10 * comp.width];
    // The test client's pattern runs over the whole file: b's row 10 is the file's row 74.
    expect(row10).toBe(patternPixel(1, 0, 10));
    expect(row10).not.toBe(patternPixel(1, 0, H + 10));
  });
});

describe("damage stays bounded", () => {
  it("a flood of damage rectangles becomes their bounding box, and the read covers it", async () => {
    const t = await twoBuffers("wlroots");
    t.c.show(t.surface, t.a, W, H);
    await settle();
    t.comp.frame();
    const before = t.comp.stats().bytesCopied;
    t.c.client.request(t.surface, "attach", [t.b, 0, 0]);
    // 1000 one-pixel rectangles on the diagonal of rows 0..9: 10 distinct rows.
    for (let i = 0; i < 1000; i++)
      t.c.client.request(t.surface, "damage_buffer", [i % 10, i % 10, 1, 1]);
    t.c.client.request(t.surface, "commit");
    await settle();
    t.comp.frame();
    // The bounding box of (0,0)..(10,10), ten rows of 10 pixels, plus at most the
    // rectangles added since the list last became a box — not 1000 separate rectangles.
    const copied = t.comp.stats().bytesCopied - before;
    expect(copied).toBeGreaterThanOrEqual(10 * 10 * 4);
    expect(copied).toBeLessThanOrEqual(10 * 10 * 4 + MAX_DAMAGE_RECTS * 4);
  });
});
