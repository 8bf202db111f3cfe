/**
 * The verdict of a run, from plain facts: whether the compositor lived, and for each client
 * whether it is honest, how its connection ended, what error it received and what its
 * window showed. Nothing here knows the simulated kernel, so a run on a real compositor
 * (a process, a socket, screenshots) is classified by exactly the same rules as a
 * simulated one. docs/run-record.md states the rules in this order.
 *
 * The rules count every harm to an honest client. An honest client is harmed when its
 * pixels were ever wrong, when the compositor refused it (a protocol error), when the
 * compositor closed its connection, when its own process was killed, or when it committed
 * contents that were never shown: in each case its user lost their window.
 */
import type { HostileOutcome, PixelClass, Verdict } from "./record.ts";

/** Who ended a client's connection before the run ended; null: still connected. */
export type ClosedBy = "client" | "compositor" | null;

/** What is known of one client at the end of a run. */
export interface ClientFacts {
  label: string;
  honest: boolean;
  closedBy: ClosedBy;
  /** The wl_display.error it received, as `iface.name` (e.g. "wl_shm.invalid_fd"). */
  protocolError: string | null;
  /**
   * Honest clients: the worst class seen on any checked frame. Others: what their own
   * window showed on the last frame. "none": not shown. "unchecked": shown or not, nobody
   * could look (a real run without a capture): neither harm nor its absence, so a cell
   * that rests on it says "(unchecked)".
   */
  pixels: PixelClass | "none" | "unchecked";
  /** A commit with contents reached the compositor (so it asked to be shown). */
  committed: boolean;
  /** Its own process was killed (by a signal, the OOM killer...). */
  killed: { signal: string; reason: string } | null;
  /** What the compositor's policy did to it without an error (Xorg freeing a segment). */
  notices: readonly string[];
  /**
   * X11 errors it received while staying connected ("BadValue", "BadShmSeg"...), in order:
   * Xorg keeps a client after an error (a real X11 run: its error replies; the model:
   * Refusal.xError notices). Absent or empty for Wayland.
   */
  xErrors?: readonly string[];
}

/** What is known of the compositor at the end of a run. */
export interface CompositorFacts {
  alive: boolean;
  death: { signal: string; reason: string; cause: string } | null;
  /** SIGBUS it handled and survived (0 where a run cannot see them). */
  faultsHandled: number;
  /** Zero pages mapped beyond EOF for it by the kernel (a proposal), 0 where unknown. */
  zeroPages: number;
}

export interface RunFacts {
  compositor: CompositorFacts;
  /** Every client; the last is the client under test. */
  clients: readonly ClientFacts[];
}

export interface VerdictResult {
  verdict: Verdict;
  /** A few words for the matrix cell. */
  cell: string;
}

export type HarmKind = "pixels" | "refused" | "disconnected" | "killed" | "never-shown";

/** One way an honest client was harmed, with the words for the cell. */
export interface Harm {
  kind: HarmKind;
  text: string;
}

/** The harm done to one honest client, or null. Pixel harm first: it is what users see. */
export function honestHarm(c: ClientFacts): Harm | null {
  if (!c.honest) return null;
  if (c.pixels !== "correct" && c.pixels !== "none" && c.pixels !== "unchecked")
    return { kind: "pixels", text: c.pixels };
  if (c.protocolError) return { kind: "refused", text: `refused: ${shortError(c.protocolError)}` };
  if (c.closedBy === "compositor") return { kind: "disconnected", text: "honest disconnected" };
  if (c.killed) return { kind: "killed", text: `honest killed (${c.killed.signal})` };
  if (c.committed && c.pixels === "none") return { kind: "never-shown", text: "never shown" };
  return null;
}

