/**
 * The compositor's own death: a SIGBUS with no handler (policy `none`) or a policy's abort.
 * It must stop serving, say so (alive === false, stats().death), and the ProcessKilled must
 * reach the caller of frame() or of the transport's delivery — never become a
 * wl_display.implementation error to a client (protocol/server.ts isProcessDeath).
 */
import { describe, expect, it } from "vitest";
import { IntervalClock } from "../compositor/clock.ts";
import { Compositor } from "../compositor/compositor.ts";
import { settle, TestClient } from "../compositor/testing.ts";
import { encodeMessage } from "../protocol/codec.ts";
import { DISPLAY_ID, requestOpcode } from "../protocol/schema.ts";
import { ProtocolServer } from "../protocol/server.ts";
import { BaseTransport } from "../protocol/transport.ts";
import { ProcessKilled } from "../shm/errors.ts";
import { rawPeer } from "./protocol-helpers.ts";

/** A transport whose deliveries are plain calls, as the lab's queue transport makes them. */
class DirectTransport extends BaseTransport {
  readonly sent: Uint8Array[] = [];
  send(bytes: Uint8Array): void {
    this.sent.push(bytes);
  }
  get bufferedBytes(): number {
    return 0;
  }
  protected doClose(): void {}
  deliver(bytes: Uint8Array, fds: number[] = []): void {
    this.messageHandler(bytes, fds);
  }
}

describe("compositor death", () => {
  it("none: a truncated pool kills the compositor in frame(); the ProcessKilled reaches the caller", async () => {
    const comp = new Compositor({ policy: "none" });
    const victim = await TestClient.connect(comp, 1);
    const bystander = await TestClient.connect(comp, 2);
    const w = await victim.window(32, 32);
    await bystander.window(32, 32);
    victim.proc.ftruncate(w.fd, 0);
    let err: unknown;
    try {
      comp.frame();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProcessKilled);
    expect((err as ProcessKilled).pid).toBe(comp.proc.pid);
    expect((err as ProcessKilled).signal).toBe("SIGBUS");
    expect(comp.alive).toBe(false);
    expect(comp.stats().death).toMatchObject({ signal: "SIGBUS", reason: "unhandled" });
    await settle();
    // Every connection ended, and nobody was sent a protocol error.
    for (const c of [victim, bystander]) {
      expect(c.client.closed).toBe(true);
      expect(c.error).toBeNull();
    }
    expect(comp.errors).toEqual([]);
    expect(comp.server.clients.size).toBe(0);
    // Dead stays dead.
    expect(() => comp.frame()).toThrow(ProcessKilled);
    expect(() => comp.connectLocal()).toThrow(ProcessKilled);
    expect(comp.proc.alive).toBe(false);
  });

  it("a death inside a request handler propagates out of the transport's delivery", async () => {
    const comp = new Compositor({ policy: "smithay" });
    const t = new DirectTransport();
    comp.connect(t, { label: "direct" });
    const schema = comp.server.schema;
    const send = (obj: number, iface: string, req: string, args: unknown[], fds: number[] = []) =>
      t.deliver(encodeMessage(obj, requestOpcode(schema, iface, req), args), fds);
    send(DISPLAY_ID, "wl_display", "get_registry", [2]);
    send(2, "wl_registry", "bind", [2, "wl_shm", 2, 3]);
    const proc = comp.kernel.spawn("direct");
    const fd = proc.memfdCreate("p");
    proc.ftruncate(fd, 4096);
    send(3, "wl_shm", "create_pool", [4, 0, 4096], [comp.kernel.exportFd(proc, fd)]);
    // Smithay: resize(0) posts InvalidFd, then unwrap() panics.
    expect(() => send(4, "wl_shm_pool", "resize", [0])).toThrow(ProcessKilled);
    expect(comp.alive).toBe(false);
    expect(comp.deathCause).toMatch(/unwrap/);
    // Later deliveries are ignored, not thrown again.
    expect(() => send(DISPLAY_ID, "wl_display", "sync", [5])).not.toThrow();
  });

  it("an event-driven delivery (rethrowDeath: false) records the death and throws nothing", async () => {
    // A MessagePort or microtask delivery has no caller: a throw there would end Node.
    const comp = new Compositor({ policy: "smithay" });
    const t = new DirectTransport();
    const remote = comp.connect(t, { label: "port", rethrowDeath: false });
    const schema = comp.server.schema;
    const send = (obj: number, iface: string, req: string, args: unknown[], fds: number[] = []) =>
      t.deliver(encodeMessage(obj, requestOpcode(schema, iface, req), args), fds);
    send(DISPLAY_ID, "wl_display", "get_registry", [2]);
    send(2, "wl_registry", "bind", [2, "wl_shm", 2, 3]);
    const proc = comp.kernel.spawn("port");
    const fd = proc.memfdCreate("p");
    proc.ftruncate(fd, 4096);
    send(3, "wl_shm", "create_pool", [4, 0, 4096], [comp.kernel.exportFd(proc, fd)]);
    expect(() => send(4, "wl_shm_pool", "resize", [0])).not.toThrow();
    expect(comp.alive).toBe(false);
    expect(comp.death?.signal).toBe("SIGABRT");
    expect(remote.closed).toBe(true);
  });

  it("protocol/server.ts: a handler's ProcessKilled is rethrown; other failures stay contained", async () => {
    const server = new ProtocolServer();
    server.addGlobal("wl_compositor", 4);
    let die = true;
    server.implement("wl_compositor", {
      create_surface: () => {
        if (die) throw new ProcessKilled(1, "SIGBUS", undefined, "unhandled");
        throw new Error("ordinary bug");
      },
    });
    const peer = rawPeer(server);
    const bytes = (id: number) => encodeMessage(3, 0, [id]);
    peer.remote.receive(encodeMessage(1, 1, [2]), []);
    peer.remote.receive(encodeMessage(2, 0, [1, "wl_compositor", 4, 3]), []);
    expect(() => peer.remote.receive(bytes(4), [])).toThrow(ProcessKilled);
    expect(peer.remote.error).toBeNull();
    die = false;
    expect(() => peer.remote.receive(bytes(5), [])).not.toThrow();
    expect(peer.remote.error?.code).toBe("PROTO_ERR_IMPLEMENTATION");
  });

  it("a real-interval clock stops at the death and reports it", async () => {
    const comp = new Compositor({ policy: "none", clock: new IntervalClock(5) });
    const c = await TestClient.connect(comp);
    const w = await c.window(16, 16);
    c.proc.ftruncate(w.fd, 0);
    const died = new Promise<ProcessKilled>((resolve) => comp.start({ onDeath: resolve }));
    const e = await died;
    expect(e.pid).toBe(comp.proc.pid);
    expect(comp.alive).toBe(false);
    comp.stop();
  });
});
