/** What the kernel counts, per process and per file. Every figure is incremented where it happens. */

export interface ProcessCounters {
  minorFaults: number;
  majorFaults: number;
  cowCopies: number;
  sigbus: number;
  sigsegv: number;
  zeroPageMaps: number;
  anonPages: number;
  pagesZapped: number;
  bytesUserRead: number;
  bytesUserWritten: number;
  bytesKernelCopied: number;
  uffdFaults: number;
  syscalls: Record<string, number>;
}

export interface FileCounters {
  pagesAllocated: number;
  pagesTruncated: number;
  pagesPunched: number;
  /** Pages freed when the inode's last reference went (shmem_evict_inode). */
  pagesEvicted: number;
  zeroBeyondEofMaps: number;
  shrinks: number;
  grows: number;
}

export function newProcessCounters(): ProcessCounters {
  return {
    minorFaults: 0,
    majorFaults: 0,
    cowCopies: 0,
    sigbus: 0,
    sigsegv: 0,
    zeroPageMaps: 0,
    anonPages: 0,
    pagesZapped: 0,
    bytesUserRead: 0,
    bytesUserWritten: 0,
    bytesKernelCopied: 0,
    uffdFaults: 0,
    syscalls: {},
  };
}

export function newFileCounters(): FileCounters {
  return {
    pagesAllocated: 0,
    pagesTruncated: 0,
    pagesPunched: 0,
    pagesEvicted: 0,
    zeroBeyondEofMaps: 0,
    shrinks: 0,
    grows: 0,
  };
}
