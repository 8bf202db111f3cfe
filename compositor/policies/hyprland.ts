/**
 * `hyprland`: Hyprland's own wl_shm, src/protocols/core/Shm.cpp after PR #8572 (the size
 * check against fstat on create and resize; issues #7518, #8570). Read from a stored copy
 * of hyprwm/Hyprland's file that has `shmIsSizeValid` (the release that first shipped it was
 * not pinned here). Functions followed: CWLSHMResource's create_pool,
 * CWLSHMPoolResource::CWLSHMPoolResource (shmIsSizeValid, CSHMPool's mmap), its resize and
 * create_buffer lambdas, CSHMPool::resize (munmap + mmap), CWLSHMBuffer::CWLSHMBuffer
 * (a CTexture made from `pool->data + offset` at create_buffer), CWLSHMBuffer::update
 * (texture->update), and src/protocols/core/Compositor.cpp commitPendingState (its caller).
 *
 * - No SIGBUS handler anywhere in the file (nor sigaction in Hyprland's wl_shm path): a read
 *   beyond EOF kills the compositor (issue #7518: "any client can crash it").
 * - create_pool: `shmIsSizeValid(fd, size)` — fstat's st_size >= size, else
 *   `error(-1, "The size of the file is not big enough for the shm pool")`; then mmap; a
 *   failed mmap is WL_SHM_ERROR_INVALID_FD "Couldn't mmap from fd". The fd is kept.
 * - resize: shrinking is error -1; then the same fstat check; then munmap and mmap anew at
 *   once (nothing defers it; a failed mmap is only logged, and the pool's data is MAP_FAILED
 *   from then on: the next read is SIGSEGV).
 * - create_buffer: format, then offset/w/h/stride positive — no bounds check against the
 *   pool — then the CWLSHMBuffer constructor uploads the whole buffer into its own texture,
 *   right there: an offset past the pool or a pool larger than its file is read at
 *   create_buffer.
 * - A commit that attached a buffer updates that buffer's own texture — whole: in
 *   src/protocols/core/Compositor.cpp commitPendingState, `current.buffer->update(CBox{{},
 *   {INT32_MAX, INT32_MAX}}); // FIXME: figure this out to not use this hack. QT apps are
 *   wonky without this.` — the client's damage is not used; a synchronous (shm) buffer is
 *   released right after.
 * The fstat checks close create-time lies (pool larger than file, zero-length file); a
 * truncation after create_pool still kills it. Error -1 reaches the client as code
 * 4294967295 (wl_resource_post_error's uint32_t), on the wl_shm_pool.
 */
import { SHM_ERROR } from "../../protocol/schema.ts";
import { ErrnoError } from "../../shm/errors.ts";
import { MAP } from "../../shm/uapi.ts";
import { type Policy, type ShmPool, ShmRefusal } from "../policy.ts";
import { HYPRLAND_ERROR_MINUS_ONE, HYPRLAND_PROFILE } from "../validation.ts";
import {
  closeQuiet,
  loadRange,
  loadSpan,
  mappedAccess,
  orRefuse,
  RW,
  unmapQuiet,
} from "./common.ts";

/**
 * mmap(2)'s MAP_FAILED, `(void *) -1`, kept by CSHMPool as its data after a failed resize.
 * Any read through it faults (SIGSEGV: the top of the address space, or, wrapped by an
 * offset, the first page, below mmap_min_addr); 2^64 stands for it here.
 */
const MAP_FAILED = 2 ** 64;

