/**
 * `kwin`: KWin src/wayland/shmclientbuffer.cpp, the current design with its own wl_shm
 * (docs/policy-sources.md §3a). Functions followed: ShmClientBufferIntegrationPrivate::
 * shm_create_pool, ShmPool::ShmPool (seal check), ShmPool::shm_pool_resize (a new
 * MemoryMap from the kept fd; in-flight accesses keep the old one alive through its
 * shared_ptr), ShmClientBuffer::map / unmap, sigbusHandler.
 *
 * - `sigbusImpossible`: F_SEAL_SHRINK and st_size >= the mapping's size, computed once.
 * - map(): unless the pool's sigbus is impossible, install the handler once per process
 *   (std::call_once, SA_SIGINFO | SA_NODEFER, never uninstalled); then always push or count
 *   the buffer's ShmAccess holding the pool's current mapping.
 * - sigbusHandler walks the accesses for the mapping containing si_addr and maps anonymous
 *   zeros over the whole mapping; not found → it calls the previous handler directly.
 * - Nothing is sent to the client.
 *
 * When and how much it reads: at render time, not at commit. SurfaceItem's pixmap is
 * updated before painting: OpenGLSurfaceTexture::update(region) → updateShmTexture(buffer,
 * region), which maps the buffer (GraphicsBufferView → ShmClientBuffer::map, the access
 * above) and uploads each rectangle of the damaged region (m_texture->update(image, rect));
 * only the first upload (loadShmTexture) reads the whole image. The ShmClientBuffer
 * outlives its wl_buffer (buffer_destroy_resource → drop(): the GraphicsBuffer stays while
 * referenced), so a buffer destroyed after its commit is still mapped and read at the next
 * render, inside map/unmap.
 * (The older KWaylandServer design, §3b, used libwayland's wl_shm: see the libwayland policy.)
 */
import { SHM_ERROR } from "../../protocol/schema.ts";
import type { SigInfo } from "../../shm/errors.ts";
import { onErrno } from "../../shm/expected-errors.ts";
import type { SigAction } from "../../shm/signal.ts";
import { MAP, SEAL } from "../../shm/uapi.ts";
import { type Policy, type ShmPool, ShmRefusal } from "../policy.ts";
import { KWIN_PROFILE } from "../validation.ts";
import { callPrevious, loadRange, loadSpan, orRefuse, RW, unmapQuiet, zeroOver } from "./common.ts";

/** A MemoryMap held by shared_ptr: the pool and each access in flight hold a reference. */
interface MemoryMap {
  addr: number;
  size: number;
  refs: number;
}
interface ShmAccess {
  mapping: MemoryMap;
  count: number;
}

export const kwin: Policy = {
  name: "kwin",
  source: "KWin src/wayland/shmclientbuffer.cpp (ShmClientBuffer::map/unmap, sigbusHandler)",
  summary: "handler installed once; zeros over the accessed mapping; nothing sent",
  clientReceives: "nothing: its buffer shows zeros",
  features: [],
  profile: KWIN_PROFILE,
  follows: [
    {
      compositor: "kwin",
      version: "kwin_wayland 6\\.",
      why: "ShmClientBuffer with its own wl_shm (KWin 6; 5.27 is kwin-5.27)",
    },
  ],
  deferResizeWhileReading: false,
  reads: { at: "frame", damage: "damage", destroyed: "read" },
  create(proc) {
    let installed = false;
    // Stryker disable next-line ObjectLiteral,StringLiteral: never read before the call_once in beginAccess assigns it (the handler is not installed until then)
    let prevAction: SigAction = { handler: "default" };
    /** s_accessedBuffers: one node per buffer with an access in flight. */
    const accessed = new Map<object, ShmAccess>();

    const newMap = (fd: number, size: number, message: string): MemoryMap => ({
      addr: orRefuse(
        () => proc.mmap(0, size, RW, MAP.MAP_SHARED, fd, 0),
        () => new ShmRefusal(SHM_ERROR.invalid_fd, message),
      ),
      size,
      refs: 1,
    });
    const release = (m: MemoryMap) => {
      if (--m.refs === 0) unmapQuiet(proc, m.addr, m.size);
    };
    const current = (pool: ShmPool) => pool.state.mapping as MemoryMap;

    function sigbusHandler(info: SigInfo): void {
      for (const a of accessed.values()) {
        const m = a.mapping;
        if (info.addr >= m.addr && info.addr < m.addr + m.size) {
          if (!zeroOver(proc, m.addr, m.size)) callPrevious(proc, prevAction, info);
          return;
        }
      }
      callPrevious(proc, prevAction, info);
    }

    return {
      mapPool(pool) {
        const m = newMap(pool.fd, pool.size, "failed to map shm pool");
        pool.state.mapping = m;
        pool.addr = m.addr;
        // F_GET_SEALS == -1 (EINVAL: not a memfd): sigbusImpossible stays false.
        const seals = onErrno(["EINVAL", "EBADF"], () => proc.getSeals(pool.fd), 0);
        const impossible =
          (seals & SEAL.F_SEAL_SHRINK) !== 0 &&
          onErrno(["EBADF"], () => proc.fstatSize(pool.fd) >= m.size, false);
        pool.state.sigbusImpossible = impossible;
      },
      growPool(pool, size) {
        const m = newMap(pool.fd, size, "failed to map shm pool with the new size");
        release(current(pool));
        pool.state.mapping = m;
        pool.addr = m.addr;
        pool.size = size;
      },
      unmapPool(pool) {
        release(current(pool));
        if (pool.fd >= 0 && proc.alive) proc.close(pool.fd);
        pool.fd = -1;
      },
      beginAccess(b) {
        const pool = b.pool;
        if (!pool.state.sigbusImpossible && !installed) {
          installed = true;
          prevAction = proc.sigaction("SIGBUS", { handler: sigbusHandler, nodefer: true });
        }
        // One ShmAccess per buffer, keyed by the buffer's identity (its view object's key).
        const key = b as object;
        let a = accessed.get(key);
        if (!a) {
          const m = current(pool);
          m.refs++;
          a = { mapping: m, count: 0 };
          accessed.set(key, a);
        }
        a.count++;
        return { buffer: b, base: a.mapping.addr + b.offset, state: a };
      },
      read: (a, dst) => loadSpan(proc, a, dst),
      readRange: (a, dst, off, n) => loadRange(proc, a, dst, off, n),
      endAccess(a) {
        const acc = a.state as ShmAccess;
        if (--acc.count === 0) {
          accessed.delete(a.buffer as object);
          release(acc.mapping);
        }
        return undefined;
      },
    };
  },
};
export default kwin;
