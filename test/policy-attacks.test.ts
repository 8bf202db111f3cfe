/**
 * The basic attacks against every policy, each asserting what the policy's real namesake
 * does, with the source of that expectation (docs/policy-sources.md section, or the kernel
 * rule in ../shared/LINUX.md for the proposals):
 *   A. truncate after attach + commit (weston bad-buffer-test's ftruncate(fd, 12));
 *   B. pool declared larger than its file;
 *   C. resize that shrinks;
 *   D. stride and int32 overflow lies (WLCS client_lies_about_buffer_size; stride*height > 2^31);
 *   E. format lies (0xDEADBEEF; a format in the enum but not supported, with bad geometry).
 */
import { describe, expect, it } from "vitest";
import { Compositor } from "../compositor/compositor.ts";
import { getPolicy, policyNames } from "../compositor/policies/index.ts";
import { readRules } from "../compositor/policy.ts";
import { settle, TestClient } from "../compositor/testing.ts";
import { SHM_ERROR, SHM_FORMATS } from "../protocol/schema.ts";
import { ProcessKilled } from "../shm/errors.ts";
import { Kernel } from "../shm/kernel.ts";

const ALL_FEATURES = ["map-nofault", "zero-beyond-eof", "madv-userfault"] as const;
const RGB565 = SHM_FORMATS.find((f) => f.name === "rgb565")!.value;
const { invalid_format: FORMAT, invalid_stride: STRIDE, invalid_fd: FD } = SHM_ERROR;

async function setup(policy: string) {
  const comp = new Compositor({
    policy,
    kernel: new Kernel({ features: [...ALL_FEATURES] }),
    width: 256,
    height: 256,
  });
  const c = await TestClient.connect(comp);
  return { comp, c };
}

/** Runs a frame; returns the ProcessKilled if the compositor died in it. */
function frame(comp: Compositor): ProcessKilled | null {
  try {
    comp.frame();
    return null;
  } catch (e) {
    if (e instanceof ProcessKilled) return e;
    throw e;
  }
}

type Outcome =
  | { dies: string }
  | { error: [iface: string, code: number, message: string | RegExp] }
  | { zeros: true; connected: true }
  /** Accepted, but the compositor makes nothing of it: never read, never shown. */
  | { unread: true; connected: true }
  /** An X11 error after which the client stays connected (Xorg; Refusal.xError). */
  | { xError: string };

interface Expectation {
  outcome: Outcome;
  /** Where the expectation comes from. */
  source: string;
}

async function check(
  comp: Compositor,
  c: TestClient,
  killed: ProcessKilled | null,
  e: Expectation,
) {
  await settle();
  const o = e.outcome;
  if ("dies" in o) {
    expect(killed, e.source).toBeInstanceOf(ProcessKilled);
    expect(killed!.pid).toBe(comp.proc.pid);
    expect(`${killed!.signal}:${comp.deathCause}`).toMatch(o.dies);
    expect(comp.alive).toBe(false);
    // Death is not a protocol error: the client's connection just ends.
    expect(c.error).toBeNull();
    expect(c.client.closed).toBe(true);
    expect(comp.errors).toEqual([]);
    return;
  }
  expect(killed, e.source).toBeNull();
  expect(comp.alive).toBe(true);
  if ("xError" in o) {
    expect(comp.errors, e.source).toEqual([]);
    expect(c.client.closed).toBe(false);
    expect(comp.notices.map((n) => n.xError).filter(Boolean)).toEqual([o.xError]);
    return;
  }
  if ("error" in o) {
    const [iface, code, message] = o.error;
    expect(comp.errors.length, e.source).toBe(1);
    const err = comp.errors[0];
    expect({ iface: err.interface, code: err.code }, e.source).toEqual({ iface, code });
    expect(err.message).toMatch(message);
    expect(c.error).toMatchObject({ fromServer: true, code });
    return;
  }
  expect(c.error, e.source).toBeNull();
  expect(c.client.closed).toBe(false);
  const p = comp.placements().find((x) => x.client === "client-1");
  expect(p, "a surviving client that was not refused is still on screen").toBeDefined();
  const px = comp.regionPixels(p!);
  // ftruncate(fd, 12) keeps three pixels of page 0 (LINUX.md rule 1: the partial page
  // is zeroed past the size); whatever the policy mapped, the rest is zero.
  expect(px.subarray(3).every((v) => v === 0)).toBe(true);
}

