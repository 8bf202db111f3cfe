/**
 * An X11 observation as the facts the lab's verdict rules read (lab/verdict.ts RunFacts,
 * matched by shape: real/ sits below lab/ and imports nothing from it), so a real Xvfb cell
 * and a model xorg-mit-shm cell are classified by the same rules:
 *
 *   import { verdictOf } from "../lab/verdict.ts";
 *   const { verdict, cell } = verdictOf(x11RunFacts(await x11Driver.run(instance, plan)));
 *
 * - xErrors: every X error reply, in order (Xorg kept the client after each);
 * - faultsHandled: the SIGBUS the server survived, seen two ways: ShmBusfaultNotify's log
 *   line ("busfault:" notes), or a put that completed although its pixels lay beyond the
 *   file's end when the server read it ("sigbus (inferred)"), counted once per client;
 * - notices: the busfault lines (the model's "segment freed" notice);
 * - closedBy: "compositor" when the server closed the socket, "client" when it left;
 * - death: the exit signal, with the fault the server's log noted (faultNoted) as its cause.
 */
import type { RealClientObservation, RealRunObservation } from "./target.ts";

function faults(c: RealClientObservation): number {
  const logged = c.notes.some((n) => n.startsWith("busfault:"));
  const inferred = c.notes.some((n) => n.startsWith("sigbus (inferred)"));
  return logged || inferred ? 1 : 0;
}

export function x11RunFacts(o: RealRunObservation) {
  return {
    compositor: {
      alive: o.compositor.alive,
      death: o.compositor.exit
        ? {
            signal: o.compositor.exit.signal ?? `exit ${o.compositor.exit.code}`,
            // The server's own word, not a guess: Xvfb aborts on a fault it caught, so the
            // signal alone (SIGABRT) does not say a SIGBUS killed it; its log line does.
            reason: o.compositor.faultNoted ? "fault logged" : "no fault logged",
            cause: o.compositor.faultNoted ?? "",
          }
        : null,
      faultsHandled: o.clients.reduce((n, c) => n + faults(c), 0),
      zeroPages: 0,
    },
    clients: o.clients.map((c) => ({
      label: `${c.behaviour}#${c.index}`,
      honest: c.honest,
      closedBy:
        c.connection === "closed-by-server"
          ? ("compositor" as const)
          : c.connection === "closed-by-client"
            ? ("client" as const)
            : null,
      protocolError: null,
      pixels: c.pixels,
      committed: c.commits > 0,
      killed: c.killed?.signal ? { signal: c.killed.signal, reason: "killed" } : null,
      notices: c.notes.filter((n) => n.startsWith("busfault:")),
      xErrors: c.errors.map((e) => e.error),
    })),
  };
}
