/**
 * Catching only what is expected. `onErrno(codes, fn, fallback)` runs `fn` and turns an
 * ErrnoError whose errno is one of `codes` into `fallback`; every other error — a process
 * killed mid-call (ProcessKilled), a Deadlock, a bug — propagates. This replaces bare
 * catch blocks with no binding, which turned even a kill into "the call failed".
 */
import { ErrnoError } from "./errors.ts";
import type { Errno } from "./uapi.ts";

export function isErrno(e: unknown, codes: readonly Errno[]): e is ErrnoError {
  return e instanceof ErrnoError && codes.includes(e.code);
}

/** `fn()`, or `fallback` when it fails with one of the named errnos. */
export function onErrno<T>(codes: readonly Errno[], fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch (e) {
    if (isErrno(e, codes)) return fallback;
    throw e;
  }
}
