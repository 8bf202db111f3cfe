/**
 * The timeline of a run: the kernel's and the compositor's events that explain a verdict
 * (a truncation, the SIGBUS at its address, the handler, the protocol error, a policy's
 * notice), each stamped with the frame it happened in. One formatter for the run's record
 * and for the fuzzer's event log, so that both read the same way.
 */
import type { Compositor } from "../compositor/compositor.ts";
import { getInterface, type Schema } from "../protocol/schema.ts";
import type { Kernel } from "../shm/kernel.ts";
import type { TimelineEvent } from "./record.ts";

/** Kernel event kinds worth a line: what happened to memory, not every syscall. */
export const TIMELINE_KINDS: ReadonlySet<string> = new Set([
  "ftruncate",
  "SIGBUS",
  "SIGSEGV",
  "killed",
  "punch-hole",
  "add-seals",
  "fork",
  "uffd-fault",
]);

export const TIMELINE_CAP = 300;

/** The name of an error code as the interface that posts it defines it. */
export function errorName(schema: Schema, iface: string, code: number): string {
  // libwayland posts wl_shm error codes on wl_buffer and wl_shm_pool resources too.
  for (const name of [iface, "wl_shm", "wl_display"]) {
    const e = getInterface(schema, name)?.enums.find((x) => x.name === "error");
    const entry = e?.entries.find((x) => x.value === code);
    if (entry && (name === iface || iface === "wl_buffer" || iface === "wl_shm_pool")) {
      return `${name}.${entry.name}`;
    }
  }
  // A code the enum does not name, as the implementation wrote it: Hyprland's
  // `r->error(-1, ...)` arrives as 4294967295 and is shown as -1.
  return `${iface}#${code >= 0x80000000 ? code | 0 : code}`;
}

/** `k=v` pairs of a kernel event's detail, addresses in hex. */
export function formatDetail(detail: Record<string, unknown>): string {
  return Object.entries(detail)
    .map(([k, v]) => `${k}=${typeof v === "number" && k === "addr" ? `0x${v.toString(16)}` : v}`)
    .join(" ");
}

/** One event as one line, as `shmlab compare` prints a run and `shmlab review` sets two side by side. */
export function eventLine(e: TimelineEvent): string {
  return `[frame ${e.frame}] ${e.who}: ${e.what}${e.detail ? ` ${e.detail}` : ""}`;
}

/** Collects a run's events as they happen; `harvest` picks up what is new since last time. */
export class Timeline {
  readonly events: TimelineEvent[] = [];
  /** The frame new events are stamped with. */
  frame = 0;
  private seen = { kernel: 0, errors: 0, notices: 0 };

  constructor(
    private readonly kernel: Kernel,
    private readonly comp: Compositor,
    private readonly cap = TIMELINE_CAP,
  ) {}

  note(who: string, what: string, detail?: string): void {
    if (this.events.length < this.cap) this.events.push({ frame: this.frame, who, what, detail });
  }

  harvest(): void {
    const ev = this.kernel.events ?? [];
    for (; this.seen.kernel < ev.length; this.seen.kernel++) {
      const e = ev[this.seen.kernel];
      if (!TIMELINE_KINDS.has(e.kind)) continue;
      const who = this.kernel.processes.get(e.pid)?.name ?? `pid ${e.pid}`;
      this.note(who, e.kind, formatDetail(e.detail));
    }
    const comp = this.comp;
    for (; this.seen.errors < comp.errors.length; this.seen.errors++) {
      const e = comp.errors[this.seen.errors];
      const name = errorName(comp.server.schema, e.interface, e.code);
      this.note(
        "compositor",
        "protocol error",
        `${e.client}: ${name} on ${e.interface}@${e.objectId}: ${e.message}`,
      );
    }
    for (; this.seen.notices < comp.notices.length; this.seen.notices++) {
      const n = comp.notices[this.seen.notices];
      this.note("compositor", "policy", `${n.client} ${n.pool}: ${n.what}`);
    }
  }
}
