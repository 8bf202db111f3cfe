/** Small shared fixtures for the suites that drive a policy directly on a compositor process. */
import type { PolicyEnv } from "../compositor/policy.ts";
import { ProcessKilled } from "../shm/errors.ts";
import type { Process } from "../shm/process.ts";

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
