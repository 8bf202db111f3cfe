/**
 * File syscalls: memfd_create, pipe, dup, close, ftruncate, fallocate, fstat, pread, pwrite,
 * read, write, fcntl seals. Argument checks follow the order of the Linux functions named in
 * each comment, so that the first failing check gives the same errno as on the host.
 */
import { TASK_SIZE } from "../address-space.ts";
import { ErrnoError, errno } from "../errors.ts";
import { MAX_FILE_SIZE, OpenFile, PIPE_BUFFERS, Pipe, ShmemFile } from "../file.ts";
import { FRAME_NOT_UPTODATE } from "../frames.ts";
import type { Kernel } from "../kernel.ts";
import type { Process } from "../process.ts";
import { evictIfUnused, growFile, punchHole, shrinkFile } from "../truncate.ts";
import { FALLOC, MFD, PAGE_SIZE, SEAL } from "../uapi.ts";

const MFD_NAME_MAX_LEN = 249; // NAME_MAX - strlen("memfd:")
const MFD_ALL_FLAGS = MFD.MFD_CLOEXEC | MFD.MFD_ALLOW_SEALING | MFD.MFD_NOEXEC_SEAL | MFD.MFD_EXEC;
const F_ALL_SEALS =
  SEAL.F_SEAL_SEAL |
  SEAL.F_SEAL_SHRINK |
  SEAL.F_SEAL_GROW |
  SEAL.F_SEAL_WRITE |
  SEAL.F_SEAL_FUTURE_WRITE |
  SEAL.F_SEAL_EXEC;

function shmemOf(f: OpenFile): ShmemFile | undefined {
  return f.inode.kind === "shmem" ? f.inode : undefined;
}

/** mm/memfd.c memfd_create. */
export function memfdCreate(p: Process, name: string, flags: number): number {
  p.enter("memfd_create");
  if (!Number.isInteger(flags) || flags & ~MFD_ALL_FLAGS) {
    // MFD_HUGETLB is accepted by Linux but needs reserved huge pages; the model has none.
    errno("EINVAL", "memfd_create", "unknown flags");
  }
  if (flags & MFD.MFD_EXEC && flags & MFD.MFD_NOEXEC_SEAL) errno("EINVAL", "memfd_create");
  if (typeof name !== "string" || Buffer.byteLength(name) > MFD_NAME_MAX_LEN) {
    errno("EINVAL", "memfd_create", "name too long");
  }
  // Without MFD_ALLOW_SEALING the file starts with F_SEAL_SEAL; MFD_NOEXEC_SEAL implies
  // sealing allowed and sets F_SEAL_EXEC.
  let seals: number = SEAL.F_SEAL_SEAL;
  if (flags & MFD.MFD_NOEXEC_SEAL) seals = SEAL.F_SEAL_EXEC;
  else if (flags & MFD.MFD_ALLOW_SEALING) seals = 0;
  const k = p.kernel;
  const file = new ShmemFile(k.allocIno(), name, seals);
  file.execMode = !(flags & MFD.MFD_NOEXEC_SEAL);
  file.openFiles = 1;
  return p.fds.install(new OpenFile(k.allocFileId(), file, true, true), "memfd_create");
}

export function pipe(p: Process): [number, number] {
  p.enter("pipe");
  const k = p.kernel;
  const inode = new Pipe(k.allocIno());
  const r = new OpenFile(k.allocFileId(), inode, true, false, "r");
  const w = new OpenFile(k.allocFileId(), inode, false, true, "w");
  inode.readers = 1;
  inode.writers = 1;
  // __do_pipe_flags takes both descriptors before installing either: with one free slot,
  // pipe(2) is EMFILE and consumes none.
  if (p.fds.freeSlots(2) < 2) errno("EMFILE", "pipe");
  const rfd = p.fds.install(r, "pipe");
  const wfd = p.fds.install(w, "pipe");
  return [rfd, wfd];
}

export function dup(p: Process, fd: number): number {
  p.enter("dup");
  return p.fds.install(p.fds.get(fd, "dup"), "dup");
}

/**
 * Drops one reference to an open file (fput); the last one releases pipe ends, and a shmem
 * inode no fd, mapping or message in flight holds any more is evicted with its pages.
 */
