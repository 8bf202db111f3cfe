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

type FaultSignal = "SIGBUS" | "SIGSEGV";

/**
 * A signal mask: sigset_t, one bit per signal, with the Set methods the kernel uses. A
 * handler blocks its signal while it runs, once per fault: two bit operations, where a Set
 * made a hash-table insert and delete (and a rehash every few faults) of every SIGBUS.
 */
export class SigSet implements Iterable<FaultSignal> {
  private bits = 0;

  has(sig: FaultSignal): boolean {
    return (this.bits & sigBit(sig)) !== 0;
  }

  add(sig: FaultSignal): this {
    this.bits |= sigBit(sig);
    return this;
  }

  delete(sig: FaultSignal): boolean {
    const had = this.has(sig);
    this.bits &= ~sigBit(sig);
    return had;
  }

  clear(): void {
    this.bits = 0;
  }

  get size(): number {
    return (this.bits & 1) + ((this.bits >> 1) & 1);
  }

  /** The blocked signals in signal-number order (SIGBUS is 7, SIGSEGV 11). */
  *[Symbol.iterator](): Iterator<FaultSignal> {
    if (this.bits & 1) yield "SIGBUS";
    if (this.bits & 2) yield "SIGSEGV";
  }
}

function sigBit(sig: FaultSignal): number {
  return sig === "SIGBUS" ? 1 : 2;
}

export class SignalState {
  readonly actions = new Map<FaultSignal, SigAction>();
  readonly blocked = new SigSet();

  action(sig: FaultSignal): SigAction {
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
