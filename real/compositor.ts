/**
 * What shmlab knows about one real compositor: how to find it and its version (probe), and
 * how to start it headless (start). One file per compositor implements this.
 */
import type { LaunchedInstance } from "./instance.ts";
import type { Availability, RealKind } from "./target.ts";

export interface StartOptions {
  startTimeoutMs?: number;
}

export interface RealCompositor {
  readonly kind: RealKind;
  /** The wire its clients speak. */
  readonly protocol: "wayland" | "x11";
  /** How it is started, one line, for docs and --help. */
  readonly how: string;
  /** Cached per process: a binary does not appear or change version mid-run. */
  probe(): Availability;
  /** Throws RealStartError (with its log's tail) when it does not come up. */
  start(opts?: StartOptions): Promise<LaunchedInstance>;
}

/** Wraps a probe so it runs once per process. */
export function cached(probe: () => Availability): () => Availability {
  let v: Availability | undefined;
  return () => {
    v ??= probe();
    return v;
  };
}

/** Throws the probe's reason as a typed error when the compositor is not available. */
export function requireAvailable(
  kind: RealKind,
  a: Availability,
): { version: string; binary: string } {
  if (!a.available) {
    const err = new Error(`${kind} is not available: ${a.why}`) as Error & { code: string };
    err.code = "SHMLAB_ERR_REAL_UNAVAILABLE";
    throw err;
  }
  return a;
}
