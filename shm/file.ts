/**
 * Files: shmem (memfd) inodes with a sparse page cache, and pipes. An inode keeps a reverse
 * map of the VMAs that map it (i_mmap), which truncation and hole punching walk.
 */
import { type FileCounters, newFileCounters } from "./counters.ts";
import type { Vma } from "./vma.ts";

/** MAX_LFS_FILESIZE on 64-bit; beyond it ftruncate is EFBIG. Kept a safe JS integer. */
export const MAX_FILE_SIZE = 2 ** 53 - 4096;

export class ShmemFile {
  readonly kind = "shmem" as const;
  size = 0;
  /** pgoff → frame. Absent = hole (reads as zero, allocated on first fault). */
  readonly pages = new Map<number, number>();
  seals: number;
  /** i_mmap: every VMA mapping this inode, in every process. */
  readonly mappings = new Set<Vma>();
  /** i_mmap_writable: shared mappings with VM_MAYWRITE (blocks F_SEAL_WRITE with EBUSY). */
  writableMappings = 0;
  /** Proposal (Shutemov, 2021): read faults beyond i_size map the zero page. Per inode. */
  zeroBeyondEof = false;
  /** The inode has exec permission bits (no MFD_NOEXEC_SEAL): F_SEAL_EXEC then implies write seals. */
  execMode = true;
  readonly counters: FileCounters = newFileCounters();

  constructor(
    readonly ino: number,
    readonly name: string,
    seals: number,
  ) {
    this.seals = seals;
  }
}

export const PIPE_CAPACITY = 65536;

export class Pipe {
  readonly kind = "pipe" as const;
  /**
   * The pipe's buffers (struct pipe_buffer), each at most a page. pipe_read copies one
   * buffer at a time and consumes it only when the whole copy succeeded.
   */
  readonly buffers: Uint8Array[] = [];
  readers = 0;
  writers = 0;
  constructor(readonly ino: number) {}

  get length(): number {
    let n = 0;
    for (const b of this.buffers) n += b.length;
    return n;
  }

  /** pipe_write: merge into the last buffer while its page has room, else new buffers. */
  append(data: Uint8Array): void {
    let done = 0;
    const last = this.buffers[this.buffers.length - 1];
    if (last && last.length < 4096) {
      const n = Math.min(4096 - last.length, data.length);
      const merged = new Uint8Array(last.length + n);
      merged.set(last);
      merged.set(data.subarray(0, n), last.length);
      this.buffers[this.buffers.length - 1] = merged;
      done = n;
    }
    while (done < data.length) {
      const n = Math.min(4096, data.length - done);
      this.buffers.push(data.slice(done, done + n));
      done += n;
    }
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
