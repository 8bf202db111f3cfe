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
 *     would otherwise throw and take down the whole process, i.e. every other client;
 *   - raw sockets are bounded: a per-address cap, a handshake timeout (upgrade and first
 *     message), an idle timeout, and a total socket cap, so sockets that never speak cannot
 *     exhaust the fds or the connection slots (issue 18 finding 4);
 *   - the handshake's Host must name this server and a browser's Origin must be loopback
 *     or allowed: a web page cannot reach the compositor by DNS rebinding or cross-origin;
 *   - fairness: a listener's connections are served round robin, a bounded amount of
 *     messages per turn, and a connection with a backlog stops being read
 *     (fair-scheduler.ts), so one flooding client cannot keep the thread from the others.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import { DEFAULT_LIMITS } from "../codec.ts";
import { PROTO_ERR, protoError } from "../errors.ts";
import { BaseTransport, encodeEnvelope, MAX_ENVELOPE_FDS } from "../transport.ts";
import { type FairLimits, FairScheduler, type FairSource } from "./fair-scheduler.ts";

/** Envelope head (fd list) plus a little slack over the largest frame the codec accepts. */
export const DEFAULT_MAX_PAYLOAD =
  DEFAULT_LIMITS.maxSyscallFrameBytes + 1 + 4 * MAX_ENVELOPE_FDS + 4096;

/** What a connection received and has not handled yet: a message, or a text frame. */
type Received = Uint8Array | "text";

export class WebSocketTransport extends BaseTransport implements FairSource {
  readonly ws: WebSocket;
  private readonly onHandlerError?: (e: unknown) => void;
  private readonly scheduler?: FairScheduler;
  /** Received, waiting for this connection's turn (with a scheduler), from `head` on. */
  private inbox: Received[] = [];
  private head = 0;
  private inboxBytes = 0;
  private paused = false;
  /** The peer closed while messages were still queued: they are handled first. */
  private closeAfterInbox: string | undefined;

  /**
   * `onHandlerError` receives what the message handler threw. A server connection throws
   * only when the server's own process died inside a handler (protocol/server.ts
   * isProcessDeath); thrown from a ws listener it would end the whole Node process, so it
   * is handed over here instead. Without a callback the connection is closed.
   *
   * With a `scheduler` (the server's side), received messages wait for this connection's
   * turn (fair-scheduler.ts); without one they are handled as they arrive.
   */
  constructor(ws: WebSocket, onHandlerError?: (e: unknown) => void, scheduler?: FairScheduler) {
    super();
    this.ws = ws;
    this.onHandlerError = onHandlerError;
    this.scheduler = scheduler;
    ws.binaryType = "nodebuffer";
    ws.on("message", (data: RawData, isBinary: boolean) => {
      const got: Received = !isBinary
        ? "text"
        : Array.isArray(data)
          ? Buffer.concat(data)
          : Buffer.isBuffer(data)
            ? data
            : Buffer.from(data);
      if (!this.scheduler) {
        this.handle(got);
        return;
      }
      if (this.closed) return;
      this.inbox.push(got);
      this.inboxBytes += got === "text" ? 1 : got.byteLength;
      if (!this.paused && this.inboxBytes > this.scheduler.limits.highWaterBytes) {
        // Stop reading: the kernel's socket buffer fills and the sender waits, not us.
        this.paused = true;
        ws.pause();
      }
      this.scheduler.wake(this);
    });
    ws.on("error", () => {
      // ws closes the socket after an error (bad frame, over-size payload); 'close' follows
      // and ends the connection. Nothing may be thrown from here.
    });
    ws.on("close", (code: number) => {
      const why = `websocket closed (${code})`;
      // What the peer sent before closing is handled before its close, as a Unix socket's
      // reader sees every byte before the end of file.
      if (this.head < this.inbox.length && !this.closed) this.closeAfterInbox = why;
      else this.closedByPeer(why);
    });
  }

  /** Messages received and not handled yet (their bytes). */
  get queuedBytes(): number {
    return this.inboxBytes;
  }

