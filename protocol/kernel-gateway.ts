/**
 * Wiring between the protocol and the simulated kernel (shm/), through the kernel's public
 * surface only: a Process's syscalls and the Kernel's SCM_RIGHTS handles
 * (exportFd / importFd / dropHandle).
 *
 * - ProcessSyscallGateway answers a remote client's syscall channel in that client's own
 *   simulated process.
 * - workerFdBridge / serverFdBridge carry fds between processes that share the kernel: the
 *   sender exports its fd to an in-flight handle, the receiver imports it at its lowest
 *   free fd, as sendmsg/recvmsg with SCM_RIGHTS do.
 * - remoteFdBridge is the server end of a WebSocket client: the fd numbers on the wire are
 *   the remote process's, and each becomes a new fd of the compositor's process.
 * - processFileInspector lets variant hooks ask F_GET_SEALS and fstat of received fds.
 */
import { ErrnoError, ProcessKilled } from "../shm/errors.ts";
import { isErrno, onErrno } from "../shm/expected-errors.ts";
import type { Kernel } from "../shm/kernel.ts";
import type { Process } from "../shm/process.ts";
import { PROTO_ERR, protoError } from "./errors.ts";
import {
  F_ADD_SEALS,
  F_GET_SEALS,
  type SyscallArg,
  type SyscallGateway,
  type SyscallName,
  type SyscallReturn,
} from "./syscalls.ts";
import type { FdBridge } from "./transport.ts";
import type { FileInspector } from "./variant.ts";

/**
 * The most bytes one pread on the syscall channel returns. A read may return fewer bytes
 * than asked (Linux caps every read at MAX_RW_COUNT); here the cap keeps the reply, which
 * the Node process builds in full before sending it, far below the unread-bytes limit, so
 * that a 1 GiB pread of a sparse file costs 256 KiB, not gigabytes. It is also one
 * client's work per call on the server's one thread (the reply is built, encoded and
 * copied into the socket before anyone else is served): 256 KiB, not 1 MiB, keeps that
 * turn short (a soak's profile spent 7 % of the server's time on 1 MiB replies).
 */
export const MAX_SYSCALL_READ = 256 * 1024;

/** Default most fds one client may have the compositor hold for it at once. */
export const DEFAULT_MAX_CLIENT_FDS = 24;

export interface GatewayOptions {
  /**
   * Most bytes of file memory this client's open files may hold (a memory cgroup's
   * memory.max for its shmem): a pwrite or fallocate that would allocate past it fails with
   * ENOMEM (shmem_alloc_and_add_folio's charge failing) before anything is allocated.
   * Default: no limit beyond the kernel's.
   */
  maxMemory?: number;
}

export class ProcessSyscallGateway implements SyscallGateway {
  readonly proc: Process;
  private readonly maxPages: number;

  constructor(proc: Process, opts: GatewayOptions = {}) {
    this.proc = proc;
    this.maxPages =
      opts.maxMemory === undefined ? Number.POSITIVE_INFINITY : Math.floor(opts.maxMemory / 4096);
  }

  /** Pages held by the files open in this process (each file counted once). */
  private chargedPages(): number {
    const seen = new Set<unknown>();
    let n = 0;
    for (const [, f] of this.proc.fds.entries()) {
      if (f.inode.kind !== "shmem" || seen.has(f.inode)) continue;
      seen.add(f.inode);
      n += f.inode.pages.size;
    }
    return n;
  }

  /**
   * ENOMEM when the pages of [offset, offset+length) of `fd` that are not allocated yet
   * would take this client past its memory quota. Bad fds and offsets are left to the
   * syscall's own checks.
   */
  private charge(fd: number, offset: number, length: number, syscall: string): void {
    if (this.maxPages === Number.POSITIVE_INFINITY || !(length > 0) || !(offset >= 0)) return;
    if (!this.proc.fds.has(fd)) return;
    const inode = this.proc.fds.get(fd, syscall).inode;
    if (inode.kind !== "shmem") return;
    const first = Math.floor(offset / 4096);
    const end = Math.ceil((offset + length) / 4096);
    const room = this.maxPages - this.chargedPages();
    if (end - first - inode.pages.size > room)
      throw new ErrnoError("ENOMEM", syscall, "over this client's memory quota");
    let fresh = 0;
    for (let pg = first; pg < end; pg++) {
      if (!inode.pages.has(pg) && ++fresh > room)
        throw new ErrnoError("ENOMEM", syscall, "over this client's memory quota");
    }
  }

  call(name: SyscallName, a: readonly SyscallArg[]): SyscallReturn {
    const p = this.proc;
    try {
      switch (name) {
        case "memfd_create":
          return p.memfdCreate(a[0] as string, a[1] as number);
        case "ftruncate":
          p.ftruncate(a[0] as number, a[1] as number);
          return 0;
        case "pwrite": {
          const data = a[1] as Uint8Array;
          this.charge(a[0] as number, a[2] as number, data?.length ?? 0, "pwrite64");
          return p.pwrite(a[0] as number, data, a[2] as number);
        }
        case "pread": {
          const len = a[1] as number;
          // Clamped before anything is allocated; negative lengths still reach EINVAL.
          return p.pread(a[0] as number, Math.min(len, MAX_SYSCALL_READ), a[2] as number);
        }
        case "fcntl": {
          const [fd, cmd, arg] = a as number[];
          if (cmd === F_ADD_SEALS) {
            p.addSeals(fd, arg);
            return 0;
          }
          if (cmd === F_GET_SEALS) return p.getSeals(fd);
          // Only the seal commands are offered; Linux answers an unknown cmd with EINVAL.
          return { errno: "EINVAL" };
        }
        case "fallocate": {
          const [fd, mode, offset, len] = a as number[];
          // Punching frees; only allocation is charged (at most the whole range).
          if (!(mode & 2)) this.charge(fd, offset, len, "fallocate");
          p.fallocate(fd, mode, offset, len);
          return 0;
        }
        case "close":
          p.close(a[0] as number);
          return 0;
        case "fstat": {
          const fd = a[0] as number;
          const size = p.fstatSize(fd);
          // EINVAL: not a memfd, no seals to report.
          return [size, onErrno(["EINVAL"], () => p.getSeals(fd), 0)];
        }
      }
    } catch (e) {
      if (e instanceof ErrnoError) return { errno: e.code };
      // The remote process was killed (it has no mappings, so only an OOM kill can do it):
      // like any syscall of a dead process, nothing more will run.
      if (e instanceof ProcessKilled) return { errno: "ESRCH" };
      throw e;
    }
    return { errno: "ENOSYS" };
  }

