/** Small shared fixtures for the suites that drive a policy directly on a compositor process. */
import type { BufferView, PolicyEnv, ShmPool } from "../compositor/policy.ts";
import { ARGB8888 } from "../compositor/validation.ts";
import { ProcessKilled } from "../shm/errors.ts";
import type { Process } from "../shm/process.ts";
import { PG } from "./helpers.ts";

/** A PolicyEnv whose panic is a thrown Error, so a test sees a policy's abort as a throw. */
export const panickingEnv: PolicyEnv = {
  panic: (reason) => {
    throw new Error(`panic: ${reason}`);
  },
  onBlocked: () => {},
};

/** The SIGBUS handler the policy installed in `comp`; throws when there is none. */
export function handlerOf(comp: Process) {
  const h = comp.signals.action("SIGBUS").handler;
  if (typeof h !== "function") throw new Error("no SIGBUS handler installed");
  return h;
}

/** The ProcessKilled that `fn` ends in, or null when it returns; other errors propagate. */
export function killedBy(fn: () => void): ProcessKilled | null {
  try {
    fn();
    return null;
  } catch (e) {
    if (e instanceof ProcessKilled) return e;
    throw e;
  }
}

/** The pool record of `cfd`, sent from `client` to `comp` (not mapped yet: the policy's mapPool does that). */
export function sentPool(
  client: Process,
  comp: Process,
  cfd: number,
  name: string,
  size: number = PG,
): ShmPool {
  return { name, fd: client.sendFd(cfd, comp), size, addr: 0, state: {}, freed: false };
}

/** A one-row ARGB8888 buffer of `pool` spanning one page from `offset` (stride one page). */
export function pageBuffer(pool: ShmPool, name: string, offset = 0): BufferView {
  return {
    pool,
    offset,
    width: PG / 4,
    height: 1,
    stride: PG,
    format: ARGB8888,
    bpp: 4,
    span: PG,
    name,
  };
}

/** Like panickingEnv, and each panic's reason is pushed onto `panics` first. */
export function recordingEnv(panics: string[], extra: Partial<PolicyEnv> = {}): PolicyEnv {
  return {
    panic: (reason) => {
      panics.push(reason);
      throw new Error(`panic: ${reason}`);
    },
    onBlocked: () => {},
    ...extra,
  };
}
