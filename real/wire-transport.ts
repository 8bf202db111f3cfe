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
 * ... ack_configure ... before committing a buffer", xdg-shell.xml, xdg_surface). Their
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

export class WireTransport extends BaseTransport {
  /** Allocates a client id in the ProtocolClient's map (set by the driver). */
  allocate: (iface: string, version: number) => number = () => {
    throw new Error("WireTransport.allocate is not set");
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
  private wmBase = 0;
  /** xdg_surface id -> wl_surface id, for surfaces waiting for their first configure. */
  private readonly unconfigured = new Set<number>();
  /** Requests held until the first configure; their fds are dups owned here. */
  private held: { bytes: Uint8Array; fds: number[]; owned: number[] }[] = [];

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
    if (spec && spec.args.length === args.length) {
      try {
        // An fd argument is its slot in `fds` (validate.ts checkOutgoing); on the wire it is
        // the fd itself, in the ancillary data.
        const wireArgs = spec.args.map((s, i) =>
          s.type === "fd" ? fds[args[i] as number] : args[i],
        );
        out = encodeWire(objectId, opcode, spec.args, wireArgs);
        this.track(spec.args, wireArgs);
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
    this.put(out.bytes, out.fds);
    if (iface === "wl_registry" && spec?.name === "bind" && args[1] === "wl_compositor")
      this.bindXdg();
    if (iface === "wl_compositor" && spec?.name === "create_surface")
      this.makeToplevel(args[0] as number);
    if (iface === "wl_surface" && spec?.name === "frame")
      this.frameCallbacks.add(args[0] as number);
  }

  private track(spec: readonly WireArgSpec[], args: readonly unknown[]): void {
    spec.forEach((s, i) => {
      if (s.type !== "new_id") return;
      // wl_registry.bind's untyped new_id names its interface two arguments earlier
      const name = s.interface ?? (args[i - 2] as string);
      this.ifaces.set(args[i] as number, name);
    });
  }

  private request(objectId: number, name: string, args: unknown[]): void {
    const iface = this.ifaces.get(objectId)!;
    const spec = interfaceSpec(iface)!;
    const opcode = spec.requests.findIndex((r) => r.name === name);
    const m = spec.requests[opcode];
    const out = encodeWire(objectId, opcode, m.args, args);
    this.track(m.args, args);
    this.put(out.bytes, out.fds);
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
    throw new Error("no wl_registry");
  }

  private makeToplevel(surface: number): void {
    if (!this.wmBase) return;
    const xs = this.allocate("xdg_surface", 1);
    this.request(this.wmBase, "get_xdg_surface", [xs, surface]);
    const top = this.allocate("xdg_toplevel", 1);
    this.request(xs, "get_toplevel", [top]);
    this.request(top, "set_title", ["shmlab"]);
    this.request(surface, "commit", []);
    this.unconfigured.add(xs);
  }

  /** Puts bytes on the wire now, or holds them while a surface waits for its configure. */
  private put(bytes: Uint8Array, fds: number[]): void {
    if (this.unconfigured.size > 0) {
      // libwayland-client dups an fd argument when it marshals the request
      // (wl_closure_marshal: wl_os_dupfd_cloexec), so the application may close its fd at
      // once — as scene() does right after create_pool. Held requests need the same.
      const dups: number[] = [];
      for (const fd of fds) {
        const r = this.callHelper(OP.DUP, [fd]);
        dups.push(r && r.status >= 0 ? r.vals[0] : fd);
      }
      this.held.push({ bytes, fds: dups, owned: dups.filter((d, i) => d !== fds[i]) });
      return;
    }
    this.write(bytes, fds);
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
      // EPIPE / ECONNRESET: the compositor has closed the connection; its EOF follows.
      this.stats.notes.push(`sendmsg failed: errno ${-r.status}`);
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
      this.stats.configures++;
      // ack goes straight out, before anything held (held requests include the commit it
      // must precede)
      const out = encodeWire(m.objectId, 4, XDG_INTERFACES.xdg_surface.requests[4].args, [
        m.args[0],
      ]);
      this.write(out.bytes, out.fds);
      if (this.unconfigured.delete(m.objectId) && this.unconfigured.size === 0) {
        const held = this.held;
        this.held = [];
        for (const h of held) {
          this.write(h.bytes, h.fds);
          for (const fd of h.owned) this.callHelper(OP.CLOSE, [fd]);
        }
      }
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