  /** FairSource: handles up to `budgetBytes` of the queue (at least one message). */
  turn(budgetBytes: number): boolean {
    if (this.closed) {
      // Closed by this side: what was still queued is dropped unread.
      this.inbox = [];
      this.head = 0;
      this.inboxBytes = 0;
      return false;
    }
    let used = 0;
    while (this.head < this.inbox.length && (used === 0 || used < budgetBytes)) {
      const got = this.inbox[this.head];
      this.inbox[this.head++] = "text"; // let the bytes go
      const n = got === "text" ? 1 : got.byteLength;
      used += n;
      this.inboxBytes -= n;
      this.handle(got);
    }
    if (this.head >= this.inbox.length) {
      this.inbox = [];
      this.head = 0;
    } else if (this.head > 1024) {
      this.inbox = this.inbox.slice(this.head);
      this.head = 0;
    }
    if (this.paused && this.inboxBytes <= this.scheduler!.limits.highWaterBytes / 2) {
      this.paused = false;
      this.ws.resume();
    }
    const more = this.head < this.inbox.length;
    if (!more && this.closeAfterInbox !== undefined) this.closedByPeer(this.closeAfterInbox);
    return more;
  }

  private handle(got: Received): void {
    if (this.closed) return;
    if (got === "text") {
      this.violationHandler(protoError(PROTO_ERR.BAD_ENVELOPE, "text message; frames are binary"));
      return;
    }
    try {
      this.deliverEnvelope(new Uint8Array(got.buffer, got.byteOffset, got.byteLength));
    } catch (e) {
      if (this.onHandlerError) this.onHandlerError(e);
      else this.close("handler failed");
    }
  }

  send(bytes: Uint8Array, fds: readonly number[] = []): void {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return;
    this.corkUntilNextTick();
    this.ws.send(encodeEnvelope(bytes, fds), { binary: true });
  }

  private corked = false;

  /**
   * Everything sent to this peer in one tick leaves in one writev (the socket is corked
   * until the next tick, as Node's stream docs suggest), not one system call per message: a
   * frame sends each client a release, a done and a delete_id, and those calls were a tenth
   * of the server's time under the soak's attack.
   */
  private corkUntilNextTick(): void {
    if (this.corked) return;
    // ws keeps its net.Socket private; without one (a test double) nothing is corked.
    const sock = (this.ws as unknown as { _socket?: Socket | null })._socket;
    if (!sock) return;
    this.corked = true;
    sock.cork();
    process.nextTick(() => {
      this.corked = false;
      sock.uncork();
    });
  }

  get bufferedBytes(): number {
    return this.ws.bufferedAmount;
  }

  private closeCode = 1000;
  private closeText = "";

  /** Closes with a WebSocket close code and reason (at most 123 bytes), e.g. 1011 and why. */
  closeWith(code: number, reason: string): void {
    this.closeCode = code;
    this.closeText = reason;
    this.close(reason);
  }

  protected doClose(): void {
    // close() sends the close frame after the data already queued, so a wl_display.error
    // sent just before reaches the client.
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)
      this.ws.close(this.closeCode, this.closeText);
  }
}

/** Defaults of the listener's limits (docs/protocol.md section 7). */
export const DEFAULT_LISTEN_LIMITS = Object.freeze({
  maxConnections: 64,
  maxPerAddress: 8,
  handshakeTimeoutMs: 5_000,
  idleTimeoutMs: 120_000,
});

/** WebSocket close codes the listener uses, each with a reason text. */
export const CLOSE = Object.freeze({
  /** RFC 6455 1008 policy violation: idle or handshake timeout. */
  TIMEOUT: 1008,
  /** 1013 try again later: a connection limit. */
  TRY_AGAIN: 1013,
  /** 1011 internal error: the compositor died (serve). */
  SERVER_ERROR: 1011,
  /** 1012 service restart: the server is restarting the compositor (serve). */
  RESTART: 1012,
});