/** What happened to a hostile client, from the facts alone. */
export function hostileOutcomeOf(
  c: ClientFacts,
  comp: CompositorFacts,
  protocolError: Extract<HostileOutcome, { kind: "disconnected" }> | null,
): HostileOutcome {
  if (protocolError) return protocolError;
  if (!comp.alive) {
    const d = comp.death;
    return {
      kind: "killed-compositor",
      how: `${d?.signal ?? "?"} (${d?.reason ?? "?"}): ${d?.cause ?? ""}`,
    };
  }
  const screen = c.pixels;
  // Dropped without a word: the compositor survived and did not tell it why.
  if (c.closedBy === "compositor")
    return { kind: "tolerated", how: "disconnected without an error", screen };
  if (comp.faultsHandled > 0)
    return {
      kind: "tolerated",
      how: c.notices[0] ?? `${comp.faultsHandled} SIGBUS handled`,
      screen,
    };
  // An X error with the client kept (Xorg): the client was told, and stays.
  const xErr = c.xErrors?.[0];
  if (xErr) return { kind: "x-error", error: xErr, message: c.notices[0] ?? xErr };
  if (comp.zeroPages > 0 || c.notices.length)
    return { kind: "tolerated", how: c.notices[0] ?? "zero pages mapped beyond EOF", screen };
  if (c.killed) return { kind: "self-destructed", how: `${c.killed.signal} (${c.killed.reason})` };
  return { kind: "undetected" };
}

function shortError(e: string): string {
  return e.replace(/^wl_(shm|display)\./, "");
}

/**
 * The verdict, in this order: died; honest-harmed (any honest client, bystander or under
 * test); for an honest client under test, ok; for a hostile one, error-to-client,
 * tolerated or undetected.
 */
export function verdictOf(facts: RunFacts): VerdictResult {
  const r = verdictOfFacts(facts);
  if (r.verdict === "died" || r.verdict === "honest-harmed") return r;
  // No harm found, but an honest client nobody could look at may have been harmed unseen.
  const unchecked = facts.clients.some((c) => c.honest && c.pixels === "unchecked");
  return unchecked && !r.cell.endsWith("(unchecked)")
    ? { verdict: r.verdict, cell: `${r.cell} (unchecked)` }
    : r;
}

function verdictOfFacts(facts: RunFacts): VerdictResult {
  const { compositor: comp, clients } = facts;
  if (!comp.alive) return { verdict: "died", cell: `DIED ${comp.death?.signal ?? ""}`.trim() };
  const harms = clients.map(honestHarm).filter((h): h is Harm => h !== null);
  if (harms.length) {
    const pixels = harms.filter((h) => h.kind === "pixels").map((h) => h.text);
    if (pixels.length) return { verdict: "honest-harmed", cell: `harmed: ${pixels.join("/")}` };
    return { verdict: "honest-harmed", cell: harms[0].text };
  }
  const under = clients[clients.length - 1];
  if (!under) return { verdict: "ok", cell: "ok" };
  if (under.honest)
    return { verdict: "ok", cell: under.pixels === "correct" ? "ok" : `ok (${under.pixels})` };
  if (under.protocolError)
    return { verdict: "error-to-client", cell: shortError(under.protocolError) };
  return verdictOfHostile(hostileOutcomeOf(under, comp, null));
}

function verdictOfHostile(o: HostileOutcome): VerdictResult {
  // Xorg answered with an X error and kept the client: the error reached the client.
  if (o.kind === "x-error") return { verdict: "error-to-client", cell: `${o.error} (kept)` };
  if (o.kind === "tolerated") {
    // What the client's own window showed at the end: the handler's zeros, or (a policy
    // that keeps a copy) its last good frame.
    const cell =
      o.how === "disconnected without an error"
        ? "disconnected, no error"
        : o.screen === "stale"
          ? "last frame kept, no error"
          : o.screen === "zero"
            ? "zeros, no error"
            : o.screen === "none"
              ? "survived, not shown, no error"
              : `survived (${o.screen}), no error`;
    return { verdict: "tolerated", cell };
  }
  return {
    verdict: "undetected",
    cell: o.kind === "self-destructed" ? "client died" : "no effect seen",
  };
}
