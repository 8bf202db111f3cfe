/**
 * The driver for each protocol family (real/target.ts RealDriver): the Wayland one
 * (real/wayland-driver.ts) and the X11 one (real/x11-driver.ts), each written beside the
 * supervision layer. They are looked up at run time, so a family whose driver is not built
 * yet is a one-line skip; tests register fakes with `setDriver`.
 */
import type { Endpoint, RealDriver } from "../real/target.ts";

const MODULES: Record<Endpoint["kind"], string> = {
  wayland: "../real/wayland-driver.ts",
  x11: "../real/x11-driver.ts",
};

const overrides = new Map<Endpoint["kind"], RealDriver>();

/** Replaces the driver of a family (tests); `null` restores the real one. */
export function setDriver(kind: Endpoint["kind"], d: RealDriver | null): void {
  if (d) overrides.set(kind, d);
  else overrides.delete(kind);
}

function isDriver(v: unknown, kind: Endpoint["kind"]): v is RealDriver {
  const d = v as Partial<RealDriver> | null;
  return !!d && typeof d.run === "function" && d.endpointKind === kind;
}

/** The driver of a family, or why there is none. */
export async function driverFor(kind: Endpoint["kind"]): Promise<RealDriver | { why: string }> {
  const o = overrides.get(kind);
  if (o) return o;
  const spec = MODULES[kind];
  let mod: Record<string, unknown>;
  try {
    mod = (await import(spec)) as Record<string, unknown>;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === "ERR_MODULE_NOT_FOUND" && err.message.includes(spec.slice(3)))
      return { why: `no ${kind} driver yet (${spec.slice(3)})` };
    throw e;
  }
  const d = Object.values(mod).find((v) => isDriver(v, kind));
  return d ?? { why: `${spec.slice(3)} exports no ${kind} RealDriver` };
}