const S = {
  lw: "libwayland §1.4–1.5: sigbus_handler maps zeros; outermost end_access posts INVALID_FD on the wl_buffer",
  wlr: "wlroots §2.4: handle_sigbus maps zeros; nothing is posted",
  kwin: "KWin §3.4: sigbusHandler maps zeros; no wl_resource_post_error for this case",
  smithay: 'Smithay §4.4: with_buffer_contents posts InvalidFd "Bad pool size." on the wl_buffer',
  xorg: "Xorg §5.3–5.4: busfault_sigaction maps zeros; ShmBusfaultNotify frees the segment, no disconnect",
  dies: "LINUX.md rule 2: a user access beyond EOF raises SIGBUS; with no handler the process dies",
  uffd: "LINUX.md rule 16: a fault beyond EOF is SIGBUS before userfaultfd is consulted",
  populate: "LINUX.md rules 1–2: truncation zaps populated entries; MAP_POPULATE or not, SIGBUS",
  nofault:
    "LINUX.md proposals: MAP_NOFAULT maps an anonymous zero page on a private read fault beyond EOF",
  zeroEof: "LINUX.md proposals: zero page in the page cache beyond i_size, for MAP_SHARED",
  seals: "seals-required: create_pool refuses an fd without F_SEAL_SHRINK (wl_shm.invalid_fd)",
  droppable:
    "droppable-cache (docs/hazards.md): libwayland's handler maps zeros and nothing is sent; no frame of this client read cleanly before, so there is no cached frame to show instead",
  pread:
    "LINUX.md rule 7: pread stops at i_size; the short read is punished as libwayland punishes a fault",
  hypr: "Hyprland src/protocols/core/Shm.cpp: no SIGBUS handler; CWLSHMBuffer::update reads at commit (issue #7518)",
  own: "WLCS #30: a compositor handler over libwayland's that does not chain re-raises with SIG_DFL",
  render:
    "libwayland's sigbus_data is per thread: the render thread's has no current pool, sigbus_handler re-raises",
};

