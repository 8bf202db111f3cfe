/**
 * The WebSocket listener against sockets that never speak, crowd in from one address, come
 * from another origin, or send text (issue 18, findings 4 and 8). Loopback only: the
 * second address is 127.0.0.2, which Linux routes to lo like all of 127/8.
 */
import { connect, type Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { ProtocolClient } from "../protocol/client.ts";
import { decodeFrame, encodeMessage } from "../protocol/codec.ts";
import { DISPLAY_ERROR } from "../protocol/schema.ts";
import { ProtocolServer } from "../protocol/server.ts";
import { encodeEnvelope } from "../protocol/transport.ts";
import {
  checkHostAndOrigin,
  listenWebSocket,
  type WebSocketListenOptions,
} from "../protocol/transports/websocket.ts";

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function listen(opts: Partial<WebSocketListenOptions>) {
  const s = new ProtocolServer();
  s.addGlobal("wl_compositor", 4);
  return listenWebSocket({ onConnection: (t) => s.connect(t), ...opts });
}

function rawSocket(port: number, localAddress = "127.0.0.1"): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port, localAddress }, () => resolve(s));
    s.once("error", reject);
  });
}

const closed = (s: Socket) =>
  new Promise<void>((r) => (s.destroyed ? r() : s.once("close", () => r())));

describe("WebSocket listener hardening", () => {
  it("a TCP socket that never completes the handshake is closed at the timeout", async () => {
    const l = await listen({ handshakeTimeoutMs: 200 });
    try {
      const s = await rawSocket(l.port);
      s.on("error", () => {});
      await Promise.race([closed(s), wait(3000)]);
      expect(s.destroyed || s.readableEnded).toBe(true);
    } finally {
      await l.close();
    }
  });

  it("an upgraded connection that never sends is closed at the handshake timeout, an idle one at the idle timeout", async () => {
    const l = await listen({ handshakeTimeoutMs: 200, idleTimeoutMs: 300 });
    try {
      const silent = new WebSocket(l.url);
      const silentClose = new Promise<[number, string]>((r) =>
        silent.once("close", (c, why) => r([c, why.toString()])),
      );
      expect(await silentClose).toEqual([1008, "handshake timeout"]);
      const ws = new WebSocket(l.url);
      await new Promise((r) => ws.once("open", r));
      const idleClose = new Promise<[number, string]>((r) =>
        ws.once("close", (c, why) => r([c, why.toString()])),
      );
      ws.send(encodeEnvelope(encodeMessage(1, 0, [2])), { binary: true }); // wl_display.sync
      expect(await idleClose).toEqual([1008, "idle timeout"]);
    } finally {
      await l.close();
    }
  });

  it("one address may hold only so many sockets; another address is not affected", async () => {
    const l = await listen({ maxPerAddress: 2, handshakeTimeoutMs: 0 });
    try {
      const a1 = await rawSocket(l.port);
      const a2 = await rawSocket(l.port);
      const a3 = await rawSocket(l.port);
      a3.on("error", () => {});
      await Promise.race([closed(a3), wait(3000)]);
      expect(a3.destroyed || a3.readableEnded).toBe(true);
      const other = new ProtocolClient(
        await new Promise<import("../protocol/transports/websocket.ts").WebSocketTransport>(
          (resolve, reject) => {
            const ws = new WebSocket(l.url, { localAddress: "127.0.0.2" });
            ws.once("error", reject);
            ws.once("open", async () => {
              const { WebSocketTransport } = await import("../protocol/transports/websocket.ts");
              resolve(new WebSocketTransport(ws));
            });
          },
        ),
      );
      await other.roundtrip();
      expect(other.error).toBeNull();
      other.close();
      a1.destroy();
      a2.destroy();
    } finally {
      await l.close();
    }
  });

  it("refuses a foreign Host (DNS rebinding) and a foreign Origin at the handshake", async () => {
    const l = await listen({ allowOrigins: ["https://lab.example"] });
    try {
      const status = (headers: Record<string, string>) =>
        new Promise<number>((resolve) => {
          const ws = new WebSocket(l.url, { headers });
          ws.once("unexpected-response", (_req, res) => {
            resolve(res.statusCode ?? 0);
            ws.terminate();
          });
          ws.once("open", () => {
            resolve(101);
            ws.close();
          });
          ws.once("error", () => {});
        });
      expect(await status({ Host: "evil.example" })).toBe(403);
      expect(await status({ Origin: "https://evil.example" })).toBe(403);
      expect(await status({ Origin: "http://localhost:5173" })).toBe(101);
      expect(await status({ Origin: "https://lab.example" })).toBe(101);
      expect(await status({})).toBe(101);
    } finally {
      await l.close();
    }
  });

  it("Host and Origin rules", () => {
    expect(checkHostAndOrigin({ host: "127.0.0.1:7000" }, "127.0.0.1")).toBeUndefined();
    expect(checkHostAndOrigin({ host: "[::1]:7000" }, "::1")).toBeUndefined();
    expect(checkHostAndOrigin({ host: "localhost" }, "127.0.0.1")).toBeUndefined();
    expect(checkHostAndOrigin({ host: "attacker.test:7000" }, "127.0.0.1")).toMatch(/Host/);
    expect(checkHostAndOrigin({ host: "box.lan:7000" }, "0.0.0.0", ["box.lan"])).toBeUndefined();
    expect(checkHostAndOrigin({ host: "127.0.0.1", origin: "null" }, "127.0.0.1")).toMatch(
      /Origin/,
    );
  });

  it("an invalid UTF-8 text frame gets the documented protocol error, not a bare 1007", async () => {
    const l = await listen({});
    try {
      const ws = new WebSocket(l.url);
      await new Promise((r) => ws.once("open", r));
      const frames: unknown[] = [];
      ws.on("message", (d: Buffer) => frames.push(decodeFrame(new Uint8Array(d).subarray(1))));
      const code = new Promise<number>((r) => ws.once("close", (c) => r(c)));
      ws.send(Buffer.from([0xff, 0xfe, 0x80]), { binary: false });
      expect(await code).toBe(1000);
      const err = frames[0] as { objectId: number; opcode: number; args: unknown[] };
      expect([err.objectId, err.opcode, err.args[1]]).toEqual([1, 0, DISPLAY_ERROR.invalid_method]);
    } finally {
      await l.close();
    }
  });
});
