/**
 * The policy registry: the twelve built-in policies by name, and `loadPolicy` for a user's
 * own file (`--policy ./my-policy.ts`): a module whose default export (or export named
 * `policy`) is a Policy. docs/policies.md shows a worked example.
 */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { KernelFeature } from "../../shm/scenario.ts";
import type { Policy } from "../policy.ts";
import { copyPread } from "./copy-pread.ts";
import { droppableCache } from "./droppable-cache.ts";
import { hyprland } from "./hyprland.ts";
import { hyprland045 } from "./hyprland-0-45.ts";
import { kwin } from "./kwin.ts";
import { kwin527 } from "./kwin-5-27.ts";
import { libwayland } from "./libwayland.ts";
import { libwayland121 } from "./libwayland-1-21.ts";
import { libwaylandKeptBuffer } from "./libwayland-kept-buffer.ts";
import { mapNofault } from "./map-nofault.ts";
import { none } from "./none.ts";
import { libwaylandChainedHandler, libwaylandOwnHandler } from "./own-handler.ts";
import { populate } from "./populate.ts";
import { renderThreadLibwayland, renderThreadWlroots } from "./render-thread.ts";
import { sealsRequired } from "./seals-required.ts";
import { smithay } from "./smithay.ts";
import { userfaultfd } from "./userfaultfd.ts";
import { weston10 } from "./weston-10.ts";
import { wlroots } from "./wlroots.ts";
import { wlroots015 } from "./wlroots-0-15.ts";
import { xorgMitShm } from "./xorg-mit-shm.ts";
import { zeroBeyondEof } from "./zero-beyond-eof.ts";

export const BUILTIN_POLICIES: readonly Policy[] = [
  none,
  libwayland,
  wlroots,
  kwin,
  smithay,
  xorgMitShm,
  sealsRequired,
  mapNofault,
  zeroBeyondEof,
  copyPread,
  userfaultfd,
  populate,
];

const registry = new Map<string, Policy>(BUILTIN_POLICIES.map((p) => [p.name, p]));
registerPolicy(droppableCache); // issue 9 (docs/hazards.md): beside the twelve, not one of them
registerPolicy(hyprland); // issue 14: its own wl_shm, no SIGBUS handler (docs/policies.md)
// Models of the versions installed here (docs/real-compositors.md), held against them.
registerPolicy(libwayland121);
registerPolicy(wlroots015);
registerPolicy(weston10);
registerPolicy(hyprland045);
registerPolicy(kwin527);
// Constructs that isolate one design choice (docs/policies.md), run when named.
registerPolicy(libwaylandOwnHandler);
registerPolicy(libwaylandChainedHandler);
registerPolicy(renderThreadLibwayland);
registerPolicy(renderThreadWlroots);
registerPolicy(libwaylandKeptBuffer);

export function registerPolicy(p: Policy): void {
  if (registry.has(p.name)) throw new Error(`policy ${p.name} already registered`);
  registry.set(p.name, p);
}

export function policyNames(): string[] {
  return [...registry.keys()];
}

export function getPolicy(name: string): Policy {
  const p = registry.get(name);
  if (!p)
    throw new Error(`unknown policy ${JSON.stringify(name)}; known: ${policyNames().join(", ")}`);
  return p;
}

/** Every kernel proposal the named policies need (for building a kernel that runs them all). */
export function featuresOf(policies: readonly Policy[]): KernelFeature[] {
  return [...new Set(policies.flatMap((p) => p.features))];
}

export function isPolicy(v: unknown): v is Policy {
  const p = v as Partial<Policy> | null;
  return (
    !!p &&
    typeof p.name === "string" &&
    typeof p.create === "function" &&
    Array.isArray(p.features) &&
    typeof p.profile === "object" &&
    p.profile !== null &&
    typeof p.profile.createBuffer === "function" &&
    typeof p.deferResizeWhileReading === "boolean"
  );
}

/**
 * A built-in name, or a path to a module exporting a Policy (default export or `policy`).
 * Paths are told apart by a slash or a .ts/.js/.mjs ending.
 */
export async function loadPolicy(nameOrPath: string): Promise<Policy> {
  if (registry.has(nameOrPath)) return registry.get(nameOrPath)!;
  if (!/[\\/]|\.(ts|js|mjs)$/.test(nameOrPath)) return getPolicy(nameOrPath);
  const file = isAbsolute(nameOrPath) ? nameOrPath : resolve(process.cwd(), nameOrPath);
  const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const p = mod.default ?? mod.policy;
  if (!isPolicy(p))
    throw new Error(
      `${nameOrPath} does not export a Policy (default export or \`policy\`): see docs/policies.md`,
    );
  return p;
}