export function releaseFile(k: Kernel, f: OpenFile): void {
  f.refs--;
  if (f.refs > 0) return;
  if (f.inode.kind === "shmem") {
    f.inode.openFiles--;
    evictIfUnused(k, f.inode);
  } else if (f.inode.kind === "pipe") {
    if (f.pipeEnd === "r") f.inode.readers--;
    else f.inode.writers--;
  } else if (f.inode.kind === "userfaultfd") {
    // userfaultfd_release: every VMA registered with the context is unregistered
    // ("vma->vm_userfaultfd_ctx = NULL_VM_UFFD_CTX"), then every waiter woken; a later
    // fault there is an ordinary fault.
    const ctx = f.inode.ctx;
    const mm = k.processes.get(ctx.ownerPid)?.mm;
    for (const v of mm?.overlapping(0, TASK_SIZE) ?? []) if (v.uffd === ctx) v.uffd = undefined;
    ctx.released = true;
    ctx.wake(0, Number.POSITIVE_INFINITY);
  }
}

export function close(p: Process, fd: number): void {
  p.enter("close");
  releaseFile(p.kernel, p.fds.remove(fd, "close"));
}

/** close() without the syscall entry, for exit and process death. */
export function closeQuiet(p: Process, fd: number): void {
  releaseFile(p.kernel, p.fds.remove(fd, "close"));
}

/** fs/open.c do_sys_ftruncate, then mm/shmem.c shmem_setattr. */
export function ftruncate(p: Process, fd: number, length: number): void {
  p.enter("ftruncate");
  if (!Number.isInteger(length) || length < 0) errno("EINVAL", "ftruncate", "negative length");
  const f = p.fds.get(fd, "ftruncate");
  const file = shmemOf(f);
  // "if (!S_ISREG(inode->i_mode) || !(f.file->f_mode & FMODE_WRITE)) → -EINVAL"
  if (!file || !f.writable) errno("EINVAL", "ftruncate", "not a writable regular file");
  if (length > MAX_FILE_SIZE) errno("EFBIG", "ftruncate");
  const old = file.size;
  if (
    (length < old && file.seals & SEAL.F_SEAL_SHRINK) ||
    (length > old && file.seals & SEAL.F_SEAL_GROW)
  ) {
    errno("EPERM", "ftruncate", "sealed");
  }
  p.kernel.emit(p.pid, "ftruncate", { ino: file.ino, from: old, to: length });
  if (length < old) shrinkFile(p.kernel, file, length);
  else if (length > old) growFile(p.kernel, file, length);
}

/** fs/open.c vfs_fallocate, then mm/shmem.c shmem_fallocate. */
export function fallocate(
  p: Process,
  fd: number,
  mode: number,
  offset: number,
  length: number,
): void {
  p.enter("fallocate");
  const f = p.fds.get(fd, "fallocate");
  if (offset < 0 || length <= 0) errno("EINVAL", "fallocate");
  if (mode & ~(FALLOC.FALLOC_FL_KEEP_SIZE | FALLOC.FALLOC_FL_PUNCH_HOLE)) {
    errno("EOPNOTSUPP", "fallocate", "unsupported mode");
  }
  const punch = (mode & FALLOC.FALLOC_FL_PUNCH_HOLE) !== 0;
  // "Punch hole must have keep size set"
  if (punch && !(mode & FALLOC.FALLOC_FL_KEEP_SIZE)) errno("EOPNOTSUPP", "fallocate");
  if (!f.writable) errno("EBADF", "fallocate", "not open for writing");
  if (f.inode.kind === "pipe") errno("ESPIPE", "fallocate");
  const file = shmemOf(f);
  // Stryker disable next-line ConditionalExpression: unreachable in the model — a pipe is ESPIPE above and the only other non-shmem file, a userfaultfd, is read-only (EBADF above); the check narrows the type
  if (!file) errno("ENODEV", "fallocate");
  if (offset + length > MAX_FILE_SIZE) errno("EFBIG", "fallocate");
  if (punch) {
    if (file.seals & (SEAL.F_SEAL_WRITE | SEAL.F_SEAL_FUTURE_WRITE)) {
      errno("EPERM", "fallocate", "write sealed");
    }
    p.kernel.emit(p.pid, "punch-hole", { ino: file.ino, offset, length });
    punchHole(p.kernel, file, offset, length);
    return;
  }
  if (file.seals & SEAL.F_SEAL_GROW && offset + length > file.size) {
    errno("EPERM", "fallocate", "grow sealed");
  }
  // shmem_fallocate allocates the whole range, past i_size too: FALLOC_FL_KEEP_SIZE only
  // leaves i_size alone (st_blocks counts those pages; a later growth finds them).
  const end = offset + length;
  for (let pg = Math.floor(offset / PAGE_SIZE); pg * PAGE_SIZE < end; pg++) {
    if (!file.pages.has(pg)) {
      const f = p.kernel.frames.alloc(file.ino, "fallocate");
      p.kernel.frames.flags[f] |= FRAME_NOT_UPTODATE; // shmem_fallocate leaves it !uptodate
      file.pages.set(pg, f);
      file.counters.pagesAllocated++;
    }
  }
  if (!(mode & FALLOC.FALLOC_FL_KEEP_SIZE) && offset + length > file.size) {
    growFile(p.kernel, file, offset + length);
  }
}