const A: Record<string, Expectation> = {
  none: { outcome: { dies: /^SIGBUS/ } as never, source: S.dies },
  libwayland: { outcome: { error: ["wl_buffer", FD, "error accessing SHM buffer"] }, source: S.lw },
  wlroots: { outcome: { zeros: true, connected: true }, source: S.wlr },
  kwin: { outcome: { zeros: true, connected: true }, source: S.kwin },
  smithay: { outcome: { error: ["wl_buffer", FD, "Bad pool size."] }, source: S.smithay },
  "xorg-mit-shm": { outcome: { zeros: true, connected: true }, source: S.xorg },
  "seals-required": { outcome: { error: ["wl_shm", FD, /F_SEAL_SHRINK/] }, source: S.seals },
  "map-nofault": { outcome: { zeros: true, connected: true }, source: S.nofault },
  "zero-beyond-eof": { outcome: { zeros: true, connected: true }, source: S.zeroEof },
  "copy-pread": {
    outcome: { error: ["wl_buffer", FD, "error accessing SHM buffer"] },
    source: S.pread,
  },
  "droppable-cache": { outcome: { zeros: true, connected: true }, source: S.droppable },
  userfaultfd: { outcome: { dies: /^SIGBUS/ } as never, source: S.uffd },
  populate: { outcome: { dies: /^SIGBUS/ } as never, source: S.populate },
  // The installed versions' models read a live buffer as libwayland does (bracketed).
  "libwayland-1.21": {
    outcome: { error: ["wl_buffer", FD, "error accessing SHM buffer"] },
    source: S.lw,
  },
  "weston-10": {
    outcome: { error: ["wl_buffer", FD, "error accessing SHM buffer"] },
    source: S.lw,
  },
  "wlroots-0.15": {
    outcome: { error: ["wl_buffer", FD, "error accessing SHM buffer"] },
    source: S.lw,
  },
  "kwin-5.27": {
    outcome: { error: ["wl_buffer", FD, "error accessing SHM buffer"] },
    source: S.lw,
  },
  hyprland: { outcome: { dies: /^SIGBUS/ } as never, source: S.hypr },
  "hyprland-0.45": { outcome: { dies: /^SIGBUS/ } as never, source: S.hypr },
  // Constructs (docs/policies.md): the design choice each isolates decides.
  // The first access installs libwayland's handler and is rescued by it; the compositor's
  // own goes on top only after it (test/policy-variants.test.ts: the next fault dies).
  "libwayland-own-handler": {
    outcome: { error: ["wl_buffer", FD, "error accessing SHM buffer"] },
    source: S.own,
  },
  "libwayland-chained-handler": {
    outcome: { error: ["wl_buffer", FD, "error accessing SHM buffer"] },
    source: S.lw,
  },
  "render-thread-libwayland": { outcome: { dies: /^SIGBUS/ } as never, source: S.render },
  "render-thread-wlroots": { outcome: { zeros: true, connected: true }, source: S.wlr },
  // A live wl_buffer: end_access's first branch (its destroyed-buffer branch:
  // test/policy-libwayland-kept-buffer.test.ts).
  "libwayland-kept-buffer": {
    outcome: { error: ["wl_buffer", FD, "error accessing SHM buffer"] },
    source: S.lw,
  },
};

/** A mapped pool, a buffer and a surface, nothing committed yet (all accepted). */
async function unshownWindow(c: TestClient) {
  const fd = c.memfd(64 * 64 * 4, { width: 64 });
  const pool = c.createPool(fd, 64 * 64 * 4);
  const buffer = c.createBuffer(pool, 0, 64, 64, 256);
  const surface = c.surface();
  await settle();
  return { fd, pool, buffer, surface };
}

/** Delivers the queued requests, then runs a frame; the ProcessKilled if it died in either. */
async function dispatch(comp: Compositor): Promise<ProcessKilled | null> {
  await settle();
  return comp.alive ? frame(comp) : (comp.death ?? null);
}

