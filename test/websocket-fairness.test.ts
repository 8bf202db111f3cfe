/**
 * Fair service across WebSocket connections (protocol/transports/fair-scheduler.ts, issue
 * 18): a client flooding the server with messages gets a bounded share per turn, so an
 * honest client's message sent after the flood began is handled long before the flood is,
 * and the flooder's socket stops being read while its queue is full. Counted in messages
 * and bytes; no wall-clock figure is asserted.
 */
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { encodeEnvelope } from "../protocol/transport.ts";
import {
  listenWebSocket,
  type WebSocketListener,
  type WebSocketTransport,
} from "../protocol/transports/websocket.ts";

const FLOOD = 400;
const SIZE = 20 * 1024;

let listener: WebSocketListener | undefined;
afterEach(async () => {
  await listener?.close();
  listener = undefined;
});

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

/** Work per message, so that a backlog is real work (its length is not asserted). */
function work(): void {
  let x = 0;
  for (let i = 0; i < 200_000; i++) x = (x * 31 + i) | 0;
  if (x === 42) throw new Error("unreachable");
}

async function flood(fairness: false | undefined) {
  const handled: string[] = [];
  const transports: WebSocketTransport[] = [];
  let maxQueued = 0;
  let honestAt = -1;
  const done = new Promise<void>((resolve) => {
    const onConnection = (t: WebSocketTransport) => {
      transports.push(t);
      t.onMessage((bytes) => {
        const who = bytes[0] === 1 ? "flood" : "honest";
        if (who === "flood") work();
        else honestAt = handled.filter((h) => h === "flood").length;
        handled.push(who);
        for (const x of transports) maxQueued = Math.max(maxQueued, x.queuedBytes);
        if (handled.length === FLOOD + 1) resolve();
      });
    };
    listenWebSocket({ fairness, onConnection }).then((l) => {
      listener = l;
    });
  });
  while (!listener) await new Promise((r) => setTimeout(r, 5));
  const a = await open(listener.url);
  const b = await open(listener.url);
  const big = encodeEnvelope(new Uint8Array(SIZE).fill(1));
  for (let i = 0; i < FLOOD; i++) a.send(big, { binary: true });
  // The honest message leaves once the flood is on its way.
  await new Promise((r) => setTimeout(r, 20));
  b.send(encodeEnvelope(new Uint8Array([2])), { binary: true });
  await done;
  a.close();
  b.close();
  return { honestAt, maxQueued, scheduler: listener.scheduler };
}

describe("fair service of WebSocket connections", () => {
  it("an honest message is handled after a bounded share of a flood sent before it", async () => {
    const r = await flood(undefined);
    // At most a few turns of the flooder (64 KiB each) and its queue (256 KiB) go first.
    expect(r.honestAt).toBeGreaterThanOrEqual(0);
    expect(r.honestAt).toBeLessThan(FLOOD / 4);
    expect(r.scheduler?.stats.turns).toBeGreaterThan(1);
  }, 60_000);

  it("a flooder's socket is not read while its queue is over the high-water mark", async () => {
    const r = await flood(undefined);
    const l = r.scheduler!.limits;
    // The queue can pass the mark only by what one read of the socket brings in.
    expect(r.maxQueued).toBeLessThan(l.highWaterBytes + 2 * 1024 * 1024);
    expect(r.maxQueued).toBeLessThan(FLOOD * SIZE);
  }, 60_000);

  it("without fairness there is no scheduler and nothing is queued", async () => {
    const r = await flood(false);
    expect(r.scheduler).toBeUndefined();
    expect(r.maxQueued).toBe(0);
  }, 60_000);
});
