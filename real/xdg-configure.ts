/**
 * Which xdg_surface.configure a real client may ack, and when its buffers may go out: the
 * xdg-shell life cycle of one toplevel, as a correct client keeps it (xdg-shell.xml,
 * xdg_surface and xdg_toplevel), without any I/O so that it can be checked over recorded
 * event orders (test/xdg-configure.test.ts).
 *
 * The rule that needs it: "A newly-unmapped surface is considered to have met condition (1)
 * out of the 3 required conditions for mapping a surface if its role surface has not been
 * destroyed, i.e. the client must perform the initial commit again before attaching a
 * buffer" (xdg_surface), and a toplevel is unmapped by "a commit without any buffer
 * attached" once mapped (xdg_toplevel). The compositor forgets every configure it sent
 * before that commit: wlroots 0.15's handle_xdg_surface_precommit calls unmap_xdg_surface on
 * a NULL commit of a configured, mapped surface, which destroys every entry of
 * configure_list and clears `configured` (types/xdg_shell/wlr_xdg_surface.c). Acking one of
 * those serials afterwards is xdg_wm_base.invalid_surface_state, "wrong configure serial"
 * (xdg_surface_handle_ack_configure finds no entry) — fuzz finding 10 in
 * docs/real-compositors.md, which the old transport (ack every configure on arrival) caused.
 *
 * A configure sent before the compositor read the NULL commit can still arrive after the
 * client sent it; the client cannot tell it from one sent later by its serial. So the NULL
 * commit is followed by a wl_display.sync: the compositor answers it after it has handled
 * the commit (requests are dispatched in order), and every configure that arrives before
 * that `done` is stale and is not acked. After the `done` the client redoes the initial
 * commit (no buffer) and holds its buffer attaches until a configure answers it, which it
 * acks: the same path as the first mapping.
 */

/** Where one toplevel is in its life cycle, as the client knows it. */
export type XdgPhase =
  /** Initial commit sent; no configure acked since: buffers wait. */
  | "awaiting-configure"
  /** A configure acked; no buffer committed since. */
  | "configured"
  /** A buffer committed after an acked configure: the compositor has mapped it. */
  | "mapped"
  /** A NULL commit unmapped it; the sync sent after it has not come back. */
  | "unmapping";

/** What the client does with a configure. */
export type ConfigureDecision = "ack" | "stale" | "unknown";

interface Toplevel {
  xdgSurface: number;
  phase: XdgPhase;
  /** The attach since the last commit: none, a NULL attach, or a buffer. */
  pending: "none" | "null" | "buffer";
  stale: number[];
}

export class XdgConfigureState {
  private readonly bySurface = new Map<number, Toplevel>();

  /** get_xdg_surface + get_toplevel + the initial commit went out for `surface`. */
  created(xdgSurface: number, surface: number): void {
    this.bySurface.set(surface, {
      xdgSurface,
      phase: "awaiting-configure",
      pending: "none",
      stale: [],
    });
  }

  /** A wl_surface.attach went out (buffer 0 is a NULL attach). */
  attached(surface: number, buffer: number): void {
    const t = this.bySurface.get(surface);
    if (t) t.pending = buffer === 0 ? "null" : "buffer";
  }

  /**
   * A wl_surface.commit went out. Returns "unmapped" when it unmapped a mapped toplevel:
   * the caller then sends wl_display.sync and calls `unmapSettled` on its `done`.
   */
  committed(surface: number): "unmapped" | null {
    const t = this.bySurface.get(surface);
    if (!t) return null;
    const pending = t.pending;
    t.pending = "none";
    // handle_xdg_surface_commit: `configured && wlr_surface_has_buffer` maps the surface
    if (pending === "buffer" && t.phase === "configured") t.phase = "mapped";
    // handle_xdg_surface_precommit: a NULL commit unmaps only a configured, mapped surface
    if (pending === "null" && t.phase === "mapped") {
      t.phase = "unmapping";
      return "unmapped";
    }
    return null;
  }

  /** The sync sent after the unmapping commit came back: redo the initial commit. */
  unmapSettled(surface: number): void {
    const t = this.bySurface.get(surface);
    if (t?.phase === "unmapping") t.phase = "awaiting-configure";
  }

  /** An xdg_surface.configure arrived: ack it, or not (sent before the unmap was read). */
  configure(xdgSurface: number, serial: number): ConfigureDecision {
    for (const t of this.bySurface.values()) {
      if (t.xdgSurface !== xdgSurface) continue;
      if (t.phase === "unmapping") {
        t.stale.push(serial);
        return "stale";
      }
      if (t.phase === "awaiting-configure") t.phase = "configured";
      return "ack";
    }
    return "unknown";
  }

  /** A buffer attached to `surface` must wait (no configure acked since the initial commit). */
  waitsForConfigure(surface: number): boolean {
    const p = this.bySurface.get(surface)?.phase;
    return p === "awaiting-configure" || p === "unmapping";
  }

  phaseOf(surface: number): XdgPhase | undefined {
    return this.bySurface.get(surface)?.phase;
  }

  /** Serials not acked because they were stale, per surface (for the run's notes). */
  staleSerials(): number[] {
    return [...this.bySurface.values()].flatMap((t) => t.stale);
  }
}
