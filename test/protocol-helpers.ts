/**
 * Shared fixtures of the protocol suites: a raw peer that puts exact bytes on a server's
 * wire and records every frame it gets back, decoded.
 */
import { decodeFrame, encodeMessage, encodeRaw, type Frame } from "../protocol/codec.ts";
import type { ConnectOptions, ProtocolServer, ServerClient } from "../protocol/server.ts";
import { createPair, type PairTransport } from "../protocol/transports/pair.ts";

export interface RawPeer {
  readonly t: PairTransport;
  readonly remote: ServerClient;
  readonly frames: Frame[];
  closed: boolean;
  send(objectId: number, opcode: number, args: unknown[], fds?: number[]): void;
  sendValue(value: unknown, fds?: number[]): void;
  sendBytes(bytes: Uint8Array, fds?: number[]): void;
  /** The args of the wl_display.error received, if any. */
  error(): [number, number, string] | undefined;
  /** Events received on `objectId`, as [opcode, args]. */
  events(objectId: number): [number, unknown[]][];
}

export function rawPeer(server: ProtocolServer, opts: ConnectOptions = {}): RawPeer {
  const [ct, st] = createPair();
  const remote = server.connect(st, opts);
  const peer: RawPeer = {
    t: ct,
    remote,
    frames: [],
    closed: false,
    send: (o, op, args, fds = []) => ct.send(encodeMessage(o, op, args), fds),
    sendValue: (v, fds = []) => ct.send(encodeRaw(v), fds),
    sendBytes: (b, fds = []) => ct.send(b, fds),
    error() {
      const f = peer.frames.find((x) => x.kind === "message" && x.objectId === 1 && x.opcode === 0);
      return f?.kind === "message" ? (f.args as [number, number, string]) : undefined;
    },
    events(objectId) {
      return peer.frames
        .filter((x) => x.kind === "message" && x.objectId === objectId)
        .map((x) => (x.kind === "message" ? [x.opcode, x.args as unknown[]] : [0, []]));
    },
  };
  ct.onMessage((b) => peer.frames.push(decodeFrame(b)));
  ct.onClose(() => {
    peer.closed = true;
  });
  return peer;
}

/** Lets every queued microtask and timer of the pair transports run. */
export function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}
