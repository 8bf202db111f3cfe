/**
 * The Wayland driver against a real weston started by real/weston.ts: the catalogue's own
 * behaviours as real clients over the binary wire.
 *
 * What weston 10 / libwayland-server 1.21 does, predicted from wayland-shm.c (1.21) before
 * it was asserted: the pixman renderer reads an shm buffer between
 * wl_shm_buffer_begin_access and wl_shm_buffer_end_access; a read past the end of a
 * truncated file raises SIGBUS, whose handler (sigbus_handler) finds the faulting address
 * inside the pool currently accessed, maps anonymous zero pages over the pool
 * (mmap MAP_FIXED) and sets fallback_mapping_used; end_access then posts
 * WL_SHM_ERROR_INVALID_FD, "error accessing SHM buffer", on the wl_buffer. weston survives.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Behaviour } from "../client/behaviour.ts";
import { wlClientAvailability } from "../native/wl-client.ts";
import type { LaunchedInstance } from "../real/instance.ts";
import { waylandDriver } from "../real/wayland-driver.ts";
import { weston } from "../real/weston.ts";
import { waylandPlan, waylandSkipReason } from "./real-helpers.ts";

const native = await wlClientAvailability();
const why = await waylandSkipReason(weston, "real weston driver tests");

let instance: LaunchedInstance | undefined;
beforeAll(async () => {
  if (!why) instance = await weston.start();
});
afterAll(async () => {
  await instance?.stop();
});

const plan = waylandPlan;

describe.skipIf(why !== "")("Wayland driver on a real weston", () => {
  it("honest-renderer: every frame is called back and every buffer but the last released", async () => {
    const obs = await waylandDriver.run(instance!, plan("honest-renderer"));
    expect(obs.compositor.alive).toBe(true);
    expect(obs.clients).toHaveLength(2);
    for (const c of obs.clients) {
      expect(c.protocolError).toBeNull();
      expect(c.killed).toBeNull();
      expect(c.connection).toBe("open");
      expect(c.commits).toBe(4);
      expect(c.framesDone).toBe(4);
      // double buffering: the buffer on screen at the end is still held by weston
      expect(c.releases).toBe(3);
      expect(c.waitingFor).toBeNull();
      // weston --debug offers weston_screenshooter: the window shows the last frame, exactly
      expect(c.pixels).toBe("correct");
    }
    expect(obs.target.version).toMatch(/^weston 10/);
  });

  it("truncate-after-commit: weston survives and posts wl_shm.invalid_fd on the wl_buffer", async () => {
    const obs = await waylandDriver.run(instance!, plan("truncate-after-commit"));
    expect(obs.compositor.alive).toBe(true);
    const [bystander, attacker] = obs.clients;
    expect(attacker.behaviour).toBe("truncate-after-commit");
    expect(attacker.protocolError).toMatchObject({
      interface: "wl_buffer",
      error: "invalid_fd",
      code: 2,
      message: "error accessing SHM buffer",
    });
    expect(attacker.killed).toBeNull();
    // the bystander is untouched
    expect(bystander.protocolError).toBeNull();
    expect(bystander.framesDone).toBe(4);
    expect(bystander.pixels).toBe("correct");
    // only honest clients' windows are checked
    expect(attacker.pixels).toBe("unchecked");
  });

  it("fork-child-truncates: the same error, whichever process shrank the file", async () => {
    const obs = await waylandDriver.run(instance!, plan("fork-child-truncates"));
    expect(obs.compositor.alive).toBe(true);
    const attacker = obs.clients[1];
    expect(attacker.protocolError).toMatchObject({ interface: "wl_buffer", error: "invalid_fd" });
    expect(obs.clients[0].protocolError).toBeNull();
  });

  it("unknown-format: libwayland's wl_shm refuses it with wl_shm.invalid_format", async () => {
    const obs = await waylandDriver.run(instance!, plan("unknown-format"));
    expect(obs.clients[1].protocolError).toMatchObject({
      interface: "wl_shm_pool",
      error: "invalid_format",
    });
    expect(obs.compositor.alive).toBe(true);
  });

  it("runs a fuzz program (an action list, not a catalogue name) as a real client", async () => {
    const { actionBehaviour } = await import("../lab/fuzz/behaviour.ts");
    const program = actionBehaviour(
      [
        { k: "memfd", size: 48 * 48 * 4, sealing: false },
        { k: "surface" },
        { k: "create-pool", f: 0, size: "file" },
        { k: "create-buffer", p: 0, offset: 0, width: 48, height: 48, stride: 192, format: 1 },
        { k: "attach", s: 0, b: 0, commit: true },
        { k: "truncate", f: 0, size: 0 },
        { k: "frame", s: 0 },
        { k: "roundtrip" },
      ],
      () => {},
    );
    const obs = await waylandDriver.run(instance!, plan("fuzz-actions"), { behaviour: program });
    expect(obs.clients[1].behaviour).toBe("fuzz-actions");
    // the same read after the same truncation as truncate-after-commit, the same answer
    expect(obs.clients[1].protocolError).toMatchObject({
      interface: "wl_buffer",
      error: "invalid_fd",
    });
    expect(obs.compositor.alive).toBe(true);
  });

  it("a client that stores into its own truncated pool dies of SIGBUS, alone", async () => {
    const { scene } = await import("../client/behaviours/common.ts");
    const selfHarm: Behaviour = {
      name: "store-after-own-truncate",
      description: "truncates its pool, then draws into its mapping",
      honest: false,
      source: "test: a real client's own SIGBUS",
      *run(c, ctx) {
        const s = yield* scene(c, ctx, { buffers: 1, keepFd: true });
        c.process.ftruncate(s.memfd.fd, 0);
        c.drawPattern(s.base, s.buffers[0], ctx.seed, ctx.index, 0);
      },
    };
    const obs = await waylandDriver.run(instance!, plan(selfHarm.name), { behaviour: selfHarm });
    const [bystander, victim] = obs.clients;
    expect(victim.killed).toEqual({ code: null, signal: "SIGBUS" });
    expect(victim.connection).toBe("closed-by-client");
    expect(victim.notes.join(" ")).toMatch(/killed: process \d+ killed by SIGBUS/);
    expect(obs.compositor.alive).toBe(true);
    expect(bystander.framesDone).toBe(4);
    expect(bystander.protocolError).toBeNull();
  });

  it("protocol garbage: a server-range new_id is invalid_method; a cut message is only waited for", async () => {
    const serverId = await waylandDriver.run(
      instance!,
      plan("protocol-garbage", { params: { kind: "server-id" } }),
    );
    expect(serverId.clients[1].protocolError).toMatchObject({
      interface: "wl_display",
      error: "invalid_method",
      message: "invalid arguments for wl_compositor@3.create_surface",
    });
    expect(serverId.clients[1].connection).toBe("closed-by-server");
    // libwayland cannot tell a message cut short from one still arriving: no error, and the
    // client's next request (its roundtrip) is read as the cut message's missing tail
    const cut = await waylandDriver.run(
      instance!,
      plan("protocol-garbage", { params: { kind: "malformed-bytes" }, timeoutMs: 2000 }),
    );
    expect(cut.clients[1].protocolError).toBeNull();
    expect(cut.clients[1].waitingFor).toMatch(/roundtrip/);
    expect(cut.clients[1].notes.join(" ")).toMatch(/7-byte cut wire message/);
    expect(cut.clients[0].framesDone).toBe(4);
  });

  it("a sealed honest pool is never an error, and the run ends within its bound", async () => {
    const obs = await waylandDriver.run(
      instance!,
      plan("honest-renderer", { honest: 0, params: { seal: true } }),
    );
    expect(obs.clients[0].protocolError).toBeNull();
    expect(obs.clients[0].framesDone).toBe(4);
  });
});

describe("Wayland driver on a real sway", async () => {
  const { sway } = await import("../real/sway.ts");
  const p = sway.probe();
  const swayWhy = !p.available ? p.why : why;
  if (swayWhy) console.log(`real sway driver tests skipped: ${swayWhy}`);

  it.skipIf(swayWhy !== "")(
    "honest-renderer on a fresh sway: frames, releases and exact pixels through wlr-screencopy",
    async () => {
      const inst = await sway.start();
      try {
        const obs = await waylandDriver.run(inst, plan("honest-renderer"));
        expect(obs.compositor.alive).toBe(true);
        for (const c of obs.clients) {
          expect(c.protocolError).toBeNull();
          expect(c.framesDone).toBe(4);
          expect(c.releases).toBe(3);
          expect(c.pixels).toBe("correct");
        }
      } finally {
        await inst.stop();
      }
    },
  );
});

describe.skipIf(!native.available)("Wayland driver cleanup", () => {
  it("kills a helper whose setup fails after it connected (it is not yet in the run)", async () => {
    const { createServer } = await import("node:net");
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { vi } = await import("vitest");
    const { WlClientProcess } = await import("../native/wl-client.ts");
    const { NativeSys } = await import("../real/native-sys.ts");
    const dir = mkdtempSync(join(tmpdir(), "shmlab-join-"));
    const socket = join(dir, "wayland-0");
    const server = createServer((c) => c.on("error", () => {}));
    await new Promise<void>((r) => server.listen(socket, r));
    const procs: Awaited<ReturnType<typeof WlClientProcess.start>>[] = [];
    const start = WlClientProcess.start.bind(WlClientProcess);
    const spyStart = vi.spyOn(WlClientProcess, "start").mockImplementation(async (...a) => {
      const p = await start(...a);
      procs.push(p);
      return p;
    });
    const spyOf = vi.spyOn(NativeSys, "of").mockImplementation(() => {
      throw new Error("setup failed after CONNECT");
    });
    const fake = {
      kind: "weston",
      version: "fake",
      pid: process.pid,
      endpoint: { kind: "wayland", socket },
      logPath: "",
      exited: () => null,
      stop: async () => ({ code: 0, signal: null }),
    } as unknown as LaunchedInstance;
    try {
      await expect(waylandDriver.run(fake, plan("honest-renderer"))).rejects.toThrow(
        /setup failed after CONNECT/,
      );
      expect(procs).toHaveLength(1);
      // killed by join itself: its exit is already known when run() rejects
      expect(procs[0].exit).not.toBeNull();
    } finally {
      spyStart.mockRestore();
      spyOf.mockRestore();
      for (const p of procs) p.kill();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
