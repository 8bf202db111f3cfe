/**
 * Readiness of a Wayland compositor: its socket existing is not enough (sway creates it in
 * server_init, long before wl_display_run; a SIGTERM before that is lost, because
 * wl_display_run sets `run = true` again). It is ready once it answers a round trip:
 * wl_display.get_registry then wl_display.sync, and the sync's wl_callback.done arrives.
 * Two messages, no fds, encoded with protocol/wire.ts.
 */
import { connect } from "node:net";
import { BASE_SCHEMA, getInterface } from "../protocol/schema.ts";
import { encodeWire, type WireInterfaceSpec } from "../protocol/wire.ts";

/** Why a ping failed; TIMEOUT, CLOSED and SOCKET with ECONNREFUSED/ENOENT mean "not yet". */
export type PingCode =
  | "SHMLAB_ERR_PING_TIMEOUT"
  | "SHMLAB_ERR_PING_CLOSED"
  | "SHMLAB_ERR_PING_SOCKET";

export class WaylandPingError extends Error {
  constructor(
    readonly code: PingCode,
    message: string,
    /** The socket error's errno name (ECONNREFUSED, ENOENT...), for SHMLAB_ERR_PING_SOCKET. */
    readonly errno?: string,
  ) {
    super(message);
    this.name = "WaylandPingError";
  }

  /** A compositor still starting: its socket refuses, is not there yet, or does not answer. */
  get notYet(): boolean {
    return (
      this.code !== "SHMLAB_ERR_PING_SOCKET" ||
      this.errno === "ECONNREFUSED" ||
      this.errno === "ENOENT"
    );
  }
}

const WL_DISPLAY = 1;
const REGISTRY_ID = 2;
const CALLBACK_ID = 3;

/** wl_display.get_registry(2) then wl_display.sync(3), encoded by the project's wire codec. */
function roundTrip(): Buffer {
  const display = getInterface(BASE_SCHEMA, "wl_display") as WireInterfaceSpec;
  const req = (name: string, id: number) => {
    const opcode = display.requests.findIndex((r) => r.name === name);
    return encodeWire(WL_DISPLAY, opcode, display.requests[opcode].args, [id]).bytes;
  };
  return Buffer.concat([req("get_registry", REGISTRY_ID), req("sync", CALLBACK_ID)]);
}

/** Resolves when the compositor answered one round trip; rejects on close or timeout. */
export function pingWayland(socket: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let buf = Buffer.alloc(0);
    const timer = setTimeout(
      () =>
        done(
          new WaylandPingError(
            "SHMLAB_ERR_PING_TIMEOUT",
            `no answer on ${socket} in ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
    const done = (err?: Error) => {
      clearTimeout(timer);
      s.destroy();
      if (err) reject(err);
      else resolve();
    };
    s.on("connect", () => {
      s.write(roundTrip());
    });
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 8) {
        const size = buf.readUInt32LE(4) >>> 16;
        if (size < 8 || buf.length < size) break;
        if (buf.readUInt32LE(0) === CALLBACK_ID) return done();
        buf = buf.subarray(size);
      }
    });
    s.on("error", (e: NodeJS.ErrnoException) =>
      // the peer hanging up mid-write (a compositor restarting its listener) is a close
      done(
        e.code === "EPIPE" || e.code === "ECONNRESET"
          ? new WaylandPingError(
              "SHMLAB_ERR_PING_CLOSED",
              `${socket} closed before answering (${e.code})`,
            )
          : new WaylandPingError("SHMLAB_ERR_PING_SOCKET", `${socket}: ${e.message}`, e.code),
      ),
    );
    s.on("close", () =>
      done(new WaylandPingError("SHMLAB_ERR_PING_CLOSED", `${socket} closed before answering`)),
    );
  });
}
