/**
 * The driver for each protocol family (real/target.ts RealDriver): the Wayland one
 * (real/wayland-driver.ts) and the X11 one (real/x11-driver.ts). Both are imported
 * statically: they exist, and loading them costs `shmlab compare` nothing measurable
 * (docs/real-compositors.md, "Drivers"). Tests register fakes with `setDriver`.
 */
import type { Endpoint, RealDriver } from "../real/target.ts";
import { waylandDriver } from "../real/wayland-driver.ts";
import { x11Driver } from "../real/x11-driver.ts";

const DRIVERS: Record<Endpoint["kind"], RealDriver> = { wayland: waylandDriver, x11: x11Driver };

const overrides = new Map<Endpoint["kind"], RealDriver>();

/** Replaces the driver of a family (tests); `null` restores the real one. */
export function setDriver(kind: Endpoint["kind"], d: RealDriver | null): void {
  if (d) overrides.set(kind, d);
  else overrides.delete(kind);
}

/**
 * The driver of a family. Async and with a `why` form for its callers' sake: a family
 * whose driver cannot run here says so when it runs (each driver checks its helper).
 */
export async function driverFor(kind: Endpoint["kind"]): Promise<RealDriver | { why: string }> {
  return overrides.get(kind) ?? DRIVERS[kind];
}
