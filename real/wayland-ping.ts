/**
 * Readiness of a Wayland compositor: its socket existing is not enough (sway creates it in
 * server_init, long before wl_display_run; a SIGTERM before that is lost, because
 * wl_display_run sets `run = true` again). It is ready once it answers a round trip:
 * wl_display.get_registry then wl_display.sync, and the sync's wl_callback.done arrives.
 * Two fixed messages, no fds: the full wire codec lives in protocol/.
 */
import { connect } from "node:net";

/** Header word 2: size << 16 | opcode (wayland-client's wl_connection format, little-endian). */
function message(objectId: number, opcode: number, arg: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32LE(objectId, 0);
  b.writeUInt32LE((12 << 16) | opcode, 4);
  b.writeUInt32LE(arg, 8);
  return b;
}

const WL_DISPLAY = 1;
const SYNC = 0;
const GET_REGISTRY = 1;
const CALLBACK_ID = 3;

/** Resolves when the compositor answered one round trip; rejects on close or timeout. */
export function pingWayland(socket: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let buf = Buffer.alloc(0);
    const timer = setTimeout(
      () => done(new Error(`no answer on ${socket} in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const done = (err?: Error) => {
      clearTimeout(timer);
      s.destroy();
      if (err) reject(err);
      else resolve();
    };
    s.on("connect", () => {
      s.write(
        Buffer.concat([
          message(WL_DISPLAY, GET_REGISTRY, 2),
          message(WL_DISPLAY, SYNC, CALLBACK_ID),
        ]),
      );
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
    s.on("error", (e) => done(e));
    s.on("close", () => done(new Error(`${socket} closed before answering`)));
  });
}
