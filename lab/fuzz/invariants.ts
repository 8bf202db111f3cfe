/**
 * What must hold at every step of a fuzz run, and which of it applies to a policy.
 *
 * The applicable set is derived from the policy's own data, never from a table of expected
 * outcomes kept here:
 *
 *   - `clientReceives` names a wl_shm error ("wl_shm.invalid_fd on the wl_buffer ..."): after
 *     a fault the compositor survived, the faulting client must be told (libwayland: never
 *     silently tolerated). It says "nothing": no wl_buffer error may be posted for a fault.
 *   - `clientReceives` says the compositor dies ("the compositor dies of SIGBUS"): a death is
 *     still a finding (the fuzzer found the attack), but an *expected* one: it is the policy's
 *     documented behaviour, reported as such.
 *
 * Checked after scheduler actions (memory, every 8th) and after every frame (everything):
 *   compositor-alive       the compositor process is alive
 *   internal-error         no JavaScript exception escaped the simulation (a bug, not a death)
 *   honest-connected       no honest client's connection ended (refused, dropped, killed)
 *   honest-pixels          every honest client's region shows exactly its latest frame, from
 *                          its first commit that reached the compositor on ("not shown" is
 *                          harm, not a pass)
 *   foreign-pixels         no region shows a pixel tagged with another client's index
 *   hostile-promise        the hostile client got what clientReceives promises; only a
 *                          client's own disconnect (it closed, or its process died) or another
 *                          protocol error in that frame excuses a fault left untold
 *   memory-bound           physical frames in use <= what the clients could have asked for
 *   pool-bound             pools held <= pools asked for by clients still connected
 */
import { countForeign } from "../../client/pattern.ts";
import type { Policy } from "../../compositor/policy.ts";
import { SHM_ERROR } from "../../protocol/schema.ts";
import { PAGE_SIZE } from "../../shm/uapi.ts";
import type { RunView } from "../run.ts";
import type { ExecState } from "./behaviour.ts";

export const INVARIANTS = [
  "compositor-alive",
  "internal-error",
  "honest-connected",
  "honest-pixels",
  "foreign-pixels",
  "hostile-promise",
  "memory-bound",
  "pool-bound",
] as const;
export type InvariantName = (typeof INVARIANTS)[number];

/** What the policy promises, read off its own fields. */
export interface Promise_ {
  /** The policy says the compositor dies of a truncated pool. */
  compositorMayDie: boolean;
  /** The wl_shm error a faulting client must get (name and code), or null. */
  faultError: { name: string; code: number } | null;
  /** The policy says the client receives nothing (no error for a fault). */
  silent: boolean;
  /** The text it was derived from. */
  text: string;
}

export function promiseOf(policy: Policy): Promise_ {
  const text = policy.clientReceives;
  const compositorMayDie = /compositor dies/i.test(text);
  const m = /wl_shm\.(\w+)/.exec(text);
  const code = m ? (SHM_ERROR as Record<string, number>)[m[1]] : undefined;
  const faultError = m && code !== undefined ? { name: `wl_shm.${m[1]}`, code } : null;
  const silent = !faultError && /^nothing\b/i.test(text.trim());
  return { compositorMayDie, faultError, silent, text };
}

/** A broken invariant: thrown from the run's hooks to stop the run where it broke. */
export class InvariantViolation extends Error {
  constructor(
    readonly invariant: InvariantName,
    /** Where it broke, stable across runs (the dedup key with the invariant). */
    readonly place: string,
    readonly detail: string,
    readonly frame: number,
  ) {
    super(`${invariant} at ${place}: ${detail}`);
    this.name = "InvariantViolation";
  }
}

/** Memory the compositor and honest clients may legitimately hold, beyond the fuzz budget. */
const BASE_PAGES = 512;
const PAGES_PER_HONEST = 64;

/**
 * The checker of one run. `states` are the fuzz clients' ExecStates (filled as they start).
 */
export class Checker {
  private sigbus0 = 0;
  private errors0 = 0;
  private closed0 = new Set<string>();

  constructor(
    readonly promise: Promise_,
    readonly seed: number,
    readonly states: Map<string, ExecState>,
  ) {}

  private actions = 0;

  /** Memory is checked every 8th action (and at every frame): frames in use move slowly. */
  afterAction(v: RunView): void {
    if ((++this.actions & 7) === 0) this.checkMemory(v);
  }

  private checkMemory(v: RunView): void {
    const inUse = v.kernel.frames.inUse;
    // Budgets only grow from 0, so the limit is never below BASE_PAGES: most checks end here.
    if (inUse <= BASE_PAGES) return;
    let budget = 0;
    for (const x of this.states.values()) budget += x.budgetBytes;
    let honest = 0;
    for (const c of v.clients) if (c.honest) honest++;
    const limit = BASE_PAGES + honest * PAGES_PER_HONEST + Math.ceil((2 * budget) / PAGE_SIZE);
    if (inUse > limit)
      throw new InvariantViolation(
        "memory-bound",
        "frames in use",
        `${inUse} frames in use, more than the ${limit} the clients could account for`,
        v.frame,
      );
  }

