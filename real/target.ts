/**
 * The contract between the three parts of the real-compositor judge (DESIGN.md, "Two judges"):
 *
 *   - supervision (real/instance.ts and one file per compositor: real/weston.ts, real/sway.ts,
 *     real/xvfb.ts ...): starts a real compositor headless with a private runtime dir, keeps
 *     its log, notices its death and the signal that caused it, stops it, and never leaves
 *     one running. It knows process names, versions, sockets and signals, not policies.
 *   - drivers (Wayland: a real client over the Wayland wire; X11: MIT-SHM over the X11 wire):
 *     run a catalogue behaviour, with honest bystanders beside it, as real clients with real
 *     memfds against a running instance, and report what each client observed.
 *   - the lab (lab/real-*.ts): turns an observation into the same facts a model run yields
 *     and classifies both with the same verdict rules, so a real cell and a model cell mean
 *     the same thing.
 *
 * Everything here is plain data, so observations can be logged, saved and compared.
 */

import type { HostileWindow } from "./hostile-window.ts";

/** The compositors shmlab knows how to start. */
export type RealKind = "weston" | "sway" | "xvfb" | "mutter" | "kwin" | "cage";

export type Availability =
  | { available: true; version: string; binary: string }
  | { available: false; why: string };

/** How a client reaches the instance. */
export type Endpoint =
  | { kind: "wayland"; socket: string }
  | { kind: "x11"; display: string; socket: string };

/** How a process ended: exactly one of code and signal is set ("SIGBUS", "SIGSEGV" ...). */
export interface ExitInfo {
  code: number | null;
  signal: string | null;
}

export interface RealInstance {
  readonly kind: RealKind;
  readonly version: string;
  readonly pid: number;
  readonly endpoint: Endpoint;
  /** The compositor's own stdout and stderr, for the record and for a failure's note. */
  readonly logPath: string;
  /** null while it runs. */
  exited(): ExitInfo | null;
  /** Stops it (SIGTERM, then SIGKILL after a grace period) and removes its runtime dir. */
  stop(): Promise<ExitInfo>;
  /** Its log's own account of a fatal fault ("Caught signal 7 (Bus error)"), where it has one. */
  faultNoted?(): string | null;
}

/** One run on a real instance: the behaviour under test plus `honest` honest bystanders. */
export interface RealRunPlan {
  behaviour: string;
  honest: number;
  seed: number;
  frames: number;
  params: Record<string, number | string | boolean>;
  /** Wall-clock bound for the whole run; a client still waiting then is reported as such. */
  timeoutMs: number;
}

export interface RealProtocolError {
  /** The interface of the object the error was posted on (wl_shm, wl_buffer, xdg_wm_base...). */
  interface: string;
  /** The error's enum name when known ("invalid_fd"), else the number as a string. */
  error: string;
  code: number;
  objectId: number;
  message: string;
}

export interface RealClientObservation {
  index: number;
  behaviour: string;
  honest: boolean;
  /** wl_display.error (Wayland) or an X11 error reply (interface "x11", error "BadValue"...). */
  protocolError: RealProtocolError | null;
  /** Every X11 error this client got while staying connected (Xorg keeps clients on errors). */
  errors: RealProtocolError[];
  /** How the connection ended: the server closed it, the client closed it, or still open. */
  connection: "closed-by-server" | "closed-by-client" | "open";
  /** Did the client's own process (the native helper's side) die, and of what. */
  killed: ExitInfo | null;
  /** Frames the compositor acknowledged (frame callbacks done / X11 round trips after a put). */
  framesDone: number;
  releases: number;
  commits: number;
  /** What a capture of the screen showed in this client's window, where a capture exists. */
  pixels: "correct" | "stale" | "zero" | "foreign" | "other" | "none" | "unchecked";
  /** What the client was waiting for when the run's time ran out, if anything. */
  waitingFor: string | null;
  /**
   * A client that is not honest: its window in the screenshot and what of other clients it
   * showed (real/hostile-window.ts), where a screenshot was taken and it committed a buffer.
   */
  window?: HostileWindow;
  /** Human-readable notes (what was sent, what came back), kept in the record. */
  notes: string[];
}

export interface RealRunObservation {
  target: { kind: RealKind; version: string };
  plan: RealRunPlan;
  /** The compositor after the run: alive, or how it died. */
  compositor: {
    alive: boolean;
    exit: ExitInfo | null;
    /**
     * After a death, the fault its log reported, if any. Xvfb's signal handler catches
     * SIGBUS, logs "Caught signal 7 (Bus error)" and aborts: exit says SIGABRT, this says why.
     */
    faultNoted?: string | null;
  };
  clients: RealClientObservation[];
  /** Wall-clock milliseconds of the run, start of the instance excluded. */
  ms: number;
}

/** A protocol family's way of running a plan on a live instance. */
export interface RealDriver {
  readonly endpointKind: Endpoint["kind"];
  run(instance: RealInstance, plan: RealRunPlan): Promise<RealRunObservation>;
  /**
   * A fuzz program (the JSON action list) as this family can run it: the actions it has a
   * form for, and the others dropped with the reason. The lab runs the kept list on the
   * model too, so both sides run one program. Absent: every action applies (Wayland).
   */
  programForm?(actions: readonly unknown[]): {
    actions: unknown[];
    dropped: { i: number; k: string; why: string }[];
  };
}