describe("A. truncate after attach + commit", () => {
  it("covers every built-in policy", () => {
    expect(Object.keys(A).sort()).toEqual(policyNames().sort());
  });
  for (const [policy, e] of Object.entries(A)) {
    it(`${policy}: ${JSON.stringify(e.outcome)}`, async () => {
      const { comp, c } = await setup(policy);
      const atCommit = readRules(getPolicy(policy)).at === "commit";
      const w = atCommit ? await unshownWindow(c) : await c.window(64, 64);
      if (c.client.closed) return check(comp, c, null, e); // refused before any read
      c.proc.ftruncate(w.fd, 12);
      // A policy that reads at the commit (Xorg's ShmPutImage, wlroots' surface_apply_damage)
      // reads when it is dispatched.
      if (atCommit) c.show(w.surface, w.buffer, 64, 64);
      const killed = atCommit ? await dispatch(comp) : frame(comp);
      await check(comp, c, killed, e);
      if (comp.alive && !c.client.closed) {
        // The compositor is still serving: a second frame and a fresh commit work.
        c.show(w.surface, w.buffer, 64, 64);
        await settle();
        expect(frame(comp)).toBeNull();
      }
    });
  }

  it("seals-required: a sealed client cannot truncate, and its pixels stay on screen", async () => {
    const { comp, c } = await setup("seals-required");
    const w = await c.window(64, 64, { seal: true });
    expect(() => c.proc.ftruncate(w.fd, 12)).toThrow(/EPERM/);
    expect(frame(comp)).toBeNull();
    expect(c.error).toBeNull();
  });

  it("xorg-mit-shm: the segment is freed at the next main-loop turn; the client stays connected", async () => {
    const { comp, c } = await setup("xorg-mit-shm");
    const w = await unshownWindow(c);
    c.proc.ftruncate(w.fd, 12);
    c.show(w.surface, w.buffer, 64, 64);
    await settle(); // ProcShmPutImage reads here: the SIGBUS is handled inside the request
    expect(comp.alive).toBe(true);
    // Xorg's os/busfault.c: busfault_sigaction finds the faulting address in a registered
    // segment, marks it invalid and maps anonymous zero pages over it (MAP_FIXED), so the
    // read goes on and faults no more: exactly one SIGBUS, taken during the put.
    expect(comp.stats().sigbus).toBe(1);
    // busfault_check at the main loop's next turn: the handler had invalidated the record.
    const s = comp.frame();
    expect(s.notices).toEqual([
      expect.objectContaining({ client: "client-1", what: expect.stringMatching(/truncated/) }),
    ]);
    // A buffer from the freed segment is inert: BadShmSeg in X, nothing on the wire here.
    const b2 = c.createBuffer(w.pool, 0, 8, 8, 32);
    c.show(w.surface, b2, 8, 8);
    await settle();
    const s2 = comp.frame();
    expect(s2.buffersRead).toBe(0);
    expect(comp.notices.at(-1)?.what).toMatch(/BadShmSeg/);
    expect(comp.stats().sigbus).toBe(1); // the freed segment is never read again
    expect(c.client.closed).toBe(false);
  });
});

const B: Record<string, Expectation> = {
  ...A,
  "xorg-mit-shm": {
    outcome: { xError: "BadValue" },
    source:
      "Xorg §5.1: ProcShmAttachFd maps st_size, not the claimed size; ProcShmPutImage's length check is BadValue and keeps the client (measured on Xvfb 21.1.7)",
  },
  "seals-required": { outcome: { error: ["wl_shm", FD, /F_SEAL_SHRINK/] }, source: S.seals },
  // PR #8572's shmIsSizeValid at create_pool (the real one posts it on the new wl_shm_pool).
  hyprland: {
    outcome: { error: ["wl_shm", 0xffffffff, /not big enough for the shm pool/] },
    source: "Hyprland Shm.cpp after PR #8572: shmIsSizeValid → error(-1) (issue #8570)",
  },
};

describe("B. pool declared larger than its file", () => {
  for (const [policy, e] of Object.entries(B)) {
    it(`${policy}: ${JSON.stringify(e.outcome)}`, async () => {
      const { comp, c } = await setup(policy);
      const fd = c.memfd(4096);
      const pool = c.createPool(fd, 65536);
      const buf = c.createBuffer(pool, 32768, 32, 32, 128);
      const surf = c.surface();
      c.show(surf, buf, 32, 32);
      await settle();
      // Hyprland reads at create_buffer: it may have died before any frame.
      const killed = !comp.alive ? comp.death : c.client.closed ? null : frame(comp);
      await check(comp, c, killed, e);
    });
  }

  it("seals-required: a sealed file smaller than the pool is refused too", async () => {
    const { comp, c } = await setup("seals-required");
    c.createPool(c.memfd(4096, { seal: true }), 65536);
    await settle();
    expect(comp.errors[0]).toMatchObject({ interface: "wl_shm", code: FD, message: /exceeds/ });
  });

  it("libwayland: a sealed file skips the handler, so a pool grown past it is fatal (§1.3.4)", async () => {
    // sigbus_is_impossible is computed once at create_pool and not on resize.
    const { comp, c } = await setup("libwayland");
    const fd = c.memfd(4096, { seal: true });
    const pool = c.createPool(fd, 4096);
    c.client.request(pool, "resize", [65536]);
    const buf = c.createBuffer(pool, 32768, 32, 32, 128);
    const surf = c.surface();
    c.show(surf, buf, 32, 32);
    await settle();
    const killed = frame(comp);
    expect(killed?.signal).toBe("SIGBUS");
    expect(comp.alive).toBe(false);
  });
});