export function fstatSize(p: Process, fd: number): number {
  p.enter("fstat");
  const f = p.fds.get(fd, "fstat");
  return f.inode.kind === "shmem" ? f.inode.size : 0;
}

/**
 * fstat's st_blocks: 512-byte units allocated to the file. A shmem inode counts the pages
 * in its page cache (shmem_recalc_inode keeps i_blocks at BLOCKS_PER_PAGE per page), so
 * holes, punched ranges and truncated tails count nothing.
 */
export function fstatBlocks(p: Process, fd: number): number {
  p.enter("fstat");
  const f = p.fds.get(fd, "fstat");
  return f.inode.kind === "shmem" ? f.inode.pages.size * (PAGE_SIZE / 512) : 0;
}

/** Copies file bytes [offset, offset+length) clipped to i_size (rule 7: never past EOF). */
function readFileBytes(p: Process, file: ShmemFile, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(Math.max(0, Math.min(length, file.size - offset)));
  readFileBytesInto(p, file, offset, out);
  return out;
}

/** Copies file bytes at `offset` into `dst`, clipped to i_size; holes read as zero. */
function readFileBytesInto(p: Process, file: ShmemFile, offset: number, dst: Uint8Array): number {
  const n = Math.max(0, Math.min(dst.length, file.size - offset));
  const mem = p.kernel.frames.view();
  let done = 0;
  while (done < n) {
    const pos = offset + done;
    const pg = Math.floor(pos / PAGE_SIZE);
    const inPage = pos % PAGE_SIZE;
    const m = Math.min(PAGE_SIZE - inPage, n - done);
    const f = file.pages.get(pg);
    if (f !== undefined) {
      dst.set(mem.subarray(f * PAGE_SIZE + inPage, f * PAGE_SIZE + inPage + m), done);
    } else {
      dst.fill(0, done, done + m);
    }
    done += m;
  }
  p.counters.bytesKernelCopied += n;
  return n;
}

/**
 * Writes bytes into the page cache, growing i_size; shmem_write_begin refuses write-sealed
 * files, and growth past i_size under F_SEAL_GROW, page by page.
 */
function writeFileBytes(
  p: Process,
  file: ShmemFile,
  data: Uint8Array,
  offset: number,
  syscall: string,
): number {
  if (file.seals & (SEAL.F_SEAL_WRITE | SEAL.F_SEAL_FUTURE_WRITE))
    errno("EPERM", syscall, "write sealed");
  let done = 0;
  const k = p.kernel;
  while (done < data.length) {
    const pos = offset + done;
    const pg = Math.floor(pos / PAGE_SIZE);
    const inPage = pos % PAGE_SIZE;
    const m = Math.min(PAGE_SIZE - inPage, data.length - done);
    if (file.seals & SEAL.F_SEAL_GROW && pos + m > file.size) {
      if (done === 0) errno("EPERM", syscall, "grow sealed");
      break;
    }
    let f = file.pages.get(pg);
    if (f === undefined) {
      try {
        f = k.frames.alloc(file.ino, syscall);
      } catch (e) {
        if (done === 0) throw e;
        break;
      }
      file.pages.set(pg, f);
      file.counters.pagesAllocated++;
    }
    k.frames.flags[f] &= ~FRAME_NOT_UPTODATE; // shmem_write_end: folio_mark_uptodate
    k.frames.view().set(data.subarray(done, done + m), f * PAGE_SIZE + inPage);
    done += m;
    if (pos + m > file.size) growFile(k, file, pos + m);
  }
  p.counters.bytesKernelCopied += done;
  return done;
}

/**
 * The checks ksys_pread64 and ksys_pwrite64 share, in their order: offset, fd, ESPIPE (no
 * FMODE_PREAD/PWRITE but on a regular file), access mode (vfs_read/vfs_write: EBADF).
 */