/** The Shm.cpp of one Hyprland version: with or without PR #8572's shmIsSizeValid. */
export function hyprlandShm(sizeChecks: boolean): Pick<Policy, "create"> {
  return {
    create(proc) {
      // CSHMPool's size is a size_t: a negative int32 size becomes a huge one.
      // (2^64 - size is as good: beyond any file and any address space either way.)
      // Stryker disable next-line ArithmeticOperator: equivalent (above)
      const sizeT = (size: number) => (size < 0 ? 2 ** 64 + size : size);
      // shmIsSizeValid: `(size_t)st.st_size >= size`.
      const sizeValid = (pool: ShmPool, size: number) => {
        if (!sizeChecks) return;
        if (proc.fstatSize(pool.fd) < sizeT(size))
          throw new ShmRefusal(
            HYPRLAND_ERROR_MINUS_ONE,
            "The size of the file is not big enough for the shm pool",
          );
      };
      const map = (pool: ShmPool, size: number) =>
        orRefuse(
          () => proc.mmap(0, sizeT(size), RW, MAP.MAP_SHARED, pool.fd, 0),
          () => new ShmRefusal(SHM_ERROR.invalid_fd, "Couldn't mmap from fd"),
        );
      return {
        mapPool(pool) {
          sizeValid(pool, pool.size);
          pool.addr = map(pool, pool.size);
        },
        growPool(pool, size) {
          sizeValid(pool, size);
          // CSHMPool::resize: "if (data) munmap(data, size); size = size_; data =
          // mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0); if (data ==
          // MAP_FAILED) LOGM(ERR, "Couldn't mmap {} bytes from fd {} of shm client", ...)".
          // A failed mmap is only logged: nothing is posted, and data stays MAP_FAILED, so
          // the next read through it is SIGSEGV. (munmap(MAP_FAILED) is EINVAL, ignored.)
          if (pool.addr !== MAP_FAILED) unmapQuiet(proc, pool.addr, pool.size);
          pool.size = size;
          // mmap throws nothing but an errno: the rethrow never runs, and a catch that
          // swallowed everything would be the same (this also marks the try body's mutant).
          // Stryker disable BlockStatement,ConditionalExpression: equivalent (above)
          try {
            pool.addr = proc.mmap(0, sizeT(size), RW, MAP.MAP_SHARED, pool.fd, 0);
          } catch (e) {
            if (!(e instanceof ErrnoError)) throw e;
            pool.addr = MAP_FAILED;
          }
          // Stryker restore BlockStatement,ConditionalExpression
        },
        unmapPool(pool) {
          // ~CSHMPool: "munmap(data, size); close(fd);", the munmap's EINVAL ignored.
          if (pool.addr !== MAP_FAILED) unmapQuiet(proc, pool.addr, pool.size);
          closeQuiet(proc, pool);
        },
        // beginDataPtr / endDataPtr do nothing: plain loads, no handler.
        beginAccess: (b) => mappedAccess(b),
        read: (a, dst) => loadSpan(proc, a, dst),
        // Unreachable while `reads.damage` is "full" (commitPendingState updates the whole
        // texture): the compositor asks for ranges only of a damage-only reader.
        // Stryker disable next-line ArrowFunction: unreachable (above)
        readRange: (a, dst, off, n) => loadRange(proc, a, dst, off, n),
        endAccess: () => undefined,
      };
    },
  };
}

export const hyprland: Policy = {
  name: "hyprland",
  source:
    "Hyprland src/protocols/core/Shm.cpp after PR #8572 (shmIsSizeValid, CWLSHMBuffer::CWLSHMBuffer, CWLSHMBuffer::update)",
  summary:
    "own wl_shm, no SIGBUS handler; fstat size checks at create/resize; texture read at create_buffer",
  clientReceives:
    "nothing: the compositor dies of SIGBUS at a read beyond EOF (no handler); error -1 (4294967295) at create_pool/resize when the file is smaller than the pool",
  features: [],
  profile: HYPRLAND_PROFILE,
  deferResizeWhileReading: false,
  // The texture is the buffer's own (CWLSHMBuffer's CTexture); updated whole at commit.
  reads: { at: "commit", damage: "full", texture: "buffer", readAtCreate: true },
  ...hyprlandShm(true),
};
export default hyprland;