describe("C. resize that shrinks", () => {
  const shrinkInvalidFd: Expectation = {
    outcome: { error: ["wl_shm_pool", FD, "shrinking pool invalid"] },
    source: 'libwayland §1.3 shm_pool_resize / KWin §3.3: "shrinking pool invalid"',
  };
  const C: Record<string, Expectation> = Object.fromEntries(
    policyNames().map((n) => [n, shrinkInvalidFd]),
  );
  C.wlroots = {
    outcome: { error: ["wl_shm_pool", STRIDE, "Shrinking a pool (8192 to 4096) is forbidden"] },
    source: "wlroots §2.3 pool_handle_resize: INVALID_STRIDE",
  };
  C["render-thread-wlroots"] = C.wlroots;
  for (const h of ["hyprland", "hyprland-0.45"])
    C[h] = {
      outcome: { error: ["wl_shm_pool", 0xffffffff, "Shrinking a shm pool is illegal"] },
      source:
        "Hyprland Shm.cpp resize: `r->error(-1, ...)`, -1 as wl_resource_post_error's uint32_t",
    };
  C.smithay = {
    outcome: { error: ["wl_shm_pool", FD, "cannot shrink wl_shm_pool"] },
    source: 'Smithay §4.3 InnerPool::resize → InvalidFd "cannot shrink wl_shm_pool"',
  };
  // MIT-SHM has no resize: not applicable, not an invented refusal.
  delete C["xorg-mit-shm"];
  it("xorg-mit-shm: resizing is not applicable (MIT-SHM has no pool resize)", () => {
    const xorg = getPolicy("xorg-mit-shm");
    expect(xorg.notApplicable?.["resize-pool-smaller"]).toMatch(/no pool resize/);
  });
  for (const [policy, e] of Object.entries(C)) {
    it(`${policy}: ${JSON.stringify(e.outcome)}`, async () => {
      const { comp, c } = await setup(policy);
      const pool = c.createPool(c.memfd(8192, { seal: true }), 8192);
      c.client.request(pool, "resize", [4096]);
      await settle();
      await check(comp, c, null, e);
    });
  }

  it("smithay: resize(0) posts InvalidFd and then panics on unwrap (§4.3, derived)", async () => {
    const { comp, c } = await setup("smithay");
    const pool = c.createPool(c.memfd(8192), 8192);
    await settle();
    const op = 2; // wl_shm_pool.resize
    const { encodeMessage } = await import("../protocol/codec.ts");
    let thrown: unknown;
    try {
      c.remote.receive(encodeMessage(pool, op, [0]), []);
    } catch (e) {
      thrown = e;
    }
    // Delivered directly (a transport's delivery would rethrow to its caller).
    expect(thrown).toBeInstanceOf(ProcessKilled);
    expect(comp.deathCause).toMatch(/unwrap/);
    expect(comp.errors[0]).toMatchObject({ interface: "wl_shm_pool", code: FD });
  });

  it("libwayland: resize(-1) falls in the shrink test (no separate size <= 0 check)", async () => {
    const { comp, c } = await setup("libwayland");
    const pool = c.createPool(c.memfd(8192), 8192);
    c.client.request(pool, "resize", [-1]);
    await settle();
    expect(comp.errors[0]).toMatchObject({ code: FD, message: "shrinking pool invalid" });
  });
});