  close(): void {
    if (this.proc.alive) this.proc.exit();
  }
}

/** The client end of a worker/in-process client: its fds leave as in-flight handles. */
export function workerFdBridge(kernel: Kernel, proc: Process): FdBridge {
  return {
    outgoing: (fd) => kernel.exportFd(proc, fd),
    incoming: (h) => kernel.importFd(proc, h),
    drop: (h) => kernel.dropHandle(h),
    discard: (fd) => {
      // EBADF: already closed.
      onErrno(["EBADF"], () => proc.close(fd), undefined);
    },
  };
}

/** The server end for clients that send in-flight handles (workers, in-process clients). */
export function serverFdBridge(kernel: Kernel, server: Process): FdBridge {
  return {
    outgoing: (fd) => kernel.exportFd(server, fd),
    incoming: (h) => {
      try {
        return kernel.importFd(server, h);
      } catch (e) {
        // The compositor's own fd table is full: recvmsg truncates the fds (MSG_CTRUNC) and
        // libwayland drops the client. The file stays in flight for drop() to release.
        if (e instanceof ErrnoError && e.code === "EMFILE") {
          throw protoError(PROTO_ERR.OBJECT_LIMIT, "the compositor's fd table is full (EMFILE)");
        }
        if (e instanceof ErrnoError)
          throw protoError(PROTO_ERR.BAD_FD, `no file in flight with handle ${h}`);
        throw e;
      }
    },
    discard: (fd) => {
      // EBADF: already closed.
      onErrno(["EBADF"], () => server.close(fd), undefined);
    },
    drop: (h) => kernel.dropHandle(h),
  };
}

export interface RemoteFdOptions {
  /**
   * Most fds of the compositor's process that came from this client and are still open
   * there (default DEFAULT_MAX_CLIENT_FDS). The compositor's fd table (RLIMIT_NOFILE) is
   * shared by all its clients; past this quota the client gets wl_display.error no_memory
   * rather than filling the table for everyone else.
   */
  maxFds?: number;
}

/**
 * The server end of a remote (WebSocket) client: the wire carries the remote process's fd
 * numbers; each is passed to the compositor's process as sendmsg would pass it. A number
 * that is not an open fd of the remote process could never have been sent on a real socket
 * (sendmsg fails with EBADF), so it is a malformed message.
 */
export function remoteFdBridge(
  kernel: Kernel,
  remote: Process,
  server: Process,
  opts: RemoteFdOptions = {},
): FdBridge {
  const maxFds = opts.maxFds ?? DEFAULT_MAX_CLIENT_FDS;
  /** Server fds received from this client → the open file each was, to tell reuse. */
  const held = new Map<number, unknown>();
  const stillHeld = (fd: number, file: unknown): boolean => {
    if (!server.fds.has(fd)) return false;
    return server.fds.get(fd, "fcntl") === file;
  };
  return {
    outgoing: (fd) => fd,
    incoming: (n) => {
      if (held.size >= maxFds) {
        for (const [fd, file] of held) if (!stillHeld(fd, file)) held.delete(fd);
        if (held.size >= maxFds)
          throw protoError(
            PROTO_ERR.OBJECT_LIMIT,
            `more than ${maxFds} of this client's fds held by the compositor (EMFILE)`,
          );
      }
      let h: number;
      try {
        h = kernel.exportFd(remote, n);
      } catch (e) {
        if (e instanceof ErrnoError)
          throw protoError(PROTO_ERR.BAD_FD, `fd ${n} is not open in the client`);
        throw e;
      }
      let fd: number;
      try {
        fd = kernel.importFd(server, h);
      } catch (e) {
        // scm_detach_fds: a file the receiver cannot install is released with the message;
        // left in flight it would keep the client's memory after the client is gone.
        kernel.dropHandle(h);
        if (e instanceof ErrnoError && e.code === "EMFILE") {
          throw protoError(PROTO_ERR.OBJECT_LIMIT, "the compositor's fd table is full (EMFILE)");
        }
        throw e;
      }
      held.set(fd, server.fds.get(fd, "fcntl"));
      return fd;
    },
    discard: (fd) => {
      held.delete(fd);
      // EBADF: already closed.
      onErrno(["EBADF"], () => server.close(fd), undefined);
    },
  };
}

/** Size and seals of an fd of `server`, as a compositor finds them with fstat and F_GET_SEALS. */
export function processFileInspector(server: Process): FileInspector {
  return {
    inspect(fd) {
      try {
        const size = server.fstatSize(fd);
        // EINVAL: not sealable (a pipe, say), no seals.
        const seals = onErrno(["EINVAL"], () => server.getSeals(fd), 0);
        return { size, seals };
      } catch (e) {
        // EBADF: no such fd. A kill or a bug is not "no file".
        if (isErrno(e, ["EBADF"])) return null;
        throw e;
      }
    },
  };
}