function positionalFile(p: Process, fd: number, offset: number, write: boolean): ShmemFile {
  const name = write ? "pwrite64" : "pread64";
  p.enter(name);
  if (offset < 0) errno("EINVAL", name);
  const f = p.fds.get(fd, name);
  // "if (f.file->f_mode & FMODE_PREAD)" (FMODE_PWRITE): only a regular file has it here;
  // a pipe or an anonymous inode (userfaultfd) is ESPIPE.
  const file = shmemOf(f);
  if (!file) errno("ESPIPE", name);
  // Stryker disable next-line ConditionalExpression: every shmem file in the model is open read-write (memfd_create's O_RDWR; no open(2) of /proc/self/fd), so vfs_read/vfs_write's EBADF cannot happen here
  if (!(write ? f.writable : f.readable)) errno("EBADF", name);
  return file;
}

/** fs/read_write.c ksys_pread64. */
export function pread(p: Process, fd: number, length: number, offset: number): Uint8Array {
  const file = positionalFile(p, fd, offset, false);
  if (length < 0) errno("EINVAL", "pread64");
  return readFileBytes(p, file, offset, length);
}

/** pread(2) into a caller's buffer (no allocation per call): the count read, short at EOF. */
export function preadInto(p: Process, fd: number, dst: Uint8Array, offset: number): number {
  return readFileBytesInto(p, positionalFile(p, fd, offset, false), offset, dst);
}

/** fs/read_write.c ksys_pwrite64. */
export function pwrite(p: Process, fd: number, data: Uint8Array, offset: number): number {
  const file = positionalFile(p, fd, offset, true);
  if (data.length === 0) return 0;
  return writeFileBytes(p, file, data, offset, "pwrite64");
}

/**
 * read(2) into user memory. The copy to the user buffer is a kernel access: a page that
 * would fault ends the copy (rule 6) with a short count, or EFAULT when nothing was copied.
 */
export function readToUser(p: Process, fd: number, addr: number, length: number): number {
  p.enter("read");
  const f = p.fds.get(fd, "read");
  if (!f.readable) errno("EBADF", "read");
  if (length === 0) return 0;
  if (f.inode.kind === "pipe") {
    const pipe = f.inode;
    if (pipe.buffers.length === 0) {
      if (pipe.writers === 0) return 0;
      // pipe_read sleeps until a writer writes or the last writer closes.
      p.kernel.scheduler.block(p, () => pipe.buffers.length > 0 || pipe.writers === 0, "pipe read");
      if (pipe.buffers.length === 0) return 0;
    }
    // fs/pipe.c pipe_read: "if (unlikely(written < chars)) { if (!ret) ret = -EFAULT; break; }"
    // — a buffer is consumed only when all of it reached the user.
    let ret = 0;
    while (ret < length && pipe.buffers.length > 0) {
      const buf = pipe.buffers[0];
      const chars = Math.min(buf.data.length, length - ret);
      const written = p.kernelAccess(addr + ret, chars, true, buf.data.subarray(0, chars));
      p.counters.bytesKernelCopied += written;
      if (written < chars) {
        if (ret === 0) errno("EFAULT", "read");
        break;
      }
      ret += chars;
      if (chars === buf.data.length) pipe.buffers.shift();
      else pipe.buffers[0] = { data: buf.data.subarray(chars), offset: buf.offset + chars };
    }
    return ret;
  }
  const file = shmemOf(f);
  if (!file) errno("EINVAL", "read");
  const data = readFileBytes(p, file, f.pos, length);
  if (data.length === 0) return 0;
  const done = p.kernelAccess(addr, data.length, true, data);
  if (done === 0) errno("EFAULT", "read");
  f.pos += done;
  return done;
}

/** write(2) from user memory: the source pages are read by the kernel, never with a signal. */
export function writeFromUser(p: Process, fd: number, addr: number, length: number): number {
  p.enter("write");
  const f = p.fds.get(fd, "write");
  if (!f.writable) errno("EBADF", "write");
  if (length === 0) return 0;
  if (f.inode.kind === "pipe") return pipeWrite(p, f.inode, addr, length);
  const file = shmemOf(f);
  // Stryker disable next-line ConditionalExpression: unreachable — pipes return above and a userfaultfd is read-only (EBADF above); the check narrows the type
  if (!file) errno("EINVAL", "write");
  if (file.seals & (SEAL.F_SEAL_WRITE | SEAL.F_SEAL_FUTURE_WRITE)) errno("EPERM", "write");
  const buf = new Uint8Array(length);
  const got = p.kernelAccess(addr, length, false, buf);
  if (got === 0) errno("EFAULT", "write");
  const done = writeFileBytes(p, file, buf.subarray(0, got), f.pos, "write");
  f.pos += done;
  return done;
}

