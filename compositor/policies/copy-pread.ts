/**
 * `copy-pread`: never map the client's file; copy each buffer with pread(2) into compositor
 * memory. A kernel access never raises a signal (LINUX.md rules 6 and 7: read/pread stop at
 * i_size with a short count), so truncation cannot kill the compositor; a short read means
 * the client's file is smaller than the buffer it committed, and the client gets what
 * libwayland gives for the same lie: wl_shm.invalid_fd on the wl_buffer (wayland
 * src/wayland-shm.c wl_shm_buffer_end_access's "error accessing SHM buffer"). The same
 * read path as protocol/testing/test-server.ts. Validation is libwayland's
 * (shm_create_pool, shm_pool_create_buffer, shm_pool_resize); since nothing is mapped, the
 * fd is checked at create_pool with fstat and a zero-length pread (a pipe is ESPIPE →
 * invalid_fd, where libwayland's mmap would fail). Resize only records the size.
 */
import { SHM_ERROR } from "../../protocol/schema.ts";
import { type Policy, ShmRefusal } from "../policy.ts";
import { LIBWAYLAND_PROFILE } from "../validation.ts";
import { orRefuse, strerror } from "./common.ts";

export const copyPread: Policy = {
  name: "copy-pread",
  source: "pread(2) copy (as protocol/testing/test-server.ts); error as wayland-shm.c end_access",
  summary: "never maps: pread copies each buffer; a short read punishes the client",
  clientReceives: "wl_shm.invalid_fd on the wl_buffer (short read)",
  features: [],
  profile: LIBWAYLAND_PROFILE,
  deferResizeWhileReading: false,
  create(proc) {
    return {
      mapPool(pool) {
        const fd = pool.fd;
        orRefuse(
          () => {
            proc.fstatSize(fd);
            proc.pread(fd, 0, 0);
          },
          (e) => new ShmRefusal(SHM_ERROR.invalid_fd, `failed pread fd ${fd}: ${strerror(e)}`),
        );
        pool.addr = 0;
      },
      growPool(pool, size) {
        pool.size = size;
      },
      unmapPool(pool) {
        if (pool.fd >= 0 && proc.alive) proc.close(pool.fd);
        pool.fd = -1;
      },
      beginAccess: (b) => ({ buffer: b, base: 0, state: { short: false } }),
      read(a, dst) {
        const b = a.buffer;
        const got = proc.preadInto(b.pool.fd, dst, b.offset);
        if (got < dst.length) {
          dst.fill(0, got);
          (a.state as { short: boolean }).short = true;
        }
      },
      endAccess(a) {
        if ((a.state as { short: boolean }).short)
          return { error: { code: SHM_ERROR.invalid_fd, message: "error accessing SHM buffer" } };
        return undefined;
      },
    };
  },
};
export default copyPread;
