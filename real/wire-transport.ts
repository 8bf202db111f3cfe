/**
 * The Transport a real client's ProtocolClient speaks through: it takes the msgpack frames
 * that protocol/client.ts produces (shmlab's own framing), re-encodes each as the Wayland
 * binary wire (protocol/wire.ts) and hands bytes and fds to the client's process
 * (native/wl-client.c), which sendmsg()s them to the compositor; and it cuts what comes
 * back into messages, keeps the ones shmlab's schema knows, and hands them up as frames.
 * The behaviours, Client and ProtocolClient are the very code the model runs.
 *
 * It also gives every wl_surface the xdg_toplevel role, because weston and mutter composite
 * (and so read) only a mapped toplevel: after wl_compositor.create_surface it sends
 * get_xdg_surface, get_toplevel and an empty commit, holds every later request until the
 * first xdg_surface.configure, acks it, then lets them go in their order ("the client must
 * ... ack_configure ... before committing a buffer", xdg-shell.xml, xdg_surface). A NULL
 * commit that unmaps the toplevel starts that cycle again, and configures the compositor
 * sent before it read that commit are not acked (real/xdg-configure.ts). Their
 * ids come from the client's own object map (`allocate`), since a compositor accepts only
 * the next free client id (wl_map_insert_at in wayland-util.c).
 *
 * Frames that do not decode as msgpack (a hostile client's deliberately broken frame) go
 * on the wire as their raw bytes: garbage to the compositor, as they were meant to be.
 */
import { OP, WlClientError, type WlClientProcess } from "../native/wl-client.ts";
import { decodeFrame, encodeMessage } from "../protocol/codec.ts";
import { isProtocolError } from "../protocol/errors.ts";
import { BASE_SCHEMA, findEnum, getInterface } from "../protocol/schema.ts";
import { XDG_INTERFACES } from "../protocol/schema-xdg.ts";
import { BaseTransport } from "../protocol/transport.ts";
import {
  encodeWire,
  inferSpec,
  type WireArgSpec,
  WireError,
  type WireInterfaceSpec,
  type WireMessage,
  WireReader,
} from "../protocol/wire.ts";
import { XdgConfigureState } from "./xdg-configure.ts";

export interface WireErrorEvent {
  objectId: number;
  interface: string;
  code: number;
  message: string;
}

/** What this connection saw, for the run's observation. */
export interface WireStats {
  framesDone: number;
  eventsDropped: number;
  configures: number;
  sent: number;
  /** Who ended the connection: the compositor (EOF/reset) or this side. */
  closedBy: "server" | "client" | null;
  socketErrno: number;
  displayError: WireErrorEvent | null;
  notes: string[];
}

function interfaceSpec(name: string): WireInterfaceSpec | undefined {
  return (getInterface(BASE_SCHEMA, name) as WireInterfaceSpec | undefined) ?? XDG_INTERFACES[name];
}

/** The transport used before the driver wired it up (a programming error, not a client's). */
export class WireTransportError extends Error {
  readonly code = "SHMLAB_ERR_WIRE_TRANSPORT";
  constructor(message: string) {
    super(message);
    this.name = "WireTransportError";
  }
}

