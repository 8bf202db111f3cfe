/**
 * Reads straight into the framebuffer (compositor/output.ts `destination`): where the next
 * composite would draw a texture whole as one run, the read fills the back framebuffer
 * there instead of the texture. Nothing a run shows may change: every frame's pixels, the
 * record's digest (verdicts, faults, timelines) and the last frame's image are those of the
 * plain path (SHMLAB_DIRECT_READS=0), under the seeded scheduler that preempts inside reads,
 * for attacks that fault in the middle of a read and kill the compositor or not.
 */
import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { Compositor } from "../compositor/compositor.ts";
import { patternPixel, settle, TestClient } from "../compositor/testing.ts";
import { makeSpec, runOne } from "../lab/run.ts";

const prior = process.env.SHMLAB_DIRECT_READS;
afterEach(() => {
  if (prior === undefined) delete process.env.SHMLAB_DIRECT_READS;
  else process.env.SHMLAB_DIRECT_READS = prior;
});

/** One run's digest, last image and every frame's pixels; and how many reads went direct. */
function play(policy: string, behaviour: string, direct: boolean, seed: number) {
  process.env.SHMLAB_DIRECT_READS = direct ? "1" : "0";
  const frames: string[] = [];
  let directReads = 0;
  const record = runOne(
    makeSpec({
      policy,
      behaviour,
      seed,
      honest: 0,
      frames: 8,
      // As wide as the lab's 256x128 output, packed: alone on it, its texture is one run.
      params: { width: 256, height: 96, rounds: 4 },
    }),
    {
      images: true,
      afterFrame: (v) => {
        const fb = v.compositor.framebuffer;
        frames.push(
          createHash("sha1")
            .update(new Uint8Array(fb.buffer, fb.byteOffset, fb.byteLength))
            .digest("hex"),
        );
        directReads = v.compositor.directReads;
      },
    },
  );
  return { digest: record.digest, image: record.images?.output, frames, directReads };
}

const POLICIES = [
  "none",
  "libwayland",
  "wlroots",
  "kwin",
  "smithay",
  "xorg-mit-shm",
  "copy-pread",
  "weston-10",
  "wlroots-0.15",
  "kwin-5.27",
  "libwayland-kept-buffer",
];
const BEHAVIOURS = [
  "honest-renderer",
  "truncate-during-read",
  "truncate-after-commit",
  "shown-then-truncated",
  "destroy-buffer-then-shrink",
  "truncate-outside-damage",
];

describe("reads straight into the framebuffer change nothing a run shows", () => {
  it.each(POLICIES)(
    "%s: every frame, digest and last image as on the plain path",
    (policy) => {
      let direct = 0;
      for (const behaviour of BEHAVIOURS)
        for (const seed of [1, 2]) {
          const plain = play(policy, behaviour, false, seed);
          const fast = play(policy, behaviour, true, seed);
          expect(plain.directReads).toBe(0);
          expect({ behaviour, seed, ...fast, directReads: 0 }).toEqual({
            behaviour,
            seed,
            ...plain,
          });
          direct += fast.directReads;
        }
      // The direct path was taken (this policy's runs are not all on the plain path).
      expect(direct).toBeGreaterThan(0);
    },
    120_000,
  );
});

describe("a texture kept in the framebuffer", () => {
  /** The pixels of client `index`'s pattern over the placement, against the output. */
  function wrong(comp: Compositor, index: number): number {
    const p = comp.placements().find((q) => q.clientId === index);
    if (!p) return -1;
    const px = comp.regionPixels(p);
    let n = 0;
    for (let y = 0; y < p.height; y++)
      for (let x = 0; x < p.width; x++)
        if (px[y * p.width + x] >>> 0 !== patternPixel(index, x, y)) n++;
    return n;
  }

  it("is copied out when the layout moves it, and drawn again from there", async () => {
    const comp = new Compositor({ policy: "libwayland", width: 64, height: 32 });
    const a = await TestClient.connect(comp, 1);
    await a.window(64, 32);
    comp.frame();
    expect(comp.directReads).toBe(1);
    expect(wrong(comp, a.remote.id)).toBe(0);
    // A second window halves the tiles: a's texture (not read again) is drawn clipped from
    // the bytes the direct read left, which are copied out before the back buffer is drawn.
    const b = await TestClient.connect(comp, 2);
    await b.window(20, 10);
    comp.frame();
    expect(comp.placements()).toHaveLength(2);
    expect(wrong(comp, a.remote.id)).toBe(0);
    expect(wrong(comp, b.remote.id)).toBe(0);
    comp.frame();
    expect(wrong(comp, a.remote.id)).toBe(0);
    // b leaves: a is alone and whole again, drawn from its texture.
    b.client.close();
    await settle();
    comp.frame();
    comp.frame();
    expect(comp.placements()).toHaveLength(1);
    expect(wrong(comp, a.remote.id)).toBe(0);
  });

  it("read at a commit, is copied out when another window arrives before the frame", async () => {
    // wlroots reads at the commit: a's read goes where a alone would be drawn, then b's
    // window changes the layout before the frame draws anything.
    const comp = new Compositor({ policy: "wlroots", width: 64, height: 32 });
    const a = await TestClient.connect(comp, 1);
    await a.window(64, 32);
    expect(comp.directReads).toBe(1);
    const b = await TestClient.connect(comp, 2);
    await b.window(20, 10);
    comp.frame();
    expect(comp.placements()).toHaveLength(2);
    expect(wrong(comp, a.remote.id)).toBe(0);
    expect(wrong(comp, b.remote.id)).toBe(0);
  });

  it("keeps the last composited frame on the front buffer while a read fills the back one", async () => {
    const comp = new Compositor({ policy: "none", width: 64, height: 32 });
    const a = await TestClient.connect(comp, 1);
    const w = await a.window(64, 32);
    comp.frame();
    const before = Uint32Array.from(comp.framebuffer);
    // The pool's file is cut under the committed buffer: the next read dies of SIGBUS.
    a.proc.ftruncate(w.fd, 0);
    a.client.request(w.surface, "attach", [w.buffer, 0, 0]);
    a.client.request(w.surface, "commit");
    await settle();
    expect(() => comp.frame()).toThrow();
    expect(comp.alive).toBe(false);
    expect(Uint32Array.from(comp.framebuffer)).toEqual(before);
  });
});
