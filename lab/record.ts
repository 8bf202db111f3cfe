/**
 * The record of one run: what was asked (the spec), what happened (compositor, clients,
 * timeline), what it cost, and the verdict derived from those facts. docs/run-record.md
 * documents every field; `schema` names the version.
 */
import type { FaultPlace } from "../compositor/fault-place.ts";
import type { KernelFeature } from "../shm/scenario.ts";

export const RUN_RECORD_SCHEMA = "shmlab.run/1";

export interface RunSpec {
  policy: string;
  /** The client under test; the honest bystanders are added by the run. */
  behaviour: string;
  /** How many honest bystanders run beside it. */
  honest: number;
  variant: string;
  seed: number;
  frames: number;
  /** Kernel proposals switched on (the policy's own needs are added automatically). */
  kernelFeatures: KernelFeature[];
  /** Probability that a compositor preemption point runs a client step. */
  preempt: number;
  params: Record<string, number | string | boolean>;
}

export type PixelClass = "correct" | "stale" | "zero" | "foreign" | "other";

export interface PixelCounts {
  correct: number;
  stale: number;
  zero: number;
  foreign: number;
  other: number;
  total: number;
}

export interface HonestResult {
  /** The worst class seen on any checked frame, or "none" if the client was never shown. */
  pixels: PixelClass | "none";
  framesChecked: number;
  framesCorrect: number;
  /** Summed over checked frames. */
  counts: PixelCounts;
  /** The first frame whose region was not entirely correct, if any. */
  firstBadFrame: number | null;
}

export type HostileOutcome =
  | {
      kind: "disconnected";
      interface: string;
      error: string;
      code: number;
      objectId: number;
      message: string;
    }
  | {
      kind: "tolerated";
      how: string;
      /** What the client's own window showed on the last frame (zero, stale = an earlier frame...). */
      screen: PixelClass | "none" | "unchecked";
    }
  /** An X11 error (Refusal.xError) after which the server kept the client (Xorg). */
  | { kind: "x-error"; error: string; message: string }
  | { kind: "undetected" }
  | { kind: "killed-compositor"; how: string }
  | { kind: "self-destructed"; how: string };

export interface ClientRecord {
  index: number;
  label: string;
  behaviour: string;
  honest: boolean;
  /** How the client's own run ended (runtime report). */
  state: string;
  reason: string | null;
  /** The wl_display.error this client received, if any (from the compositor's records). */
  protocolError: {
    interface: string;
    error: string;
    code: number;
    objectId: number;
    message: string;
  } | null;
  /**
   * Who ended its connection while the run was going: "client" (it closed, or its process
   * died), "compositor" (a protocol error, a limit, the compositor's death), null: open.
   */
  closedBy: "client" | "compositor" | null;
  honestResult: HonestResult | null;
  hostileOutcome: HostileOutcome | null;
  requests: number;
  commits: number;
  releases: number;
}

export interface Cost {
  faults: number;
  signals: number;
  syscalls: number;
  bytesCopied: number;
  bytesKernelCopied: number;
  anonPages: number;
  zeroPages: number;
  uffdFaults: number;
  framesComposited: number;
  /** Wall-clock time per frame (not deterministic; never compared between runs). */
  msPerFrame: number;
}

export interface TimelineEvent {
  /** The compositor frame during which it happened. */
  frame: number;
  who: string;
  what: string;
  detail?: string;
}

export type Verdict =
  | "died"
  | "honest-harmed"
  | "error-to-client"
  | "tolerated"
  | "undetected"
  | "ok";

export interface RunRecord {
  schema: typeof RUN_RECORD_SCHEMA;
  spec: RunSpec;
  /** The command that reproduces this run exactly. */
  replay: string;
  verdict: Verdict;
  /** A few words for the matrix cell. */
  cell: string;
  compositor: {
    alive: boolean;
    /**
     * `fault`: where the fatal fault's address lay, relative to the buffer read in progress
     * (compositor/fault-place.ts: null, no-read, own-pool, other-pool, no-pool); null when
     * the death had no fault address (an abort, an OOM kill).
     */
    death: {
      signal: string;
      reason: string;
      cause: string;
      addr: number;
      fault: FaultPlace | null;
    } | null;
    framesRun: number;
    preemptions: number;
    notices: { frame: number; client: string; what: string }[];
  };
  clients: ClientRecord[];
  cost: Cost;
  timeline: TimelineEvent[];
  /** The last frame as PNGs (base64), beside what the honest clients committed. */
  images?: { width: number; height: number; output: string; expected: string };
  /**
   * The wire traffic in WAYLAND_DEBUG form with kernel events as `#` comments, when asked
   * for (compare --trace, --html; fuzz findings). Not part of the digest.
   */
  trace?: string[];
  /** A digest of every deterministic fact, so replays can be checked for sameness. */
  digest: string;
}