describe("D. stride and overflow lies", () => {
  // WLCS client_lies_about_buffer_size: 200x200 ARGB8888, stride 200, pool 40000.
  const D: Record<string, Expectation> = {};
  const accepted: Expectation = {
    outcome: { zeros: true, connected: true },
    source: "§6.2 table: libwayland and KWin accept stride 200 (no bytes-per-pixel check)",
  };
  for (const p of policyNames().map(getPolicy)) D[p.name] = accepted;
  D.wlroots = {
    outcome: { error: ["wl_shm_pool", STRIDE, "Invalid stride (200)"] },
    source: "wlroots §2.2 pixel_format_info_check_stride: stride < min_stride",
  };
  D["render-thread-wlroots"] = D.wlroots;
  D.smithay = {
    outcome: { error: ["wl_shm_pool", STRIDE, /width must not be larger than stride/] },
    source: "Smithay §4.2 check 3: stride / bpp < width",
  };
  D["xorg-mit-shm"] = {
    outcome: { xError: "BadValue" },
    source:
      "Xorg ProcShmPutImage: totalWidth = stride / 4 = 50 < srcWidth 200 → BadValue, client kept",
  };
  D["kwin-5.27"] = {
    outcome: { unread: true, connected: true },
    source:
      "KWin 5.27 ShmClientBuffer::data(): Qt's QImageData::create refuses bytesPerLine 200 < 800, a null image; not read (kwin_wayland 5.27.5: test/real-kwin-stride-lie.test.ts)",
  };
  D["copy-pread"] = {
    outcome: { error: ["wl_buffer", FD, "error accessing SHM buffer"] },
    source: "libwayland profile accepts it; the read of (h-1)*stride + w*4 bytes is short (rule 7)",
  };
  for (const [policy, e] of Object.entries(D)) {
    it(`stride 200 for 200 px ARGB8888 — ${policy}: ${JSON.stringify(e.outcome)}`, async () => {
      const { comp, c } = await setup(policy);
      const fd = c.memfd(40000, { seal: true, width: 200 });
      const pool = c.createPool(fd, 40000);
      const buf = c.createBuffer(pool, 0, 200, 200, 200, 0);
      const surf = c.surface();
      c.show(surf, buf, 200, 200);
      await settle();
      const killed = c.client.closed ? null : frame(comp);
      if ("zeros" in e.outcome) {
        // Accepted: shown, and the over-long last rows read past the pool into the last
        // page's tail (inside the mapping), so nothing faults.
        expect(killed).toBeNull();
        expect(c.error).toBeNull();
        expect(comp.placements()).toHaveLength(1);
        return;
      }
      if ("unread" in e.outcome) {
        expect(killed).toBeNull();
        expect(c.error).toBeNull();
        expect(comp.placements()).toHaveLength(0);
        expect(comp.stats().buffersRead).toBe(0);
        return;
      }
      await check(comp, c, killed, e);
    });
  }

  // Hyprland checks no geometry against the pool (below).
  const noOverflowCheck = new Set(["xorg-mit-shm", "hyprland", "hyprland-0.45"]);
  for (const p of policyNames()
    .map(getPolicy)
    .filter((x) => !noOverflowCheck.has(x.name))) {
    it(`int32 overflow of stride * height is invalid_stride — ${p.name}`, async () => {
      // libwayland: INT32_MAX / stride < height; wlroots: 64-bit offset + stride * height;
      // Smithay: "height is too large for stride"; KWin: libwayland's condition.
      const { comp, c } = await setup(p.name);
      const pool = c.createPool(c.memfd(4096, { seal: true }), 4096);
      c.createBuffer(pool, 0, 16, 65536, 65536);
      await settle();
      expect(comp.errors[0]).toMatchObject({ interface: "wl_shm_pool", code: STRIDE });
      expect(comp.alive).toBe(true);
    });
  }

  it("int32 overflow — hyprland: accepted, and the texture made at create_buffer reads past the mapping (SIGSEGV)", async () => {
    const { comp, c } = await setup("hyprland");
    const pool = c.createPool(c.memfd(4096, { seal: true }), 4096);
    c.createBuffer(pool, 0, 16, 65536, 65536);
    await settle();
    expect(comp.errors).toEqual([]);
    expect(comp.alive).toBe(false);
    expect(comp.death?.signal).toBe("SIGSEGV");
  });

  it("int32 overflow — xorg-mit-shm: X's 16-bit totalHeight holds 65536 as 0, so ProcShmPutImage has nothing to check", async () => {
    const { comp, c } = await setup("xorg-mit-shm");
    const pool = c.createPool(c.memfd(4096, { seal: true }), 4096);
    const surf = c.surface();
    c.show(surf, c.createBuffer(pool, 0, 16, 65536, 65536), 16, 16);
    await settle();
    expect(comp.errors).toEqual([]);
    expect(comp.notices).toEqual([]);
    // The catalogue's stride-overflow (height 0x8000 fits in 16 bits) is BadValue at the put:
    c.show(surf, c.createBuffer(pool, 0, 1, 0x8000, 0x10000), 1, 1);
    await settle();
    expect(comp.notices.map((n) => n.xError)).toEqual(["BadValue"]);
    expect(c.client.closed).toBe(false);
  });
});

