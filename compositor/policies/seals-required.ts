/**
 * `seals-required`: refuse what libwayland's shortcut only skips. wayland
 * src/wayland-shm.c shm_create_pool computes `sigbus_is_impossible` from F_SEAL_SHRINK and
 * st_size >= size; this policy makes that the admission rule — create_pool refuses, with
 * wl_shm.invalid_fd, a file not sealed against shrinking or smaller than the pool — and
 * re-checks it on resize, which libwayland does not (a sealed pool grown past its file
 * would otherwise read beyond EOF). Simon Ser (LKML, Apr 2021): "there doesn't exist a
 * single Wayland compositor that enforces file sealing for its clients". The same rule as
 * the protocol variant `sealed-pools` (protocol/variant.ts), here as compositor policy.
 * Reads are plain loads with no handler: with the seal, the file cannot shrink.
 */
import { SHM_ERROR } from "../../protocol/schema.ts";
import { onErrno } from "../../shm/expected-errors.ts";
import type { Process } from "../../shm/process.ts";
import { SEAL } from "../../shm/uapi.ts";
import { type Policy, type ShmPool, ShmRefusal } from "../policy.ts";
import { LIBWAYLAND_PROFILE } from "../validation.ts";
import { libwaylandGrow, libwaylandMap, loadSpan, mappedAccess, unmapQuiet } from "./common.ts";

function requireSealed(proc: Process, pool: ShmPool, size: number): void {
  // F_GET_SEALS fails with EINVAL on anything but a memfd. Only that is a refusal: a
  // compositor killed mid-call stays killed.
  const seals = onErrno(["EINVAL", "EBADF"], () => proc.getSeals(pool.fd), null);
  if (seals === null) throw new ShmRefusal(SHM_ERROR.invalid_fd, "pool fd is not a sealable memfd");
  if ((seals & SEAL.F_SEAL_SHRINK) === 0)
    throw new ShmRefusal(
      SHM_ERROR.invalid_fd,
      "pool fd is not sealed against shrinking (F_SEAL_SHRINK)",
    );
  const fileSize = proc.fstatSize(pool.fd);
  if (fileSize < size)
    throw new ShmRefusal(
      SHM_ERROR.invalid_fd,
      `pool size ${size} exceeds its sealed file (${fileSize})`,
    );
}

export const sealsRequired: Policy = {
  name: "seals-required",
  source: "wayland src/wayland-shm.c shm_create_pool's sigbus_is_impossible rule, enforced",
  summary: "create_pool and resize refuse files not sealed with F_SEAL_SHRINK or too small",
  clientReceives: "wl_shm.invalid_fd at create_pool (it cannot truncate a sealed file)",
  features: [],
  profile: LIBWAYLAND_PROFILE,
  deferResizeWhileReading: true,
  create(proc) {
    return {
      mapPool(pool) {
        requireSealed(proc, pool, pool.size);
        // The fd is kept (unlike libwayland) to re-check the file's size on resize.
        libwaylandMap(proc, pool, { keepFd: true });
      },
      growPool(pool, size) {
        requireSealed(proc, pool, size);
        libwaylandGrow(proc, pool, size);
      },
      unmapPool(pool) {
        unmapQuiet(proc, pool.addr, pool.size);
        if (pool.fd >= 0 && proc.alive) proc.close(pool.fd);
        pool.fd = -1;
      },
      beginAccess: (b) => mappedAccess(b),
      read: (a, dst) => loadSpan(proc, a, dst),
      endAccess: () => undefined,
    };
  },
};
export default sealsRequired;