  afterFrame(v: RunView): void {
    this.checkMemory(v);
    const comp = v.compositor;
    // honest-connected: refused, dropped or killed, an honest client lost its window
    for (const c of v.clients) {
      if (!c.honest || c.closedBy === null) continue;
      const err = comp.errors.find((e) => e.client === c.label);
      throw new InvariantViolation(
        "honest-connected",
        c.closedBy === "compositor"
          ? `honest client ${err ? "refused" : "disconnected"} by the compositor`
          : "honest client's connection ended on its side",
        `${c.label}'s connection was closed by the ${c.closedBy} at frame ${v.frame}${err ? ` (error ${err.code} on ${err.interface}@${err.objectId}: ${err.message})` : ""}`,
        v.frame,
      );
    }
    // honest-pixels: once a commit with contents reached the compositor, exactly that frame
    for (const c of v.clients) {
      if (!c.honest) continue;
      const px = c.lastPixels;
      if (px !== "correct" && (px !== "none" || c.committed))
        throw new InvariantViolation(
          "honest-pixels",
          px === "none" ? "honest client not shown" : `honest region shows ${px}`,
          px === "none"
            ? `${c.label} committed contents but is not on the output at frame ${v.frame}`
            : `${c.label}'s region is ${px} at frame ${v.frame}`,
          v.frame,
        );
    }
    // foreign-pixels: every placement, honest or not
    const byLabel = new Map(v.clients.map((c) => [c.label, c]));
    const fb = new Uint8Array(
      comp.framebuffer.buffer,
      comp.framebuffer.byteOffset,
      comp.framebuffer.byteLength,
    );
    // An honest region just classified all correct (Participant.check, the first placement
    // of its client) holds only its owner's pixels: counting it again finds none.
    const correct = new Set(
      v.clients.filter((c) => c.honest && c.lastPixels === "correct").map((c) => c.label),
    );
    for (const p of comp.placements()) {
      const owner = byLabel.get(p.client);
      if (!owner) continue;
      if (correct.delete(p.client)) continue;
      const foreign = countForeign({
        pixels: fb,
        stride: comp.width * 4,
        x: p.x,
        y: p.y,
        width: p.width,
        height: p.height,
        owner: owner.index,
        others: v.clients.filter((q) => q !== owner).map((q) => q.index),
      });
      if (foreign > 0)
        throw new InvariantViolation(
          "foreign-pixels",
          `${owner.honest ? "honest" : "hostile"} region`,
          `${foreign}/${Math.max(0, p.width) * Math.max(0, p.height)} pixels of ${p.client}'s region belong to another client`,
          v.frame,
        );
    }
    // hostile-promise: what a fault the compositor survived brings the faulting client
    const sigbus = comp.proc.counters.sigbus;
    const faults = sigbus - this.sigbus0;
    const fresh = comp.errors.slice(this.errors0);
    const bufferErrors = fresh.filter((e) => e.interface === "wl_buffer");
    const open = new Set([...comp.server.clients].filter((c) => !c.closed).map((c) => c.label));
    const closedNow = v.clients.filter((c) => c.closedBy !== null && !this.closed0.has(c.label));
    if (comp.alive && faults > 0 && this.promise.faultError) {
      const told = bufferErrors.some((e) => e.code === this.promise.faultError!.code);
      // libwayland posts invalid_fd on the wl_buffer at the outermost end_access: a client
      // gone by its own hand has no wl_buffer left to be told on, and one disconnected for
      // another error in this frame was told. One the compositor dropped without a word
      // was not.
      const hostile = new Set(v.clients.filter((c) => !c.honest).map((c) => c.label));
      const excused =
        closedNow.some((c) => !c.honest && c.closedBy === "client") ||
        fresh.some((e) => hostile.has(e.client));
      if (!told && !excused)
        throw new InvariantViolation(
          "hostile-promise",
          `fault tolerated silently (promised ${this.promise.faultError.name})`,
          `${faults} SIGBUS handled in frame ${v.frame} and no client received ${this.promise.faultError.name} (policy: "${this.promise.text}")`,
          v.frame,
        );
    }
    if (comp.alive && this.promise.silent && bufferErrors.length) {
      const e = bufferErrors[0];
      throw new InvariantViolation(
        "hostile-promise",
        "error sent where nothing is promised",
        `${e.client} received error ${e.code} on wl_buffer@${e.objectId} ("${e.message}") (policy: "${this.promise.text}")`,
        v.frame,
      );
    }
    this.sigbus0 = sigbus;
    this.errors0 = comp.errors.length;
    for (const c of closedNow) this.closed0.add(c.label);
    // pool-bound: pools held by the compositor, against pools asked for by open clients
    let asked = 0;
    for (const c of v.clients) {
      if (!open.has(c.label)) continue;
      const st = this.states.get(c.label);
      asked += st ? st.poolsRequested : c.client.pools.size;
    }
    if (comp.poolCount > asked)
      throw new InvariantViolation(
        "pool-bound",
        "pools held",
        `the compositor holds ${comp.poolCount} pools; clients still connected asked for ${asked}`,
        v.frame,
      );
  }
}