export interface WebSocketListenOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  maxPayload?: number;
  /** Most simultaneous connections; more are refused at the handshake (close 1013). */
  maxConnections?: number;
  /** Most simultaneous sockets (open or still in the HTTP handshake) from one address. */
  maxPerAddress?: number;
  /**
   * A TCP connection must complete the WebSocket upgrade and send its first message within
   * this many ms, or it is closed (1008 "handshake timeout"). 0: no limit.
   */
  handshakeTimeoutMs?: number;
  /** A connection that sends nothing for this many ms is closed (1008 "idle timeout"). 0: never. */
  idleTimeoutMs?: number;
  /**
   * Extra values allowed in the Origin header, as full origins ("https://example.org"). An
   * absent Origin (not a browser) and loopback origins are always allowed; any other
   * origin is refused with HTTP 403, as is a Host header that does not name this server
   * (DNS rebinding).
   */
  allowOrigins?: readonly string[];
  /** Extra host names allowed in the Host header (loopback names and the bound host always are). */
  allowHosts?: readonly string[];
  /**
   * Per-connection fairness (fair-scheduler.ts): received messages are handled round robin
   * across connections, a bounded amount per turn. `false`: handled as they arrive.
   */
  fairness?: Partial<FairLimits> | false;
  onConnection: (t: WebSocketTransport, remote: string) => void;
  /** What a connection's message handler threw (see WebSocketTransport). */
  onHandlerError?: (e: unknown, t: WebSocketTransport) => void;
  /** Told of every connection refused before it became a transport, with why. */
  onRefused?: (remote: string, why: string) => void;
  /** Plain HTTP requests (not upgrades): return true when answered; others get 426. */
  onHttpRequest?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

export interface WebSocketListener {
  readonly server: WebSocketServer;
  readonly http: Server;
  readonly port: number;
  readonly url: string;
  /** The scheduler serving the connections' queues (undefined with `fairness: false`). */
  readonly scheduler: FairScheduler | undefined;
  /** Sockets (upgraded or not) per remote address, right now. */
  socketsPerAddress(): ReadonlyMap<string, number>;
  close(): Promise<void>;
}

const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

/** The host part of a Host header or URL authority, without the port, lower case. */
function hostPart(authority: string): string {
  const a = authority.trim().toLowerCase();
  if (a.startsWith("[")) return a.slice(0, a.indexOf("]") + 1);
  const colon = a.lastIndexOf(":");
  return colon >= 0 && a.indexOf(":") === colon ? a.slice(0, colon) : a;
}

