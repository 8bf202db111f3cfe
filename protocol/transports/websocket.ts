/**
 * WebSocket transport (ws), for clients outside the Node process, in any language.
 *
 * One binary WebSocket message = one envelope (transport.ts): u8 fd count, the fds as u32
 * little-endian (numbers in the remote client's own fd table, in its simulated process),
 * then one msgpack frame. Text messages are refused. The same connection carries the
 * syscall channel (syscalls.ts), since a remote client has no shared memory.
 *
 * Hardening, all per connection:
 *   - the server binds 127.0.0.1 unless told otherwise: a compositor under attack is not
 *     something to expose to a network by accident;
 *   - `maxPayload` makes ws refuse an over-size message before buffering it. It is set a
 *     little above the codec's cap so an over-size frame that ws still accepts is answered
 *     with wl_display.error (PROTO_ERR_TOO_LARGE), and a far larger one ends the socket;
 *   - backpressure: `bufferedBytes` is ws's bufferedAmount, which the server checks after
 *     every send against its maxQueuedBytes (a client that does not read is disconnected);
 *   - every socket, and the server, has an 'error' listener: an unhandled 'error' event
 *     would otherwise throw and take down the whole process, i.e. every other client.
 */
import type { AddressInfo } from "node:net";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import { DEFAULT_LIMITS } from "../codec.ts";
import { PROTO_ERR, protoError } from "../errors.ts";
import { BaseTransport, encodeEnvelope, MAX_ENVELOPE_FDS } from "../transport.ts";

/** Envelope head (fd list) plus a little slack over the largest frame the codec accepts. */
export const DEFAULT_MAX_PAYLOAD =
  DEFAULT_LIMITS.maxSyscallFrameBytes + 1 + 4 * MAX_ENVELOPE_FDS + 4096;

export class WebSocketTransport extends BaseTransport {
  readonly ws: WebSocket;
  private readonly onHandlerError?: (e: unknown) => void;

  /**
   * `onHandlerError` receives what the message handler threw. A server connection throws
   * only when the server's own process died inside a handler (protocol/server.ts
   * isProcessDeath); thrown from a ws listener it would end the whole Node process, so it
   * is handed over here instead. Without a callback the connection is closed.
   */
  constructor(ws: WebSocket, onHandlerError?: (e: unknown) => void) {
    super();
    this.ws = ws;
    this.onHandlerError = onHandlerError;
    ws.binaryType = "nodebuffer";
    ws.on("message", (data: RawData, isBinary: boolean) => {
      if (!isBinary) {
        this.violationHandler(
          protoError(PROTO_ERR.BAD_ENVELOPE, "text message; frames are binary"),
        );
        return;
      }
      const buf = Array.isArray(data)
        ? Buffer.concat(data)
        : Buffer.isBuffer(data)
          ? data
          : Buffer.from(data);
      try {
        this.deliverEnvelope(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
      } catch (e) {
        if (this.onHandlerError) this.onHandlerError(e);
        else this.close("handler failed");
      }
    });
    ws.on("error", () => {
      // ws closes the socket after an error (bad frame, over-size payload); 'close' follows
      // and ends the connection. Nothing may be thrown from here.
    });
    ws.on("close", (code: number) => this.closedByPeer(`websocket closed (${code})`));
  }

  send(bytes: Uint8Array, fds: readonly number[] = []): void {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(encodeEnvelope(bytes, fds), { binary: true });
  }

  get bufferedBytes(): number {
    return this.ws.bufferedAmount;
  }

  protected doClose(): void {
    // close() sends the close frame after the data already queued, so a wl_display.error
    // sent just before reaches the client.
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)
      this.ws.close(1000);
  }
}

export interface WebSocketListenOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  maxPayload?: number;
  /** Most simultaneous connections; more are refused at the handshake. */
  maxConnections?: number;
  onConnection: (t: WebSocketTransport, remote: string) => void;
  /** What a connection's message handler threw (see WebSocketTransport). */
  onHandlerError?: (e: unknown, t: WebSocketTransport) => void;
}

export interface WebSocketListener {
  readonly server: WebSocketServer;
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export function listenWebSocket(opts: WebSocketListenOptions): Promise<WebSocketListener> {
  const host = opts.host ?? "127.0.0.1";
  const maxConnections = opts.maxConnections ?? 64;
  return new Promise((resolve, reject) => {
    const wss = new WebSocketServer({
      host,
      port: opts.port ?? 0,
      maxPayload: opts.maxPayload ?? DEFAULT_MAX_PAYLOAD,
      perMessageDeflate: false, // compression would let a small message expand into a big one
      clientTracking: true,
    });
    wss.on("error", (e) => reject(e));
    wss.on("listening", () => {
      wss.removeAllListeners("error");
      wss.on("error", () => {
        // Errors after listening (e.g. a failed handshake) concern one socket, not the server.
      });
      const port = (wss.address() as AddressInfo).port;
      resolve({
        server: wss,
        port,
        url: `ws://${host.includes(":") ? `[${host}]` : host}:${port}`,
        close: () =>
          new Promise<void>((res) => {
            for (const c of wss.clients) c.terminate();
            wss.close(() => res());
          }),
      });
    });
    wss.on("connection", (ws, req) => {
      ws.on("error", () => {});
      if (wss.clients.size > maxConnections) {
        ws.close(1013, "too many connections");
        return;
      }
      const onErr = opts.onHandlerError;
      const t: WebSocketTransport = new WebSocketTransport(
        ws,
        onErr ? (e) => onErr(e, t) : undefined,
      );
      opts.onConnection(t, `${req.socket.remoteAddress}:${req.socket.remotePort}`);
    });
  });
}

/** Client side: opens a WebSocket transport to `url`. */
export function connectWebSocket(
  url: string,
  maxPayload = DEFAULT_MAX_PAYLOAD,
): Promise<WebSocketTransport> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { maxPayload, perMessageDeflate: false });
    const onError = (e: Error) => reject(e);
    ws.once("error", onError);
    ws.once("open", () => {
      ws.off("error", onError);
      resolve(new WebSocketTransport(ws));
    });
  });
}
