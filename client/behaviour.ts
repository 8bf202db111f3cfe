/**
 * What a client does, written once and run two ways: stepped by the lab's seeded scheduler
 * on one thread (every race replays from a seed), or driven freely inside a worker thread.
 *
 * A behaviour is a generator. Each `yield` ends a step: the scheduler may run the compositor
 * or another client before the next one. A step must be short (a few requests or syscalls),
 * because a step may also run *inside* the compositor's multi-page read, at one of the
 * kernel's preemption points — that is how "truncate during the compositor's read" happens
 * deterministically. To wait for something (a release, a frame callback, a roundtrip), yield
 * a Wait: the step is not resumed until `ready()` holds.
 */
import type { Client } from "./client.ts";

export interface Wait {
  /** Shown in timelines: what the client waits for. */
  what: string;
  /**
   * Whether the step may resume. It should read the client's own state (callbacks done,
   * buffers released, connection closed): the lab's play loop asks it again only after
   * something changed, or after it sent a request (Client.setup's binds), and otherwise
   * takes the answer it last gave (lab/run.ts, StepActor).
   */
  ready(): boolean;
}

export type BehaviourStep = Generator<Wait | undefined, void, void>;

export interface BehaviourContext {
  /** The run's seed; every random choice of the behaviour derives from it. */
  seed: number;
  /** This client's index in the run (0-based), part of its pixel pattern. */
  index: number;
  /** A deterministic generator in [0, 1), seeded from (seed, index). */
  random(): number;
  /** Parameters from the scenario (surface size, frame count, seal or not...). */
  params: Readonly<Record<string, number | string | boolean>>;
  /**
   * What the run around the client can make happen to the whole machine, where a run
   * provides it (the lab's deterministic runs do; a worker or remote client has none). A
   * client cannot cause these itself: they stand for the rest of the system.
   */
  system?: SystemEvents;
}

/** Events of the machine, not of any one client; the run performs and records them. */
export interface SystemEvents {
  /** Memory pressure, now (kswapd reclaims); returns the droppable pages dropped. */
  memoryPressure(): number;
}

export interface Behaviour {
  /** kebab-case, unique: the column name in `shmlab compare`. */
  name: string;
  /** One line for the report legend. */
  description: string;
  /** Honest clients' pixels are checked; hostile ones are judged by what they got. */
  honest: boolean;
  /** Where the attack was seen in the wild, or why it matters. */
  source: string;
  run(c: Client, ctx: BehaviourContext): BehaviourStep;
}

/** A Wait that holds once `pred` does. */
export function until(what: string, pred: () => boolean): Wait {
  return { what, ready: pred };
}
