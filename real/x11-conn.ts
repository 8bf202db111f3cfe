/**
 * One X11 connection of a real client, over its native helper: sends encoded requests
 * (real/x11-wire.ts) with their sequence numbers, reads what the server sends back, and
 * keeps every error reply (Xorg keeps a client after most errors, so errors pile up while
 * the connection stays open), every event, and how the connection ended.
 */
import type { RealProtocolError } from "./target.ts";
import { SyscallError, type X11Helper } from "./x11-native.ts";
import {
  decodeQueryExtension,
  decodeServerMessage,
  decodeSetup,
  decodeShmQueryVersion,
  encodeGetInputFocus,
  encodeQueryExtension,
  encodeSetup,
  encodeShmQueryVersion,
  type QueryExtensionReply,
  type SetupInfo,
  type ShmVersionReply,
  X_ERROR_NAMES,
} from "./x11-wire.ts";

export class X11ConnError extends Error {
  readonly code = "SHM_ERR_X11_CONN";
}

export interface X11Event {
  seq: number;
  type: number;
  data: Uint8Array;
}

const POLL_MS = 5;

export class X11Connection {
  setup!: SetupInfo;
  shm!: QueryExtensionReply;
  shmVersion!: ShmVersionReply;
  connection: "open" | "closed-by-server" | "closed-by-client" = "open";
  readonly errors: RealProtocolError[] = [];
  /** What the client is waiting for from the server right now, or null. */
  waiting: string | null = null;
  readonly events: X11Event[] = [];
  /** What each sent request was, by its (full, not 16-bit) sequence number. */
  private readonly sent = new Map<number, string>();
  private readonly replies = new Map<number, Uint8Array>();
  private readonly failed = new Set<number>();
  private seq = 0;
  private nextId = 1;
  private inbuf: Uint8Array = new Uint8Array(0);

  constructor(readonly helper: X11Helper) {}

  get closed(): boolean {
    return this.connection !== "open";
  }

  /** Connects, sets up, finds MIT-SHM (its opcode, first event and error). */
  async open(socketPath: string): Promise<void> {
    await this.helper.ok(`connect ${socketPath}`);
    await this.sendRaw(encodeSetup());
    for (;;) {
      const s = decodeSetup(this.inbuf);
      if (s) {
        this.setup = s.info;
        this.inbuf = this.inbuf.subarray(s.used);
        break;
      }
      if (!(await this.pump(1000)) && this.closed)
        throw new X11ConnError("X server closed the connection during setup");
    }
    const ext = await this.reply(
      await this.request("QueryExtension", encodeQueryExtension("MIT-SHM")),
    );
    if (!ext) throw new X11ConnError("QueryExtension MIT-SHM: no reply");
    this.shm = decodeQueryExtension(ext);
    if (!this.shm.present) throw new X11ConnError("the X server has no MIT-SHM extension");
    const v = await this.reply(
      await this.request("ShmQueryVersion", encodeShmQueryVersion(this.shm.majorOpcode)),
    );
    if (!v) throw new X11ConnError("ShmQueryVersion: no reply");
    this.shmVersion = decodeShmQueryVersion(v);
  }

  /** A fresh resource id from the client's range (setup's resource-id-base/mask). */
  allocId(): number {
    const { ridBase, ridMask } = this.setup;
    const low = ridMask & -ridMask; // the mask's lowest set bit: ids step by it
    const id = (ridBase | ((this.nextId++ * low) & ridMask)) >>> 0;
    return id;
  }

  /** Bytes straight onto the socket (no sequence number counted). */
  async sendRaw(bytes: Uint8Array, fd = -1): Promise<void> {
    if (this.closed) return;
    try {
      await this.helper.ok(`send ${Buffer.from(bytes).toString("hex")} ${fd}`);
    } catch (e) {
      // Only EPIPE/ECONNRESET (send(2): "the connection was reset by peer" / "the local end
      // has been shut down") mean the server is gone; EBADF, EINVAL... are our own bugs.
      if (!(e instanceof SyscallError) || (e.errno !== "EPIPE" && e.errno !== "ECONNRESET"))
        throw e;
      // The server is gone; what it said last is read by pump().
      await this.pump(0);
      if (!this.closed) this.connection = "closed-by-server";
    }
  }