function isLoopbackHost(h: string): boolean {
  return LOOPBACK_NAMES.has(h) || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** Why a handshake's Host or Origin is refused, or undefined when both are acceptable. */
export function checkHostAndOrigin(
  headers: { host?: string; origin?: string },
  boundHost: string,
  allowHosts: readonly string[] = [],
  allowOrigins: readonly string[] = [],
): string | undefined {
  const host = headers.host === undefined ? "" : hostPart(headers.host);
  const bound = hostPart(boundHost.includes(":") ? `[${boundHost}]` : boundHost);
  const hostOk =
    isLoopbackHost(host) || host === bound || allowHosts.some((h) => hostPart(h) === host);
  if (!hostOk) return `Host ${JSON.stringify(headers.host ?? "")} is not this server`;
  const origin = headers.origin;
  if (origin === undefined) return undefined;
  if (allowOrigins.includes(origin)) return undefined;
  let originHost: string;
  try {
    originHost = hostPart(new URL(origin).host);
  } catch (e) {
    if (e instanceof TypeError) return `Origin ${JSON.stringify(origin)} is not a URL`;
    throw e;
  }
  if (isLoopbackHost(originHost)) return undefined;
  return `Origin ${JSON.stringify(origin)} is not allowed`;
}

export function listenWebSocket(opts: WebSocketListenOptions): Promise<WebSocketListener> {
  const host = opts.host ?? "127.0.0.1";
  const maxConnections = opts.maxConnections ?? DEFAULT_LISTEN_LIMITS.maxConnections;
  const maxPerAddress = opts.maxPerAddress ?? DEFAULT_LISTEN_LIMITS.maxPerAddress;
  const handshakeMs = opts.handshakeTimeoutMs ?? DEFAULT_LISTEN_LIMITS.handshakeTimeoutMs;
  const idleMs = opts.idleTimeoutMs ?? DEFAULT_LISTEN_LIMITS.idleTimeoutMs;
  const perAddress = new Map<string, number>();
  const scheduler = opts.fairness === false ? undefined : new FairScheduler(opts.fairness);
  const refused = (who: string, why: string) => opts.onRefused?.(who, why);
  const http = createServer((req, res) => {
    // A plain HTTP request (GET /health) is not a stalled handshake: its keep-alive socket is
    // left to the server's keepAliveTimeout, not cut by the handshake timer mid-reuse.
    (req.socket as Socket & { upgraded?: boolean }).upgraded = true;
    if (opts.onHttpRequest?.(req, res)) return;
    res.writeHead(426, { "content-type": "text/plain" }).end("WebSocket only\n");
  });
  // Raw sockets are bounded too: each address may hold a few, the server a few more than
  // it has connection slots (sockets still in the handshake), and each must finish its
  // handshake in time.
  http.maxConnections = maxConnections + 2 * maxPerAddress;
  http.on("connection", (sock: Socket) => {
    const addr = sock.remoteAddress ?? "?";
    const n = (perAddress.get(addr) ?? 0) + 1;
    perAddress.set(addr, n);
    sock.once("close", () => {
      const left = (perAddress.get(addr) ?? 1) - 1;
      if (left <= 0) perAddress.delete(addr);
      else perAddress.set(addr, left);
    });
    sock.on("error", () => {
      // A reset socket concerns only itself; 'close' follows.
    });
    if (n > maxPerAddress) {
      refused(addr, `more than ${maxPerAddress} sockets from one address`);
      sock.destroy();
      return;
    }
    if (handshakeMs > 0) {
      const t = setTimeout(() => {
        if (!(sock as Socket & { upgraded?: boolean }).upgraded) {
          refused(addr, "handshake timeout");
          sock.destroy();
        }
      }, handshakeMs);
      t.unref();
      sock.once("close", () => clearTimeout(t));
    }
  });
  return new Promise((resolve, reject) => {
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.maxPayload ?? DEFAULT_MAX_PAYLOAD,
      perMessageDeflate: false, // compression would let a small message expand into a big one
      clientTracking: true,
      // Text frames are refused by the transport with the documented protocol error; ws's
      // own UTF-8 check would close them with 1007 and no event first.
      skipUTF8Validation: true,
    });
    wss.on("error", () => {
      // Errors after listening (e.g. a failed handshake) concern one socket, not the server.
    });
    http.on("upgrade", (req, socket: Socket, head) => {
      const who = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
      const why = checkHostAndOrigin(
        { host: req.headers.host, origin: req.headers.origin },
        host,
        opts.allowHosts,
        opts.allowOrigins,
      );
      if (why) {
        refused(who, why);
        socket.end(`HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n${why}\n`);
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
    });
    http.once("error", (e) => reject(e));
    http.listen(opts.port ?? 0, host, () => {
      http.on("error", () => {
        // After listening, errors concern one socket.
      });
      const port = (http.address() as AddressInfo).port;
      resolve({
        server: wss,
        http,
        port,
        scheduler,
        url: `ws://${host.includes(":") ? `[${host}]` : host}:${port}`,
        socketsPerAddress: () => perAddress,
        close: () =>
          new Promise<void>((res) => {
            for (const c of wss.clients) c.terminate();
            wss.close();
            http.closeAllConnections?.();
            http.close(() => res());
          }),
      });
    });
    wss.on("connection", (ws, req) => {
      ws.on("error", () => {});
      const who = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
      if (wss.clients.size > maxConnections) {
        refused(who, "too many connections");
        ws.close(CLOSE.TRY_AGAIN, "too many connections");
        return;
      }
      const sock = req.socket as Socket & { upgraded?: boolean };
      let heard = false;
      let idle: NodeJS.Timeout | undefined;
      const armIdle = () => {
        if (idle) clearTimeout(idle);
        const ms = heard ? idleMs : handshakeMs;
        if (ms <= 0) return;
        idle = setTimeout(() => {
          refused(who, heard ? "idle timeout" : "handshake timeout");
          ws.close(CLOSE.TIMEOUT, heard ? "idle timeout" : "handshake timeout");
          // A peer that does not answer the close is cut off.
          setTimeout(() => ws.terminate(), 1000).unref();
        }, ms);
        idle.unref();
      };
      sock.upgraded = true;
      armIdle();
      ws.on("message", () => {
        heard = true;
        armIdle();
      });
      ws.on("close", () => {
        if (idle) clearTimeout(idle);
      });
      const onErr = opts.onHandlerError;
      const t: WebSocketTransport = new WebSocketTransport(
        ws,
        onErr ? (e) => onErr(e, t) : undefined,
        scheduler,
      );
      opts.onConnection(t, who);
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
