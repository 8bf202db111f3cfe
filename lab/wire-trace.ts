/**
 * A run's wire traffic as people read it: the compositor's WAYLAND_DEBUG=server trace
 * (protocol/wayland-debug.ts), every client in one stream with its label in libwayland's
 * `{name}` slot, and between the messages, as `#` comment lines, what the kernel and the
 * policy did meanwhile — ftruncate, seals, fork, the SIGBUS at its address, the compositor's
 * own mappings (the handler's zero page over the fault), its death, the policy's notes.
 *
 * Times are the run's virtual clock (lab/run.ts: frame n starts at (n-1)/60 s, each action
 * adds 0.1 µs), so the trace of a seed is the same every time.
 */
import type { Compositor } from "../compositor/compositor.ts";
import type { TracedMessage } from "../protocol/server.ts";
import { formatDebugComment, formatDebugLine } from "../protocol/wayland-debug.ts";
import type { Kernel } from "../shm/kernel.ts";
import { formatDetail, TIMELINE_KINDS } from "./timeline.ts";

/** More lines than any run of the catalogue writes; a flood is cut, and says so. */
export const TRACE_CAP = 20_000;

/** Beside the timeline's kernel events, the compositor's own mappings (the handler's zero page). */
const COMPOSITOR_ONLY = new Set(["mmap", "munmap", "mremap"]);

export class WireTracer {
  private seenKernel = 0;
  private seenNotices = 0;
  private compositor: Compositor | null = null;

  /**
   * @param lines where the trace goes (the caller's: a run that throws keeps what it wrote)
   * @param nowMs the run's virtual clock
   */
  constructor(
    private readonly kernel: Kernel,
    private readonly nowMs: () => number,
    readonly lines: string[],
  ) {}

  /** The compositor whose process and policy notices the comments follow. */
  watch(comp: Compositor): void {
    this.compositor = comp;
  }

  /** ServerOptions.onMessage: one WAYLAND_DEBUG line, after what happened before it. */
  readonly message = (m: TracedMessage): void => {
    this.flush();
    this.push(
      formatDebugLine(
        {
          timeUs: this.nowUs(),
          send: m.direction === "event",
          queue: m.client.label,
          interface: m.interface,
          objectId: m.objectId,
          spec: m.spec,
          args: m.args,
        },
        (id) => m.client.resource(id)?.interface,
      ),
    );
  };

  /** Writes the kernel events and policy notices not yet in the trace. */
  flush(): void {
    const ev = this.kernel.events ?? [];
    const compPid = this.compositor?.proc.pid;
    for (; this.seenKernel < ev.length; this.seenKernel++) {
      const e = ev[this.seenKernel];
      if (!TIMELINE_KINDS.has(e.kind) && !(COMPOSITOR_ONLY.has(e.kind) && e.pid === compPid))
        continue;
      const who = this.kernel.processes.get(e.pid)?.name ?? `pid ${e.pid}`;
      this.comment(`${who}: ${e.kind} ${formatDetail(e.detail)}`.trimEnd());
    }
    const notices = this.compositor?.notices ?? [];
    for (; this.seenNotices < notices.length; this.seenNotices++) {
      const n = notices[this.seenNotices];
      this.comment(`compositor policy: ${n.client} ${n.pool}: ${n.what}`);
    }
  }

  private nowUs(): number {
    return Math.round(this.nowMs() * 1000);
  }

  private comment(text: string): void {
    this.push(formatDebugComment(this.nowUs(), text));
  }

  private push(line: string): void {
    if (this.lines.length < TRACE_CAP) this.lines.push(line);
    else if (this.lines.length === TRACE_CAP) this.lines.push(`# trace cut at ${TRACE_CAP} lines`);
  }
}
