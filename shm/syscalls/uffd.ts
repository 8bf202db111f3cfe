/**
 * userfaultfd (fs/userfaultfd.c, mm/userfaultfd.c): create, UFFDIO_API, UFFDIO_REGISTER
 * (MISSING), reading fault events, UFFDIO_ZEROPAGE and UFFDIO_COPY. Resolving a shmem page
 * puts it in the page cache, so every process mapping the file sees it (rule 16).
 */
import { errno } from "../errors.ts";
import { OpenFile, UffdFile } from "../file.ts";
import { FRAME_ANON_EXCLUSIVE } from "../frames.ts";
import type { Process } from "../process.ts";
import { PAGE_SIZE, PROT, UFFD } from "../uapi.ts";
import { UffdContext, type UffdEvent } from "../userfaultfd.ts";
import { makePte, PTE_ANON, PTE_WRITE, prepareAnonVma } from "../vma.ts";

const O_CLOEXEC = 0o2000000;
const O_NONBLOCK = 0o4000;
const UFFD_USER_MODE_ONLY = 1;
const SUPPORTED_FEATURES = UFFD.UFFD_FEATURE_MISSING_SHMEM | UFFD.UFFD_FEATURE_SIGBUS;

function ctxOf(p: Process, fd: number, syscall: string): UffdFile {
  const f = p.fds.get(fd, syscall);
  if (f.inode.kind !== "userfaultfd") errno("EINVAL", syscall, "not a userfaultfd");
  return f.inode;
}

export function userfaultfd(p: Process, flags: number): number {
  p.enter("userfaultfd");
  if (flags & ~(O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY)) errno("EINVAL", "userfaultfd");
  const k = p.kernel;
  const inode = new UffdFile(
    k.allocIno(),
    new UffdContext(p.pid, (flags & UFFD_USER_MODE_ONLY) !== 0),
  );
  // anon_inode_getfile("[userfaultfd]", &userfaultfd_fops, ctx, O_RDONLY | ...): read-only.
  return p.fds.install(new OpenFile(k.allocFileId(), inode, true, false), "userfaultfd");
}

export function api(p: Process, fd: number, features: number): void {
  p.enter("ioctl");
  const u = ctxOf(p, fd, "ioctl");
  if (u.apiDone) errno("EINVAL", "ioctl", "UFFDIO_API twice");
  if (features & ~SUPPORTED_FEATURES) errno("EINVAL", "ioctl", "unsupported feature");
  u.apiDone = true;
  u.features = features;
}

export function register(p: Process, fd: number, addr: number, length: number, mode: number): void {
  p.enter("ioctl");
  const u = ctxOf(p, fd, "ioctl");
  if (!u.apiDone) errno("EINVAL", "ioctl", "UFFDIO_API first");
  if (mode !== UFFD.UFFDIO_REGISTER_MODE_MISSING) errno("EINVAL", "ioctl", "only MISSING mode");
  if (addr % PAGE_SIZE || length % PAGE_SIZE || length === 0) errno("EINVAL", "ioctl");
  const end = addr + length;
  // userfaultfd_register: "check that there's at least one vma in the range" — holes
  // between VMAs are allowed (the host registers [vma, hole, vma] and returns 0).
  if (p.mm.overlapping(addr, end).length === 0) errno("EINVAL", "ioctl", "no mapping in the range");
  for (const v of p.mm.isolate(addr, end)) {
    if (v.flags.pfnmap || v.flags.droppable) errno("EINVAL", "ioctl");
    v.uffd = u.ctx;
  }
}

export function readEvent(p: Process, fd: number): UffdEvent {
  p.enter("read");
  const u = ctxOf(p, fd, "read");
  const e = u.ctx.take();
  if (!e) errno("EAGAIN", "read", "no fault pending");
  return e;
}

export function pending(p: Process, fd: number): number {
  return ctxOf(p, fd, "poll").ctx.pending.length;
}

/** Installs pages [addr, addr+len) with `fill` bytes (or zeros); EEXIST when one is present. */
function install(
  p: Process,
  fd: number,
  addr: number,
  data: Uint8Array | undefined,
  length: number,
  what: string,
): number {
  p.enter("ioctl");
  const u = ctxOf(p, fd, "ioctl");
  if (addr % PAGE_SIZE || length % PAGE_SIZE || length === 0) errno("EINVAL", "ioctl", what);
  const k = p.kernel;
  // The ioctls act on the address space the userfaultfd was created in, whoever calls them.
  // "if (mmget_not_zero(ctx->mm)) ... else return -ESRCH": an exited or killed owner's
  // address space is gone even while another process holds the userfaultfd.
  const owner = k.processes.get(u.ctx.ownerPid);
  if (!owner?.alive) {
    errno("ESRCH", "ioctl", `${what}: the registering process is gone`);
  }
  const mm = owner.mm;
  let done = 0;
  for (let a = addr; a < addr + length; a += PAGE_SIZE) {
    const v = mm.find(a);
    if (!v || v.uffd !== u.ctx) {
      if (done === 0) errno("ENOENT", "ioctl", `${what}: range not registered`);
      break;
    }
    const chunk = data?.subarray(done, done + PAGE_SIZE);
    if (v.file) {
      const pg = v.filePage(a);
      // mfill_atomic_pte for shmem: "if (unlikely(pgoff >= max_off)) → -EFAULT".
      if (pg * PAGE_SIZE >= v.file.size) {
        if (done === 0) errno("EFAULT", "ioctl", `${what}: beyond EOF`);
        break;
      }
      if (v.file.pages.has(pg)) {
        if (done === 0) errno("EEXIST", "ioctl", what);
        break;
      }
      const f = k.frames.alloc(v.file.ino, "ioctl");
      if (chunk) k.frames.view().set(chunk, f * PAGE_SIZE);
      v.file.pages.set(pg, f);
      v.file.counters.pagesAllocated++;
    } else {
      // mfill_atomic, before any page: "Ensure the dst_vma has a anon_vma ... if
      // (!(dst_vma->vm_flags & VM_SHARED) && unlikely(anon_vma_prepare(dst_vma)))", so a
      // later fork copies what the ioctl installed (vma_needs_copy).
      prepareAnonVma(v);
      const i = v.index(a);
      if (v.pte(i) !== 0) {
        if (done === 0) errno("EEXIST", "ioctl", what);
        break;
      }
      if (!chunk) {
        v.setPte(i, makePte(0, PTE_ANON));
      } else {
        const f = k.frames.alloc(u.ctx.ownerPid, "ioctl");
        k.frames.view().set(chunk, f * PAGE_SIZE);
        // mfill_atomic_install_pte: "bool writable = dst_vma->vm_flags & VM_WRITE" — a
        // read-only range gets a read-only entry — and folio_add_new_anon_rmap(...,
        // RMAP_EXCLUSIVE): the new page is this process's alone.
        k.frames.flags[f] = FRAME_ANON_EXCLUSIVE;
        v.setPte(i, makePte(f, PTE_ANON | (v.prot & PROT.PROT_WRITE ? PTE_WRITE : 0)));
      }
    }
    done += PAGE_SIZE;
  }
  u.ctx.wake(addr, addr + done);
  return done;
}

export function zeropage(p: Process, fd: number, addr: number, length: number): number {
  return install(p, fd, addr, undefined, length, "UFFDIO_ZEROPAGE");
}

export function copy(p: Process, fd: number, addr: number, data: Uint8Array): number {
  return install(p, fd, addr, data, data.length, "UFFDIO_COPY");
}
