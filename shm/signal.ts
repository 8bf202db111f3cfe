/**
 * Signal dispositions for the synchronous fault signals. A handler is a JS function that
 * runs on the faulting process's stack, at the fault, with the signal blocked (unless
 * SA_NODEFER); when it returns, the access retries, as on return from a real handler.
 *
 * force_sig_fault → force_sig_info_to_task (kernel/signal.c): "if the signal is blocked or
 * ignored, unblock it and reset the handler to SIG_DFL" — so a SIGBUS raised inside a
 * SIGBUS handler, or while SIGBUS is ignored, kills the process.
 */
import type { SigInfo } from "./errors.ts";
import type { Process } from "./process.ts";

/**
 * A handler gets the process it runs in: after fork the child runs the same handler code
 * on its own address space, as a real handler would.
 */
export type SignalHandler = (info: SigInfo, self: Process) => void;

export interface SigAction {
  handler: SignalHandler | "default" | "ignore";
  /** SA_NODEFER: do not block the signal while its handler runs. */
  nodefer?: boolean;
}

export class SignalState {
  readonly actions = new Map<"SIGBUS" | "SIGSEGV", SigAction>();
  readonly blocked = new Set<"SIGBUS" | "SIGSEGV">();

  action(sig: "SIGBUS" | "SIGSEGV"): SigAction {
    return this.actions.get(sig) ?? { handler: "default" };
  }

  /** fork: the child inherits dispositions and the mask. */
  clone(): SignalState {
    const s = new SignalState();
    for (const [k, v] of this.actions) s.actions.set(k, { ...v });
    for (const b of this.blocked) s.blocked.add(b);
    return s;
  }
}