/**
 * fs/pipe.c pipe_write. The sub-page remainder of the write may merge into the last buffer
 * ("if (offset + chars <= PAGE_SIZE)"), all or nothing (-EFAULT); then whole pages are
 * copied into new buffers, and a page copied short ends the write: "if (unlikely(copied <
 * PAGE_SIZE && iov_iter_count(from))) { if (!ret) ret = -EFAULT; break; }".
 */
function pipeWrite(p: Process, pipe: Pipe, addr: number, length: number): number {
  if (pipe.readers === 0) errno("EPIPE", "write");
  let ret = 0;
  const chars = length % PAGE_SIZE;
  const last = pipe.buffers[pipe.buffers.length - 1];
  if (chars && last && last.offset + last.data.length + chars <= PAGE_SIZE) {
    const buf = new Uint8Array(chars);
    if (p.kernelAccess(addr, chars, false, buf) < chars) errno("EFAULT", "write");
    const merged = new Uint8Array(last.data.length + chars);
    merged.set(last.data);
    merged.set(buf, last.data.length);
    last.data = merged;
    ret = chars;
  }
  while (ret < length) {
    if (pipe.buffers.length >= PIPE_BUFFERS) {
      // A blocking pipe_write sleeps until a reader makes room, partial write or not; the
      // last reader going ends it (EPIPE, or the bytes already written).
      p.kernel.scheduler.block(
        p,
        () => pipe.buffers.length < PIPE_BUFFERS || pipe.readers === 0,
        "pipe write",
      );
      if (pipe.readers === 0) {
        if (ret > 0) break;
        errno("EPIPE", "write");
      }
    }
    const n = Math.min(PAGE_SIZE, length - ret);
    const page = new Uint8Array(n);
    const copied = p.kernelAccess(addr + ret, n, false, page);
    if (copied < n) {
      if (ret === 0) errno("EFAULT", "write");
      break;
    }
    pipe.buffers.push({ data: page, offset: 0 });
    ret += n;
  }
  p.counters.bytesKernelCopied += ret;
  return ret;
}

/** mm/memfd.c memfd_add_seals. */
export function addSeals(p: Process, fd: number, seals: number): void {
  p.enter("fcntl");
  const f = p.fds.get(fd, "fcntl");
  if (!f.writable) errno("EPERM", "fcntl", "F_ADD_SEALS needs a writable file");
  if (seals & ~F_ALL_SEALS) errno("EINVAL", "fcntl", "unknown seal");
  const file = shmemOf(f);
  if (!file) errno("EINVAL", "fcntl", "not a memfd");
  if (file.seals & SEAL.F_SEAL_SEAL) errno("EPERM", "fcntl", "F_SEAL_SEAL");
  if (seals & SEAL.F_SEAL_WRITE && !(file.seals & SEAL.F_SEAL_WRITE)) {
    // mapping_deny_writable: refused while any shared mapping may write.
    if (file.writableMappings > 0) errno("EBUSY", "fcntl", "writable shared mapping exists");
  }
  // "SEAL_EXEC implys SEAL_WRITE, making W^X from the start."
  if (seals & SEAL.F_SEAL_EXEC && file.execMode) {
    seals |= SEAL.F_SEAL_SHRINK | SEAL.F_SEAL_GROW | SEAL.F_SEAL_WRITE | SEAL.F_SEAL_FUTURE_WRITE;
  }
  file.seals |= seals;
  p.kernel.emit(p.pid, "add-seals", { ino: file.ino, seals: file.seals });
}

export function getSeals(p: Process, fd: number): number {
  p.enter("fcntl");
  const file = shmemOf(p.fds.get(fd, "fcntl"));
  if (!file) errno("EINVAL", "fcntl", "not a memfd");
  return file.seals;
}

/** The zero-beyond-EOF proposal's per-inode switch (model-only; EINVAL when the feature is off). */
export function setZeroBeyondEof(p: Process, fd: number): void {
  p.enter("fcntl");
  const file = shmemOf(p.fds.get(fd, "fcntl"));
  if (!file || !p.kernel.features.has("zero-beyond-eof")) {
    errno("EINVAL", "fcntl", "zero-beyond-eof is not enabled in this kernel");
  }
  file.zeroBeyondEof = true;
}

export { ErrnoError };