export class WireTransport extends BaseTransport {
  /** Allocates a client id in the ProtocolClient's map (set by the driver). */
  allocate: (iface: string, version: number) => number = () => {
    throw new WireTransportError("WireTransport.allocate is not set");
  };
  /** Give surfaces the xdg_toplevel role (off only to see what a role-less surface gets). */
  readonly xdg: boolean;
  readonly stats: WireStats = {
    framesDone: 0,
    eventsDropped: 0,
    configures: 0,
    sent: 0,
    closedBy: null,
    socketErrno: 0,
    displayError: null,
    notes: [],
  };
  private readonly ifaces = new Map<number, string>([[1, "wl_display"]]);
  private readonly reader = new WireReader();
  private readonly frameCallbacks = new Set<number>();
  private xdgGlobal: { name: number; version: number } | null = null;
  private sendFailed = false;
  private wmBase = 0;
  /** Each toplevel's xdg-shell life cycle: which configure to ack, when buffers may go. */
  readonly xdgState = new XdgConfigureState();
  /** The attach each wl_surface has pending, in the order the client sent them. */
  private readonly sentAttach = new Map<number, number>();
  /** The wl_display.sync that follows each NULL commit, by the commit's effect. */
  private readonly syncAfter = new WeakMap<SurfaceEffect, number>();
  /** wl_display.sync callbacks sent after an unmapping commit -> their wl_surface. */
  private readonly unmapSyncs = new Map<number, number>();
  /**
   * Requests held, in order, behind a buffer attach to a surface waiting for a configure;
   * their fds are dups owned here.
   */
  private held: { bytes: Uint8Array; fds: number[]; owned: number[]; effect?: SurfaceEffect }[] =
    [];

  constructor(
    private readonly proc: WlClientProcess,
    opts: { xdg?: boolean } = {},
  ) {
    super();
    this.xdg = opts.xdg ?? true;
    proc.onData((bytes, fds) => this.receive(bytes, fds));
    proc.onSocketClosed((errno) => {
      this.stats.closedBy ??= "server";
      this.stats.socketErrno = errno;
      this.closedByPeer(errno ? `socket error ${errno}` : "closed by the compositor");
    });
  }

  /** Requests still held behind a buffer attach that waits for a configure. */
  get heldCount(): number {
    return this.held.length;
  }

  get bufferedBytes(): number {
    return 0;
  }

  /** The interface of a live object id as this side tracks it. */
  interfaceOf(id: number): string | undefined {
    return this.ifaces.get(id);
  }

  send(frameBytes: Uint8Array, fds: readonly number[] = []): void {
    if (this.closed) return;
    let frame: ReturnType<typeof decodeFrame>;
    try {
      frame = decodeFrame(frameBytes, {
        maxFrameBytes: 1 << 20,
        maxSyscallFrameBytes: 1 << 20,
        maxDepth: 2,
        maxStringBytes: 1 << 20,
        maxFds: 28,
      });
    } catch (e) {
      if (!isProtocolError(e)) throw e;
      const cut = this.truncated(frameBytes, fds);
      if (cut) {
        this.stats.notes.push(`sent a ${cut.length}-byte cut wire message (${e.code} frame)`);
        this.put(cut, [...fds]);
        return;
      }
      this.stats.notes.push(`sent ${frameBytes.length} undecodable frame bytes raw (${e.code})`);
      this.put(frameBytes, [...fds]);
      return;
    }
    if (frame.kind !== "message") {
      this.stats.notes.push("syscall frame dropped: a real client makes its syscalls itself");
      return;
    }
    const { objectId, opcode, args } = frame;
    const iface = this.ifaces.get(objectId);
    const spec = iface ? interfaceSpec(iface)?.requests[opcode] : undefined;
    let out: { bytes: Uint8Array; fds: number[] } | undefined;
    let bySchema = false;
    if (spec && spec.args.length === args.length) {
      try {
        // An fd argument is its slot in `fds` (validate.ts checkOutgoing); on the wire it is
        // the fd itself, in the ancillary data.
        const wireArgs = spec.args.map((s, i) =>
          s.type === "fd" ? fds[args[i] as number] : args[i],
        );
        out = encodeWire(objectId, opcode, spec.args, wireArgs);
        this.track(spec.args, wireArgs);
        bySchema = true;
      } catch (e) {
        if (!(e instanceof WireError)) throw e;
        out = undefined;
      }
    }
    if (!out) {
      // A request the schema does not describe (hostile raw()): encoded by its values'
      // types, every fd attached.
      try {
        out = { bytes: encodeWire(objectId, opcode, inferSpec(args), args).bytes, fds: [...fds] };
      } catch (e) {
        if (!(e instanceof WireError)) throw e;
        this.stats.notes.push(`unencodable request ${objectId}.${opcode}: ${e.message}`);
        return;
      }
    }
    // xdg_surface: "the client must ... ack_configure ... before committing a buffer"
    const effect: SurfaceEffect | undefined =
      bySchema && iface === "wl_surface" && spec?.name === "attach"
        ? { surface: objectId, attach: args[0] as number }
        : bySchema && iface === "wl_surface" && spec?.name === "commit"
          ? { surface: objectId, commit: true }
          : undefined;
    const sync = effect && this.syncFor(effect);
    this.put(out.bytes, out.fds, effect);
    if (sync !== undefined) this.request(1, "sync", [sync]);
    if (!bySchema) return;
    if (iface === "wl_registry" && spec?.name === "bind" && args[1] === "wl_compositor")
      this.bindXdg();
    if (iface === "wl_compositor" && spec?.name === "create_surface")
      this.makeToplevel(args[0] as number);
    if (iface === "wl_surface" && spec?.name === "frame")
      this.frameCallbacks.add(args[0] as number);
  }