describe("E. format lies", () => {
  const unknown: Record<string, [number, RegExp]> = {
    libwayland: [FORMAT, /invalid format 0xdeadbeef/],
    wlroots: [FORMAT, /Unsupported format/],
    kwin: [FORMAT, /invalid format 0xdeadbeef/],
    // §4.2 (derived): wl_bytes_per_pixel(Unknown) = 0 → checked_div → 0 < width.
    smithay: [STRIDE, /width must not be larger than stride/],
    hyprland: [FORMAT, /Format invalid/],
    "hyprland-0.45": [FORMAT, /Format invalid/],
  };
  it("0xDEADBEEF — xorg-mit-shm: BadValue (ShmPutImage's format is none of XYBitmap, XYPixmap, ZPixmap), client kept", async () => {
    const { comp, c } = await setup("xorg-mit-shm");
    const pool = c.createPool(c.memfd(64, { seal: true }), 64);
    const buf = c.createBufferRaw(pool, [0, 4, 4, 16, 0xdeadbeef]);
    await settle();
    // create_buffer sends nothing in MIT-SHM: the format is checked by the put.
    expect(comp.notices).toEqual([]);
    c.show(c.surface(), buf, 4, 4);
    await settle();
    expect(comp.errors).toEqual([]);
    expect(comp.notices.map((n) => n.xError)).toEqual(["BadValue"]);
  });
  for (const p of policyNames()
    .map(getPolicy)
    .filter((x) => x.name !== "xorg-mit-shm")) {
    const [code, msg] = unknown[p.name] ?? unknown.libwayland;
    it(`0xDEADBEEF — ${p.name}: ${code === FORMAT ? "invalid_format" : "invalid_stride"}`, async () => {
      const { comp, c } = await setup(p.name);
      const pool = c.createPool(c.memfd(64, { seal: true }), 64);
      c.createBufferRaw(pool, [0, 4, 4, 16, 0xdeadbeef]);
      await settle();
      expect(comp.errors[0]).toMatchObject({ interface: "wl_shm_pool", code, message: msg });
    });
  }

  // Order: rgb565 (in the enum, not supported) with a negative offset.
  const order: Record<string, number> = {
    libwayland: FORMAT, // format_is_supported first (§1.2)
    kwin: FORMAT, // s_formats first (§3.2)
    wlroots: STRIDE, // geometry before format (§2.2)
    smithay: STRIDE, // offset < 0 is check 1 (§4.2)
  };
  for (const [policy, code] of Object.entries(order)) {
    it(`unsupported format with a negative offset — ${policy} checks ${code === FORMAT ? "format" : "geometry"} first`, async () => {
      const { comp, c } = await setup(policy);
      const pool = c.createPool(c.memfd(4096), 4096);
      c.createBuffer(pool, -4, 4, 4, 16, RGB565);
      await settle();
      expect(comp.errors[0]).toMatchObject({ interface: "wl_shm_pool", code });
    });
  }
});
