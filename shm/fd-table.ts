/** A process's file descriptor table: lowest free number first, from 3 (0-2 are stdio). */
import { ErrnoError } from "./errors.ts";
import type { OpenFile } from "./file.ts";

export const FIRST_FD = 3;
/** RLIMIT_NOFILE's usual soft limit. */
export const MAX_FDS = 1024;

export class FdTable {
  private readonly fds = new Map<number, OpenFile>();

  get(fd: number, syscall: string): OpenFile {
    const f = Number.isInteger(fd) ? this.fds.get(fd) : undefined;
    if (!f) throw new ErrnoError("EBADF", syscall, `fd ${fd}`);
    return f;
  }

  has(fd: number): boolean {
    return this.fds.has(fd);
  }

  /** Installs `file` at the lowest free number (taking a reference). EMFILE when full. */
  install(file: OpenFile, syscall: string): number {
    for (let fd = FIRST_FD; fd < MAX_FDS; fd++) {
      if (!this.fds.has(fd)) {
        this.fds.set(fd, file);
        file.refs++;
        return fd;
      }
    }
    throw new ErrnoError("EMFILE", syscall);
  }

  /** How many descriptors are free, counting up to `upTo` (get_unused_fd_flags would succeed). */
  freeSlots(upTo: number): number {
    let free = 0;
    for (let fd = FIRST_FD; fd < MAX_FDS && free < upTo; fd++) if (!this.fds.has(fd)) free++;
    return free;
  }

  /** Installs `file` at exactly `fd` (fork copies the table number for number). */
  installAt(fd: number, file: OpenFile): void {
    this.fds.set(fd, file);
    file.refs++;
  }

  /** Removes fd and returns the file whose reference the caller now owns, or EBADF. */
  remove(fd: number, syscall: string): OpenFile {
    const f = this.get(fd, syscall);
    this.fds.delete(fd);
    return f;
  }

  entries(): [number, OpenFile][] {
    return [...this.fds.entries()];
  }

  get size(): number {
    return this.fds.size;
  }
}
