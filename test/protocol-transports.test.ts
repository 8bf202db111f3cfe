import { MessageChannel, Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { NEW_ID, ProtocolClient } from "../protocol/client.ts";
import { encodeControl, encodeMessage } from "../protocol/codec.ts";
import { PROTO_ERR } from "../protocol/errors.ts";
import { DISPLAY_ERROR, SHM_ERROR } from "../protocol/schema.ts";
import { ProtocolServer } from "../protocol/server.ts";
import { F_ADD_SEALS, F_GET_SEALS, SyscallError } from "../protocol/syscalls.ts";
import { createTestServer } from "../protocol/testing/test-server.ts";
import { encodeEnvelope } from "../protocol/transport.ts";
import { MessagePortTransport } from "../protocol/transports/message-port.ts";
import { connectWebSocket, listenWebSocket } from "../protocol/transports/websocket.ts";
import { MFD, SEAL } from "../shm/uapi.ts";
import { settle } from "./protocol-helpers.ts";

function serverWithCompositor() {
  const s = new ProtocolServer();
  s.addGlobal("wl_compositor", 4);
  return s;
}

describe("MessagePort transport", () => {
  it("carries a session between two ports of one channel, fds beside the frame", async () => {
    const s = serverWithCompositor();
    const seen: number[][] = [];
    s.implement("wl_compositor", { create_surface: (_r, _a, m) => seen.push([m.objectId]) });
    const { port1, port2 } = new MessageChannel();
    s.connect(new MessagePortTransport(port2));
    const client = new ProtocolClient(new MessagePortTransport(port1));
    const reg = client.request(1, "get_registry", [NEW_ID]);
    const comp = client.request(reg, "bind", [1, "wl_compositor", 4, NEW_ID]);
    client.request(comp, "create_surface", [NEW_ID]);
    await client.roundtrip();
    expect(seen).toEqual([[comp]]);
    client.close();
  });

  it("answers a posted value that is not an envelope with wl_display.error", async () => {
    const s = serverWithCompositor();
    const { port1, port2 } = new MessageChannel();
    const c = s.connect(new MessagePortTransport(port2));
    const got: Uint8Array[] = [];
    port1.on("message", (d: Uint8Array) => got.push(d));
    port1.postMessage("hello");
    await new Promise((r) => setTimeout(r, 20));
    expect(c.error?.code).toBe(PROTO_ERR.BAD_ENVELOPE);
    expect(got).toHaveLength(1);
    port1.close();
  });

  it("serves a client in a worker thread, and contains a hostile one", async () => {
    const s = serverWithCompositor();
    const run = (hostile: boolean) => {
      const { port1, port2 } = new MessageChannel();
      const c = s.connect(new MessagePortTransport(port2));
      // The worker loads TypeScript through tsx's loader, registered in the worker itself.
      const entry = new URL("./protocol-worker-client.ts", import.meta.url).href;
      const boot = `import("tsx/esm/api").then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
      const w = new Worker(boot, {
        eval: true,
        workerData: { port: port1, hostile },
        transferList: [port1],
      });
      return new Promise<{ result: Record<string, unknown>; server: typeof c }>(
        (resolve, reject) => {
          w.once("message", (result) => resolve({ result, server: c }));
          w.once("error", reject);
        },
      ).finally(() => w.terminate());
    };
    const [honest, hostile] = await Promise.all([run(false), run(true)]);
    expect(honest.result.globals).toEqual([[1, "wl_compositor", 4]]);
    expect(honest.result.error).toBeNull();
    expect(hostile.result.error).toMatchObject({
      fromServer: true,
      code: DISPLAY_ERROR.invalid_method,
    });
    expect(hostile.server.error?.code).toBe(PROTO_ERR.BAD_ENVELOPE);
    expect(honest.server.error).toBeNull();
  });
});

describe("WebSocket transport and the syscall channel, on the simulated kernel", () => {
  it("binds to loopback by default", async () => {
    const l = await listenWebSocket({ onConnection: () => {} });
    try {
      expect(l.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
      expect((l.http.address() as { address: string }).address).toBe("127.0.0.1");
    } finally {
      await l.close();
    }
  });

  it("a remote client makes a memfd by syscalls, shares it, and its pixels reach the compositor", async () => {
    const ts = createTestServer();
    const l = await ts.listen();
    try {
      const client = new ProtocolClient(await connectWebSocket(l.url));
      const reg = client.request(1, "get_registry", [NEW_ID]);
      const comp = client.request(reg, "bind", [1, "wl_compositor", 4, NEW_ID]);
      const shm = client.request(reg, "bind", [2, "wl_shm", 2, NEW_ID]);
      const fd = (await client.syscall("memfd_create", [
        "pixels",
        MFD.MFD_ALLOW_SEALING,
      ])) as number;
      expect(await client.syscall("ftruncate", [fd, 64])).toBe(0);
      const px = new Uint8Array(64).map((_, i) => i * 3);
      expect(await client.syscall("pwrite", [fd, px, 0])).toBe(64);
      expect(await client.syscall("fcntl", [fd, F_ADD_SEALS, SEAL.F_SEAL_SHRINK])).toBe(0);
      expect(await client.syscall("fcntl", [fd, F_GET_SEALS, 0])).toBe(SEAL.F_SEAL_SHRINK);
      expect(await client.syscall("fstat", [fd])).toEqual([64, SEAL.F_SEAL_SHRINK]);
      expect(Buffer.from((await client.syscall("pread", [fd, 4, 60])) as Uint8Array)).toEqual(
        Buffer.from(px.subarray(60)),
      );
      await expect(client.syscall("ftruncate", [fd, 0])).rejects.toMatchObject({ errno: "EPERM" });
      await expect(client.syscall("close", [99])).rejects.toBeInstanceOf(SyscallError);
      const pool = client.request(shm, "create_pool", [NEW_ID, fd, 64]);
      const buf = client.request(pool, "create_buffer", [NEW_ID, 0, 4, 4, 16, 1]);
      const surf = client.request(comp, "create_surface", [NEW_ID]);
      const released: string[] = [];
      client.listen(buf, (e) => released.push(e));
      client.request(surf, "attach", [buf, 0, 0]);
      client.request(surf, "damage_buffer", [0, 0, 4, 4]);
      client.request(surf, "commit", []);
      await client.roundtrip();
      expect(client.error).toBeNull();
      expect(ts.commits).toHaveLength(1);
      expect(Buffer.from(ts.commits[0].bytes)).toEqual(Buffer.from(px));
      expect(released).toEqual(["release"]);
      client.close();
    } finally {
      await l.close();
    }
  });

  it("an unknown syscall is ENOSYS and the connection stays up", async () => {
    const ts = createTestServer();
    const l = await ts.listen();
    try {
      const client = new ProtocolClient(await connectWebSocket(l.url));
      await expect(client.syscall("mmap" as "close", [3])).rejects.toMatchObject({
        errno: "ENOSYS",
      });
      await client.roundtrip();
      expect(client.error).toBeNull();
      client.close();
    } finally {
      await l.close();
    }
  });

  it("an fd number the remote process does not have is a protocol error", async () => {
    const ts = createTestServer();
    const l = await ts.listen();
    try {
      const client = new ProtocolClient(await connectWebSocket(l.url));
      const reg = client.request(1, "get_registry", [NEW_ID]);
      const shm = client.request(reg, "bind", [2, "wl_shm", 2, NEW_ID]);
      client.request(shm, "create_pool", [NEW_ID, 42, 4096]);
      await client.roundtrip().catch(() => {});
      expect(client.error).toMatchObject({ fromServer: true, code: DISPLAY_ERROR.invalid_method });
      expect(client.error?.message).toMatch(/fd 42 is not open/);
    } finally {
      await l.close();
    }
  });

  it("malformed syscall frames and text messages end only the sender", async () => {
    const ts = createTestServer();
    const l = await ts.listen();
    try {
      const good = new ProtocolClient(await connectWebSocket(l.url));
      const fd = (await good.syscall("memfd_create", ["g", 0])) as number;
      const ends: [string, (ws: WebSocket) => void, string][] = [
        [
          "bad syscall args",
          (ws) => ws.send(encodeEnvelope(encodeControl([0, 1, "ftruncate", ["x", 1]]))),
          "BAD_ARG",
        ],
        [
          "syscall seq",
          (ws) => ws.send(encodeEnvelope(encodeControl([0, -1, "close", [3]]))),
          "BAD_FRAME",
        ],
        ["text", (ws) => ws.send("hello"), "BAD_ENVELOPE"],
        [
          "fd on a syscall",
          (ws) => ws.send(encodeEnvelope(encodeControl([0, 1, "close", [3]]), [3])),
          "BAD_FD",
        ],
      ];
      for (const [what, attack, code] of ends) {
        const codes: string[] = [];
        ts.server.opts.onClientError = (_c, e) => codes.push(e.code);
        const ws = new WebSocket(l.url);
        await new Promise((r) => ws.once("open", r));
        const frames: Buffer[] = [];
        ws.on("message", (d: Buffer) => frames.push(d));
        const closed = new Promise((r) => ws.once("close", r));
        attack(ws);
        await closed;
        expect(codes, what).toEqual([`PROTO_ERR_${code}`]);
        expect(frames, what).toHaveLength(1);
      }
      ts.server.opts.onClientError = undefined;
      expect(await good.syscall("fstat", [fd])).toEqual([0, SEAL.F_SEAL_SEAL]);
      good.close();
    } finally {
      await l.close();
    }
  });

  it("an over-size message is refused: wl_display.error if ws let it in, a closed socket if not", async () => {
    const s = serverWithCompositor();
    const l = await listenWebSocket({ maxPayload: 10_000, onConnection: (t) => s.connect(t) });
    try {
      const errs: unknown[] = [];
      const a = new ProtocolClient(await connectWebSocket(l.url));
      a.onError((e) => errs.push(e));
      a.sendRaw(encodeMessage(1, 0, [new Uint8Array(6000)]));
      await new Promise<void>((r) => a.onClose(r));
      expect(a.error).toMatchObject({ fromServer: true, code: DISPLAY_ERROR.invalid_method });
      expect(a.error?.message).toMatch(/exceeds 4096/);
      const b = new ProtocolClient(await connectWebSocket(l.url));
      b.sendRaw(new Uint8Array(20_000));
      await new Promise<void>((r) => b.onClose(r));
      expect(b.error).toBeNull();
      expect(s.clients.size).toBe(0);
    } finally {
      await l.close();
    }
  });

  it("refuses connections beyond maxConnections at the handshake", async () => {
    const s = serverWithCompositor();
    const l = await listenWebSocket({ maxConnections: 1, onConnection: (t) => s.connect(t) });
    try {
      const a = new ProtocolClient(await connectWebSocket(l.url));
      const ws = new WebSocket(l.url);
      const code = await new Promise((r) => ws.once("close", (c) => r(c)));
      expect(code).toBe(1013);
      await a.roundtrip();
      expect(a.error).toBeNull();
      a.close();
    } finally {
      await l.close();
    }
  });

  it("the remote process exits when the connection ends", async () => {
    const ts = createTestServer();
    const l = await ts.listen();
    try {
      const client = new ProtocolClient(await connectWebSocket(l.url));
      await client.syscall("memfd_create", ["x", 0]);
      const proc = [...ts.kernel.processes.values()].find((p) => p.name.startsWith("remote"))!;
      expect(proc.alive).toBe(true);
      client.close();
      for (let i = 0; i < 50 && proc.alive; i++) await new Promise((r) => setTimeout(r, 10));
      expect(proc.alive).toBe(false);
      expect(proc.fds.size).toBe(0);
    } finally {
      await l.close();
    }
  });

  it("syscall replies keep request order with Wayland messages behind an asynchronous gateway", async () => {
    const s = serverWithCompositor();
    const order: string[] = [];
    s.implement("wl_compositor", { create_surface: () => order.push("create_surface") });
    const [{ createPair }] = await Promise.all([import("../protocol/transports/pair.ts")]);
    const [ct, st] = createPair();
    s.connect(st, {
      syscalls: {
        call: async (name) => {
          await new Promise((r) => setTimeout(r, 5));
          order.push(name);
          return 3;
        },
      },
    });
    const client = new ProtocolClient(ct);
    const reg = client.request(1, "get_registry", [NEW_ID]);
    const comp = client.request(reg, "bind", [1, "wl_compositor", 4, NEW_ID]);
    const p = client.syscall("memfd_create", ["a", 0]);
    client.request(comp, "create_surface", [NEW_ID]);
    const q = client.syscall("close", [3]);
    await Promise.all([p, q, client.roundtrip()]);
    await settle();
    expect(order).toEqual(["memfd_create", "create_surface", "close"]);
  });
});

describe("errors carry the wl_shm codes a remote client can act on", () => {
  it("create_buffer with a bad stride is wl_shm.invalid_stride against the pool", async () => {
    const ts = createTestServer();
    const l = await ts.listen();
    try {
      const client = new ProtocolClient(await connectWebSocket(l.url));
      const reg = client.request(1, "get_registry", [NEW_ID]);
      const shm = client.request(reg, "bind", [2, "wl_shm", 2, NEW_ID]);
      const fd = (await client.syscall("memfd_create", ["p", 0])) as number;
      await client.syscall("ftruncate", [fd, 4096]);
      const pool = client.request(shm, "create_pool", [NEW_ID, fd, 4096]);
      client.request(pool, "create_buffer", [NEW_ID, 0, 64, 64, 16, 0]);
      await client.roundtrip().catch(() => {});
      expect(client.error).toMatchObject({
        fromServer: true,
        objectId: pool,
        code: SHM_ERROR.invalid_stride,
      });
    } finally {
      await l.close();
    }
  });
});

describe("a handler that throws past the server (its process died) does not end the Node process", () => {
  it("hands the error to onHandlerError and keeps serving others", async () => {
    const s = serverWithCompositor();
    s.implement("wl_compositor", {
      create_surface: () => {
        throw Object.assign(new Error("process 1 killed by SIGBUS"), { code: "SHM_ERR_KILLED" });
      },
    });
    const seen: unknown[] = [];
    const l = await listenWebSocket({
      onConnection: (t) => s.connect(t),
      onHandlerError: (e, t) => {
        seen.push(e);
        t.close("compositor died");
      },
    });
    try {
      const a = new ProtocolClient(await connectWebSocket(l.url));
      const reg = a.request(1, "get_registry", [NEW_ID]);
      const comp = a.request(reg, "bind", [1, "wl_compositor", 4, NEW_ID]);
      a.request(comp, "create_surface", [NEW_ID]);
      await new Promise<void>((r) => a.onClose(r));
      expect(seen).toHaveLength(1);
      expect((seen[0] as { code: string }).code).toBe("SHM_ERR_KILLED");
      expect(a.error).toBeNull(); // not the client's fault: no wl_display.error
      const b = new ProtocolClient(await connectWebSocket(l.url));
      await b.roundtrip();
      b.close();
    } finally {
      await l.close();
    }
  });
});