  /**
   * A msgpack frame cut short (protocol-garbage's malformed-bytes, disconnect-mid-request's
   * half-frame) means "this message, cut": the same message on the wire, with only the
   * bytes of the header and arguments the cut frame still held, and at least one byte
   * short. A libwayland server cannot tell such a message from one still arriving.
   */
  private truncated(b: Uint8Array, fds: readonly number[]): Uint8Array | undefined {
    const pre = msgpackPrefix(b);
    if (pre.objectId === undefined || pre.opcode === undefined) return undefined;
    const iface = this.ifaces.get(pre.objectId);
    const spec = iface ? interfaceSpec(iface)?.requests[pre.opcode] : undefined;
    if (!spec) return undefined;
    const args = spec.args.map((a, i) => {
      if (a.type === "fd") return fds[i] ?? 0;
      const v = pre.args[i];
      if (a.type === "string") return typeof v === "string" ? v : "";
      return typeof v === "number" ? v : 0;
    });
    let full: Uint8Array;
    try {
      full = encodeWire(pre.objectId, pre.opcode, spec.args, args).bytes;
    } catch (e) {
      if (e instanceof WireError) return undefined;
      throw e;
    }
    let kept = 8;
    spec.args.forEach((a, i) => {
      if (i < pre.args.length && a.type !== "fd")
        kept += a.type === "string" || a.type === "array" ? full.length : 4;
    });
    return full.subarray(0, Math.min(kept, full.length - 1));
  }

  private track(spec: readonly WireArgSpec[], args: readonly unknown[]): void {
    spec.forEach((s, i) => {
      if (s.type !== "new_id") return;
      // wl_registry.bind's untyped new_id names its interface two arguments earlier
      const name = s.interface ?? (args[i - 2] as string);
      this.ifaces.set(args[i] as number, name);
    });
  }

  /** A request of this transport's own, in order behind what is held (`now`: ahead of it). */
  private request(objectId: number, name: string, args: unknown[], now = false): void {
    const iface = this.ifaces.get(objectId)!;
    const spec = interfaceSpec(iface)!;
    const opcode = spec.requests.findIndex((r) => r.name === name);
    const m = spec.requests[opcode];
    const out = encodeWire(objectId, opcode, m.args, args);
    this.track(m.args, args);
    if (now) this.write(out.bytes, out.fds);
    else this.put(out.bytes, out.fds);
  }

  private bindXdg(): void {
    if (!this.xdg || !this.xdgGlobal || this.wmBase) return;
    const version = Math.min(this.xdgGlobal.version, 2);
    this.wmBase = this.allocate("xdg_wm_base", version);
    this.request(this.registryId(), "bind", [
      this.xdgGlobal.name,
      "xdg_wm_base",
      version,
      this.wmBase,
    ]);
  }

  private registryId(): number {
    for (const [id, n] of this.ifaces) if (n === "wl_registry") return id;
    throw new WireTransportError("no wl_registry");
  }