  /** Sends one request; returns its sequence number (0 once the connection has ended). */
  async request(name: string, bytes: Uint8Array, fd = -1): Promise<number> {
    if (this.closed) return 0;
    const seq = ++this.seq;
    this.sent.set(seq, name);
    await this.sendRaw(bytes, fd);
    return seq;
  }

  /** Counts a request whose bytes went out through sendRaw in pieces. */
  countRequest(name: string): number {
    const seq = ++this.seq;
    this.sent.set(seq, name);
    return seq;
  }

  /** Reads what the server has sent (waiting at most `ms`); false when nothing came. */
  async pump(ms = POLL_MS): Promise<boolean> {
    if (this.connection === "closed-by-client") return false;
    const a = await this.helper.command(`recv ${ms}`);
    if (a === "none") return false;
    if (a === "eof" || a.startsWith("err")) {
      if (this.connection === "open") this.connection = "closed-by-server";
      return false;
    }
    const data = Buffer.from(a.slice(5), "hex");
    const joined = new Uint8Array(this.inbuf.length + data.length);
    joined.set(this.inbuf);
    joined.set(data, this.inbuf.length);
    this.inbuf = joined;
    if (this.setup) this.parse();
    return true;
  }

  /** The full sequence number whose low 16 bits are `low` (the latest one sent). */
  private fullSeq(low: number): number {
    let s = (this.seq & ~0xffff) | low;
    if (s > this.seq) s -= 0x10000;
    return s;
  }

  private parse(): void {
    for (;;) {
      const m = decodeServerMessage(this.inbuf);
      if (!m) return;
      this.inbuf = this.inbuf.subarray(m.used);
      const msg = m.msg;
      const seq = this.fullSeq(msg.seq);
      if (msg.kind === "reply") this.replies.set(seq, msg.data);
      else if (msg.kind === "event") this.events.push({ seq, type: msg.type, data: msg.data });
      else {
        this.failed.add(seq);
        const name = this.errorName(msg.code);
        this.errors.push({
          interface: "x11",
          error: name,
          code: msg.code,
          objectId: msg.badValue,
          message: `${name} on ${this.sent.get(seq) ?? `request #${seq}`} (major ${msg.major}, minor ${msg.minor}, value 0x${msg.badValue.toString(16)})`,
        });
      }
    }
  }

  errorName(code: number): string {
    if (this.shm && code === this.shm.firstError) return "BadShmSeg";
    return X_ERROR_NAMES[code] ?? String(code);
  }

  /** Whether request `seq` got an error reply. */
  failedRequest(seq: number): boolean {
    return this.failed.has(seq);
  }

  /**
   * Waits for request `seq`'s reply: the reply bytes, or null after an error for it, the
   * connection's end, or `timeoutMs`.
   */
  async reply(seq: number, timeoutMs = 5000): Promise<Uint8Array | null> {
    const end = Date.now() + timeoutMs;
    this.waiting = `reply to ${this.sent.get(seq) ?? "request"} #${seq}`;
    try {
      for (;;) {
        const r = this.replies.get(seq);
        if (r) {
          this.replies.delete(seq);
          return r;
        }
        if (this.failed.has(seq) || this.closed || seq === 0 || Date.now() > end) return null;
        await this.pump(POLL_MS);
      }
    } finally {
      this.waiting = null;
    }
  }

  /** Waits until `pred` holds, the connection ends, or `timeoutMs` passes; returns pred(). */
  async until(pred: () => boolean, timeoutMs: number, what = "an event"): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    this.waiting = what;
    try {
      while (!pred() && !this.closed && Date.now() < end) await this.pump(POLL_MS);
      return pred();
    } finally {
      this.waiting = null;
    }
  }

  /**
   * A round trip (GetInputFocus): once its reply is in, every earlier request has been
   * processed and its errors, events and replies have arrived. False if it did not come.
   */
  async sync(timeoutMs = 5000): Promise<boolean> {
    const seq = await this.request("GetInputFocus", encodeGetInputFocus());
    return (await this.reply(seq, timeoutMs)) !== null;
  }

  /** The client leaves: its socket is closed. */
  async disconnect(): Promise<void> {
    if (this.closed) return;
    await this.helper.ok("shutdown");
    this.connection = "closed-by-client";
  }
}
