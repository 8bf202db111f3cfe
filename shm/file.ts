/**
 * Files: shmem (memfd) inodes with a sparse page cache, and pipes. An inode keeps a reverse
 * map of the VMAs that map it (i_mmap), which truncation and hole punching walk.
 */
import { type FileCounters, newFileCounters } from "./counters.ts";
import { MappingList } from "./mapping-list.ts";
import { PageCache } from "./page-cache.ts";

/** MAX_LFS_FILESIZE on 64-bit; beyond it ftruncate is EFBIG. Kept a safe JS integer. */
export const MAX_FILE_SIZE = 2 ** 53 - 4096;

export class ShmemFile {
  readonly kind = "shmem" as const;
  size = 0;
  /** pgoff → frame. Absent = hole (reads as zero, allocated on first fault). */
  readonly pages = new PageCache();
  seals: number;
  /** i_mmap: every VMA mapping this inode, in every process. */
  readonly mappings = new MappingList();
  /** i_mmap_writable: shared mappings with VM_MAYWRITE (blocks F_SEAL_WRITE with EBUSY). */
  writableMappings = 0;
  /** Proposal (Shutemov, 2021): read faults beyond i_size map the zero page. Per inode. */
  zeroBeyondEof = false;
  /** The inode has exec permission bits (no MFD_NOEXEC_SEAL): F_SEAL_EXEC then implies write seals. */
  execMode = true;
  readonly counters: FileCounters = newFileCounters();
  /**
   * Open file descriptions (struct file) of this inode that are still referenced: with the
   * VMAs in `mappings` (shared anonymous memory has no description, only its VMAs), what
   * keeps the inode alive. When both are gone it is evicted (truncate.ts evictInode).
   */
  openFiles = 0;
  /** shmem_evict_inode ran: the page cache is empty for good. */
  evicted = false;

  constructor(
    readonly ino: number,
    readonly name: string,
    seals: number,
  ) {
    this.seals = seals;
  }
}

/** One struct pipe_buffer: a page holding `data`, which began at byte `offset` of the page. */
export interface PipeBuffer {
  data: Uint8Array;
  offset: number;
}

/** pipe_max_size's default: 16 buffers of one page. */
export const PIPE_BUFFERS = 16;

export class Pipe {
  readonly kind = "pipe" as const;
  /**
   * The pipe's buffers. pipe_read copies one buffer at a time and consumes it only when the
   * whole copy succeeded; pipe_write fills whole pages and commits a page only when all of
   * it was copied.
   */
  readonly buffers: PipeBuffer[] = [];
  readers = 0;
  writers = 0;
  constructor(readonly ino: number) {}

  get length(): number {
    let n = 0;
    for (const b of this.buffers) n += b.data.length;
    return n;
  }
}

export class UffdFile {
  readonly kind = "userfaultfd" as const;
  apiDone = false;
  features = 0;
  constructor(
    readonly ino: number,
    readonly ctx: import("./userfaultfd.ts").UffdContext,
  ) {}
}

export type Inode = ShmemFile | Pipe | UffdFile;

/**
 * An open file description (struct file): what an fd points at. dup() and fd passing share
 * one; each has its own access mode.
 */
export class OpenFile {
  refs = 0;
  /** f_pos, for read(2) and write(2). */
  pos = 0;
  constructor(
    readonly id: number,
    readonly inode: Inode,
    readonly readable: boolean,
    readonly writable: boolean,
    /** Which end of a pipe, for pipes. */
    readonly pipeEnd?: "r" | "w",
  ) {}
}