  private makeToplevel(surface: number): void {
    if (!this.wmBase) return;
    const xs = this.allocate("xdg_surface", 1);
    this.request(this.wmBase, "get_xdg_surface", [xs, surface]);
    const top = this.allocate("xdg_toplevel", 1);
    this.request(xs, "get_toplevel", [top]);
    this.request(top, "set_title", ["shmlab"]);
    this.request(surface, "commit", []);
    this.xdgState.created(xs, surface);
  }

  /** A buffer attach to a surface with no acked configure since its (re)initial commit. */
  private mustWait(effect: SurfaceEffect | undefined): boolean {
    return (
      effect?.attach !== undefined &&
      effect.attach !== 0 &&
      this.xdgState.waitsForConfigure(effect.surface)
    );
  }

  /**
   * Puts bytes on the wire now, or holds them: a buffer attach to a surface waiting for a
   * configure, and everything after it (order is kept across objects, since a later
   * request may destroy what a held one names).
   */
  private put(bytes: Uint8Array, fds: number[], effect?: SurfaceEffect): void {
    if (this.held.length > 0 || this.mustWait(effect)) {
      // libwayland-client dups an fd argument when it marshals the request
      // (wl_closure_marshal: wl_os_dupfd_cloexec), so the application may close its fd at
      // once — as scene() does right after create_pool. Held requests need the same.
      const dups: number[] = [];
      for (const fd of fds) {
        const r = this.callHelper(OP.DUP, [fd]);
        dups.push(r && r.status >= 0 ? r.vals[0] : fd);
      }
      this.held.push({ bytes, fds: dups, owned: dups.filter((d, i) => d !== fds[i]), effect });
      return;
    }
    this.write(bytes, fds);
    this.written(effect);
  }

  /** Sends held requests from the front until one still waits for its configure. */
  private drain(): void {
    while (this.held.length > 0 && !this.mustWait(this.held[0].effect)) {
      const h = this.held.shift()!;
      this.write(h.bytes, h.fds);
      for (const fd of h.owned) this.callHelper(OP.CLOSE, [fd]);
      this.written(h.effect);
    }
  }

  /**
   * Every NULL commit on a toplevel is followed by a wl_display.sync, whose `done` says the
   * compositor has read the commit (and, if it unmapped the toplevel, forgotten the
   * configures it had sent). It is queued here, when the client sends the commit, not when
   * the commit leaves the hold: the callback's id must reach the compositor in the order
   * ids were allocated, and the requests held behind it may create objects
   * (wl_map_insert_at in wayland-util.c refuses an id past the next free one).
   */
  private syncFor(effect: SurfaceEffect): number | undefined {
    if (effect.attach !== undefined) {
      this.sentAttach.set(effect.surface, effect.attach);
      return undefined;
    }
    const attach = this.sentAttach.get(effect.surface);
    this.sentAttach.delete(effect.surface);
    if (attach !== 0 || this.xdgState.phaseOf(effect.surface) === undefined) return undefined;
    const cb = this.allocate("wl_callback", 1);
    this.syncAfter.set(effect, cb);
    return cb;
  }

  /** An attach or commit is on the wire: the toplevel's life cycle moves. */
  private written(effect: SurfaceEffect | undefined): void {
    if (!effect) return;
    if (effect.attach !== undefined) this.xdgState.attached(effect.surface, effect.attach);
    if (!effect.commit || this.xdgState.committed(effect.surface) !== "unmapped") return;
    const cb = this.syncAfter.get(effect);
    if (cb !== undefined) this.unmapSyncs.set(cb, effect.surface);
  }

  /** The unmapping commit was read: do the initial commit again (xdg_surface). */
  private unmapSettled(surface: number): void {
    this.xdgState.unmapSettled(surface);
    this.request(surface, "commit", [], true);
    this.stats.notes.push(`surface ${surface} unmapped by a NULL commit: initial commit redone`);
  }

  private callHelper(op: number, args: number[]) {
    try {
      return this.proc.call(op, args);
    } catch (e) {
      if (!(e instanceof WlClientError)) throw e;
      return undefined;
    }
  }

