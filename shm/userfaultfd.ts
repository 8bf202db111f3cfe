/**
 * userfaultfd contexts (fs/userfaultfd.c): a registered range's missing faults are queued
 * as events for a reader instead of being resolved by the kernel; the faulting thread waits
 * until UFFDIO_ZEROPAGE or UFFDIO_COPY installs the page and wakes it.
 */

export interface UffdEvent {
  /** The faulting address, page aligned as the kernel reports it without UFFD_FEATURE_EXACT_ADDRESS. */
  address: number;
  write: boolean;
  pid: number;
}

export class UffdContext {
  readonly pending: UffdEvent[] = [];
  /** Pages (addresses) whose fault has been read but not yet resolved. */
  readonly waiting = new Set<number>();
  released = false;

  constructor(
    readonly ownerPid: number,
    /**
     * UFFD_USER_MODE_ONLY: only faults from user mode are handled; handle_userfault turns a
     * kernel-mode fault (a syscall touching the range) into VM_FAULT_SIGBUS, which a kernel
     * access reports as EFAULT instead of waiting.
     */
    readonly userModeOnly = false,
  ) {}

  /** Queues the event once per page, as handle_userfault does for a waiting fault. */
  report(address: number, write: boolean, pid: number): void {
    if (this.waiting.has(address)) return;
    this.waiting.add(address);
    this.pending.push({ address, write, pid });
  }

  take(): UffdEvent | undefined {
    return this.pending.shift();
  }

  /** A resolution of [start, end) wakes the faults waiting there. */
  wake(start: number, end: number): void {
    for (const a of [...this.waiting]) if (a >= start && a < end) this.waiting.delete(a);
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const e = this.pending[i];
      if (e.address >= start && e.address < end) this.pending.splice(i, 1);
    }
  }
}
