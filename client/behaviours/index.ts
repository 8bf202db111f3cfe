/**
 * Every built-in behaviour by name, and loadBehaviour(nameOrPath) for the lab and the CLI:
 * a name picks a built-in; a path (./x.ts, /abs/x.ts, file: URL) imports a user file whose
 * default export (or export named `behaviour`) is a Behaviour. See docs/behaviours.md.
 */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Behaviour } from "../behaviour.ts";
import destroyBufferThenShrink from "./destroy-buffer-then-shrink.ts";
import disconnectMidRequest from "./disconnect-mid-request.ts";
import floodBuffers from "./flood-buffers.ts";
import floodPools from "./flood-pools.ts";
import forkChildTruncates from "./fork-child-truncates.ts";
import honestRenderer from "./honest-renderer.ts";
import hugePool from "./huge-pool.ts";
import memoryPressure from "./memory-pressure.ts";
import negativeSize from "./negative-size.ts";
import offsetPastEnd from "./offset-past-end.ts";
import pipeFd from "./pipe-fd.ts";
import poolLargerThanFile from "./pool-larger-than-file.ts";
import protocolGarbage from "./protocol-garbage.ts";
import punchHoles from "./punch-holes.ts";
import resizeDuringRead from "./resize-during-read.ts";
import resizePoolSmaller from "./resize-pool-smaller.ts";
import sealThenPlay from "./seal-then-play.ts";
import shownThenTruncated from "./shown-then-truncated.ts";
import shrinkRegrow from "./shrink-regrow.ts";
import strideInPixels from "./stride-in-pixels.ts";
import strideOverflow from "./stride-overflow.ts";
import truncateAfterCommit from "./truncate-after-commit.ts";
import truncateDuringRead from "./truncate-during-read.ts";
import truncateOutsideDamage from "./truncate-outside-damage.ts";
import unknownFormat from "./unknown-format.ts";
import workerExits from "./worker-exits.ts";
import workerHangs from "./worker-hangs.ts";
import workerThrows from "./worker-throws.ts";
import writeSealedFd from "./write-sealed-fd.ts";
import zeroLengthFile from "./zero-length-file.ts";

export const BEHAVIOURS: readonly Behaviour[] = [
  destroyBufferThenShrink,
  disconnectMidRequest,
  floodBuffers,
  floodPools,
  forkChildTruncates,
  honestRenderer,
  hugePool,
  negativeSize,
  offsetPastEnd,
  pipeFd,
  poolLargerThanFile,
  protocolGarbage,
  punchHoles,
  resizeDuringRead,
  resizePoolSmaller,
  sealThenPlay,
  shrinkRegrow,
  strideInPixels,
  strideOverflow,
  truncateAfterCommit,
  truncateDuringRead,
  unknownFormat,
  workerExits,
  workerHangs,
  workerThrows,
  writeSealedFd,
  zeroLengthFile,
];

const registry = new Map<string, Behaviour>(BEHAVIOURS.map((b) => [b.name, b]));
registerBehaviour(memoryPressure); // issue 9 (docs/hazards.md): registered beside the catalogue
// issue 14: what read moments, damage and handler stacking make reachable
// (docs/behaviours.md); beside the catalogue, so the real-compositor drivers' list is unchanged.
registerBehaviour(truncateOutsideDamage);
registerBehaviour(shownThenTruncated);

export function behaviourNames(): string[] {
  return [...registry.keys()];
}

export function getBehaviour(name: string): Behaviour {
  const b = registry.get(name);
  if (!b)
    throw new Error(
      `unknown behaviour ${JSON.stringify(name)}; known: ${behaviourNames().join(", ")}`,
    );
  return b;
}

/** Makes a behaviour selectable by name; a name may be registered once. */
export function registerBehaviour(b: Behaviour): void {
  checkBehaviour(b, b?.name ?? "?");
  const old = registry.get(b.name);
  if (old && old !== b) throw new Error(`behaviour ${b.name} already registered`);
  registry.set(b.name, b);
}

function checkBehaviour(b: unknown, where: string): asserts b is Behaviour {
  const x = b as Partial<Behaviour> | undefined;
  const bad = (what: string) => new Error(`${where}: not a Behaviour (${what})`);
  if (!x || typeof x !== "object") throw bad("no object exported");
  if (typeof x.name !== "string" || !/^[a-z0-9]+(-[a-z0-9]+)*$/.test(x.name))
    throw bad("name must be kebab-case");
  if (typeof x.description !== "string") throw bad("no description");
  if (typeof x.honest !== "boolean") throw bad("honest must be a boolean");
  if (typeof x.source !== "string" || x.source.length === 0) throw bad("no source");
  if (typeof x.run !== "function") throw bad("no run generator");
}

export function looksLikePath(s: string): boolean {
  return s.startsWith(".") || s.startsWith("/") || s.startsWith("file:") || /\.[cm]?[jt]s$/.test(s);
}

/**
 * A built-in by name, or a user's behaviour from a file (its default export, or the export
 * named `behaviour`), which is then registered under its name.
 */
export async function loadBehaviour(nameOrPath: string, cwd = process.cwd()): Promise<Behaviour> {
  if (!looksLikePath(nameOrPath)) return getBehaviour(nameOrPath);
  const url = nameOrPath.startsWith("file:")
    ? nameOrPath
    : pathToFileURL(isAbsolute(nameOrPath) ? nameOrPath : resolve(cwd, nameOrPath)).href;
  const mod = (await import(url)) as { default?: unknown; behaviour?: unknown };
  const b = mod.default ?? mod.behaviour;
  checkBehaviour(b, nameOrPath);
  const known = registry.get(b.name);
  if (known && known !== b && BEHAVIOURS.includes(known))
    throw new Error(`${nameOrPath}: name ${b.name} is a built-in behaviour`);
  registry.set(b.name, b);
  return b;
}