  private write(bytes: Uint8Array, fds: number[]): void {
    if (this.closed) return;
    let r: ReturnType<WlClientProcess["call"]>;
    try {
      r = this.proc.call(OP.SEND, fds, bytes);
    } catch (e) {
      if (!(e instanceof WlClientError)) throw e;
      this.stats.closedBy ??= "client";
      this.closedByPeer("the client's process is gone");
      return;
    }
    if (r.status < 0) {
      // EPIPE / ECONNRESET / ENOTCONN: the compositor has closed the connection (its EOF
      // follows or came); noted once, later requests are dropped as libwayland-client does.
      if (!this.sendFailed) this.stats.notes.push(`sendmsg failed: errno ${-r.status}`);
      this.sendFailed = true;
      return;
    }
    this.stats.sent++;
  }

  private receive(bytes: Uint8Array, fds: number[]): void {
    this.reader.push(bytes, fds);
    for (;;) {
      let m: (WireMessage & { spec: { name: string } | null }) | undefined;
      try {
        m = this.reader.next((id, op) => {
          const iface = this.ifaces.get(id);
          return (iface && interfaceSpec(iface)?.events[op]) || null;
        });
      } catch (e) {
        if (!(e instanceof WireError)) throw e;
        this.stats.notes.push(`undecodable event stream: ${e.message}`);
        this.close("undecodable events");
        return;
      }
      if (!m) return;
      if (!m.spec) {
        this.stats.eventsDropped++;
        continue;
      }
      this.dispatch(m, m.spec.name);
    }
  }

  private dispatch(m: WireMessage, name: string): void {
    const iface = this.ifaces.get(m.objectId)!;
    if (iface === "wl_display" && name === "error") {
      const [obj, code, message] = m.args as [number, number, string];
      this.stats.displayError = {
        objectId: obj,
        interface: this.ifaces.get(obj) ?? "unknown",
        code,
        message,
      };
    }
    if (iface === "wl_registry" && name === "global" && m.args[1] === "xdg_wm_base")
      this.xdgGlobal = { name: m.args[0] as number, version: m.args[2] as number };
    if (iface === "wl_callback" && name === "done" && this.frameCallbacks.delete(m.objectId))
      this.stats.framesDone++;
    const unmapped = iface === "wl_callback" && name === "done" && this.unmapSyncs.get(m.objectId);
    if (unmapped) {
      this.unmapSyncs.delete(m.objectId);
      this.unmapSettled(unmapped);
    }
    if (iface.startsWith("xdg_")) {
      this.xdgEvent(m, iface, name);
      return;
    }
    if (!getInterface(BASE_SCHEMA, iface)) {
      this.stats.eventsDropped++;
      return;
    }
    // Up to the ProtocolClient as one of shmlab's own frames.
    const spec = getInterface(BASE_SCHEMA, iface)!.events[m.opcode];
    // protocol/client.ts validates enum values in events, libwayland-client does not: a
    // format the schema does not list (pixman offers RGBX8888, RGB565 ...) is only news
    // that the client would ignore, so it stays here instead of ending the connection.
    const unknownEnum = spec.args.findIndex(
      (a, i) =>
        a.type === "enum" &&
        a.enum &&
        !findEnum(BASE_SCHEMA, a.enum)?.entries.some((e) => e.value === m.args[i]),
    );
    if (unknownEnum >= 0) {
      this.stats.eventsDropped++;
      return;
    }
    const fdSlots: number[] = [];
    const args = m.args.map((v, i) => {
      if (spec.args[i]?.type !== "fd") return v;
      fdSlots.push(v as number);
      return fdSlots.length - 1;
    });
    this.messageHandler(encodeMessage(m.objectId, m.opcode, args), fdSlots);
  }

