/**
 * Messages in the WAYLAND_DEBUG format, as libwayland's wl_closure_print (connection.c,
 * wayland 1.23) prints them on the compositor's side:
 *
 *   [   1234.567] wl_surface#3.attach(wl_buffer#5, 0, 0)
 *   [   1234.567]  -> wl_buffer#5.release()
 *
 * "[%7u.%03u] " is the time in milliseconds and microseconds; a sent message (an event, on
 * the server) is prefixed " -> "; an optional "{name} " follows the time (libwayland's event
 * queue name; shmlab puts the client's label there, since one compositor trace holds every
 * client and object ids repeat between clients). Arguments: uint %u, int %d, fixed as
 * "%d.%08d" (the fraction times 390625 = 1e8 / 256), strings in double quotes (not escaped)
 * or nil, objects "iface#id" or nil, new ids "new id iface#id" ("[unknown]" for an untyped
 * one, as wl_registry.bind's), fds "fd %d". Wayland 1.23 writes "#" between interface and
 * id; releases before 1.22.91 wrote "@" (commit 6d33346, "debug: Replace @<id> with #<id>").
 */
import type { ArgSpec, MessageSpec } from "./schema.ts";

export interface DebugMessage {
  /** Microseconds since the start (shmlab's virtual clock in lab runs). */
  readonly timeUs: number;
  /** True for a message this side sent (an event, on the compositor's side). */
  readonly send: boolean;
  readonly queue?: string;
  readonly interface: string;
  readonly objectId: number;
  readonly spec: MessageSpec;
  readonly args: readonly unknown[];
}

/** The interface of a live object of the connection, for object arguments without one. */
export type ObjectResolver = (id: number) => string | undefined;

/** libwayland's `time / 1000, time % 1000` of an unsigned 32-bit microsecond count. */
export function debugTimestamp(timeUs: number): string {
  const t = Math.floor(timeUs) >>> 0;
  return `[${String(Math.floor(t / 1000)).padStart(7)}.${String(t % 1000).padStart(3, "0")}]`;
}

/** wl_closure_print's WL_ARG_FIXED case, on the 24.8 value's int32 bit pattern. */
export function debugFixed(f: number): string {
  const v = f | 0;
  // C's / and % truncate toward zero, as Math.trunc and JS's % do.
  if (v >= 0) return `${Math.trunc(v / 256)}.${String(390625 * (v % 256)).padStart(8, "0")}`;
  return `-${Math.trunc(v / -256)}.${String(-390625 * (v % 256)).padStart(8, "0")}`;
}

function arg(spec: ArgSpec, v: unknown, resolve: ObjectResolver): string {
  switch (spec.type) {
    case "uint":
    case "enum":
      return String(Number(v) >>> 0);
    case "int":
      return String(Number(v) | 0);
    case "fixed":
      return debugFixed(Number(v));
    case "string":
      return v === null || v === undefined ? "nil" : `"${String(v)}"`;
    case "object": {
      const id = Number(v) >>> 0;
      if (id === 0) return "nil";
      return `${spec.interface ?? resolve(id) ?? "[unknown]"}#${id}`;
    }
    case "new_id": {
      const id = Number(v) >>> 0;
      return `new id ${spec.interface ?? "[unknown]"}#${id === 0 ? "nil" : id}`;
    }
    case "fd":
      return `fd ${Number(v)}`;
  }
}

/** One message as one WAYLAND_DEBUG line (no newline). */
export function formatDebugLine(
  m: DebugMessage,
  resolve: ObjectResolver = () => undefined,
): string {
  const args = m.spec.args.map((s, i) => arg(s, m.args[i], resolve)).join(", ");
  return `${debugTimestamp(m.timeUs)} ${m.queue !== undefined ? `{${m.queue}} ` : ""}${m.send ? " -> " : ""}${m.interface}#${m.objectId}.${m.spec.name}(${args})`;
}

/** A line of something else (a kernel event) between the messages: "# " and the time. */
export function formatDebugComment(timeUs: number, text: string): string {
  return `# ${debugTimestamp(timeUs)} ${text}`;
}