  private xdgEvent(m: WireMessage, iface: string, name: string): void {
    if (iface === "xdg_wm_base" && name === "ping") {
      this.request(m.objectId, "pong", [m.args[0]]);
    } else if (iface === "xdg_surface" && name === "configure") {
      const serial = m.args[0] as number;
      if (this.xdgState.configure(m.objectId, serial) === "stale") {
        // sent before the compositor read our unmapping commit: it no longer knows it
        this.stats.notes.push(`configure ${serial} not acked: sent before the unmap was read`);
        return;
      }
      this.stats.configures++;
      // the ack goes straight out, before the held attach and commit it must precede
      const out = encodeWire(m.objectId, 4, XDG_INTERFACES.xdg_surface.requests[4].args, [serial]);
      this.write(out.bytes, out.fds);
      this.drain();
    } else if (iface === "xdg_toplevel" && name === "close") {
      this.stats.notes.push("xdg_toplevel.close received");
    }
  }

  protected doClose(): void {
    // After wl_display.error the compositor closes the connection itself
    // (wl_resource_post_error marks the client, wl_client_connection_data destroys it):
    // keep reading, so the observation says who really closed it.
    if (this.stats.displayError) return;
    this.stats.closedBy ??= "client";
    try {
      this.proc.call(OP.SHUTDOWN, []);
    } catch (e) {
      if (!(e instanceof WlClientError)) throw e;
    }
  }
}

/** What a request does to a surface's xdg life cycle: a wl_surface.attach or commit. */
interface SurfaceEffect {
  surface: number;
  /** The attached wl_buffer id (0: a NULL attach). */
  attach?: number;
  commit?: true;
}

/**
 * The complete items at the start of a cut msgpack frame [objectId, opcode, [args...]]:
 * only the value types shmlab's frames use (ints, strings, nil, arrays).
 */
export function msgpackPrefix(b: Uint8Array): {
  objectId?: number;
  opcode?: number;
  opcodeComplete: boolean;
  args: unknown[];
} {
  let pos = 0;
  const read = (): { v: unknown; array?: number } | undefined => {
    if (pos >= b.length) return undefined;
    const t = b[pos];
    const need = (n: number) => (pos + 1 + n <= b.length ? n : -1);
    const uint = (n: number) => {
      let v = 0;
      for (let i = 0; i < n; i++) v = v * 256 + b[pos + 1 + i];
      return v;
    };
    let n: number;
    const one = (item: { v: unknown; array?: number }) => {
      pos++;
      return item;
    };
    if (t <= 0x7f) return one({ v: t });
    if (t >= 0xe0) return one({ v: t - 256 });
    if (t >= 0x90 && t <= 0x9f) return one({ v: null, array: t & 0x0f });
    if (t === 0xc0) return one({ v: null });
    if (t >= 0xa0 && t <= 0xbf) {
      if ((n = need(t & 0x1f)) < 0) return undefined;
      const v = new TextDecoder().decode(b.subarray(pos + 1, pos + 1 + n));
      pos += 1 + n;
      return { v };
    }
    const sizes: Record<number, number> = { 204: 1, 205: 2, 206: 4, 208: 1, 209: 2, 210: 4 };
    if (sizes[t] === undefined || need(sizes[t]) < 0) return undefined;
    let v = uint(sizes[t]);
    if (t >= 0xd0) v = v >= 2 ** (8 * sizes[t] - 1) ? v - 2 ** (8 * sizes[t]) : v;
    pos += 1 + sizes[t];
    return { v };
  };
  const out: { objectId?: number; opcode?: number; opcodeComplete: boolean; args: unknown[] } = {
    opcodeComplete: false,
    args: [],
  };
  const head = read();
  if (head?.array !== 3) return out;
  const id = read();
  if (!id || typeof id.v !== "number") return out;
  out.objectId = id.v;
  const op = read();
  if (!op || typeof op.v !== "number") return out;
  out.opcode = op.v;
  const list = read();
  if (!list || list.array === undefined) return out;
  out.opcodeComplete = true;
  for (let i = 0; i < list.array; i++) {
    const a = read();
    if (!a || a.array !== undefined) break;
    out.args.push(a.v);
  }
  return out;
}
