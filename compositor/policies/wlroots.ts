/**
 * `wlroots`: wlroots types/wlr_shm.c, its own wl_shm. Functions followed: mapping_create,
 * shm_handle_create_pool (fd kept, no seal check), pool_handle_resize (a new mapping from
 * the kept fd; the old one `dropped`, munmapped by mapping_consider_destroy once no access
 * references it), buffer_begin_data_ptr_access / buffer_end_data_ptr_access, handle_sigbus.
 *
 * - A process-global list of active accesses (not per thread), one node per buffer access,
 *   each holding the mapping current at begin. The handler is installed (SA_SIGINFO |
 *   SA_NODEFER) when the list goes from empty to non-empty and the previous action is
 *   restored when it empties again: outside any access, SIGBUS has its old disposition.
 * - handle_sigbus finds the node whose mapping contains si_addr and maps anonymous zero
 *   memory over that whole mapping; none found (or mmap failed) → it calls the previous
 *   handler directly, which for SIG_DFL is a call through a null pointer (see
 *   common.ts callPrevious).
 * - Nothing is recorded and nothing is sent: the client's buffer reads as zeros.
 *
 * When and how much it reads (types/wlr_compositor.c, types/buffer/client.c, with the
 * GLES2 renderer): surface_commit_state → surface_apply_damage runs while
 * wl_surface.commit is dispatched. The first buffer (or one of another size or format) is
 * uploaded whole by wlr_client_buffer_create → wlr_texture_from_buffer; a later buffer
 * goes through wlr_client_buffer_apply_damage → wlr_texture_update_from_buffer →
 * gles2_texture_update_from_buffer, which calls begin_data_ptr_access once and uploads
 * each rectangle of the buffer damage (glTexSubImage2D with GL_UNPACK_ROW_LENGTH): bytes
 * outside the damage are never read. The texture outlives the wl_buffer (the client buffer
 * is unlocked; the texture stays the surface's until the next commit).
 */

import { SHM_ERROR } from "../../protocol/schema.ts";
import type { SigInfo } from "../../shm/errors.ts";
import type { SigAction } from "../../shm/signal.ts";
import { MAP } from "../../shm/uapi.ts";
import type { Policy, ShmPool } from "../policy.ts";
import { ShmRefusal } from "../policy.ts";
import { WLROOTS_PROFILE } from "../validation.ts";
import { callPrevious, loadRange, loadSpan, orRefuse, RW, unmapQuiet, zeroOver } from "./common.ts";

interface Mapping {
  addr: number;
  size: number;
  dropped: boolean;
}
interface Node {
  mapping: Mapping;
}

export const wlroots: Policy = {
  name: "wlroots",
  source:
    "wlroots types/wlr_shm.c (buffer_begin_data_ptr_access, handle_sigbus, pool_handle_resize)",
  summary: "handler installed while any access is active; zeros over the mapping; nothing sent",
  clientReceives: "nothing: its buffer shows zeros",
  features: [],
  profile: WLROOTS_PROFILE,
  follows: [
    {
      compositor: "sway",
      // wlr_shm (types/wlr_shm.c) replaced libwayland's wl_shm in wlroots 0.17.
      version: "wlroots 0\\.(1[7-9]|[2-9]\\d)",
      why: "sway's wl_shm is wlroots' own wlr_shm from 0.17 on",
    },
    { compositor: "cage", version: "wlroots 0\\.(1[7-9]|[2-9]\\d)", why: "cage is wlroots" },
  ],
  deferResizeWhileReading: false,
  reads: { at: "commit", damage: "damage" },
  create(proc) {
    const active: Node[] = [];
    // Stryker disable next-line ObjectLiteral,StringLiteral: never read before the first beginAccess assigns it (handleSigbus and the restore only run after one)
    let prevAction: SigAction = { handler: "default" };

    const mappingCreate = (fd: number, size: number): Mapping => ({
      addr: orRefuse(
        () => proc.mmap(0, size, RW, MAP.MAP_SHARED, fd, 0),
        () => new ShmRefusal(SHM_ERROR.invalid_fd, "Failed to create memory mapping"),
      ),
      size,
      dropped: false,
    });
    const considerDestroy = (m: Mapping) => {
      if (!m.dropped || active.some((n) => n.mapping === m)) return;
      unmapQuiet(proc, m.addr, m.size);
      m.addr = 0;
    };
    const current = (pool: ShmPool) => pool.state.mapping as Mapping;

    function handleSigbus(info: SigInfo): void {
      const prev = prevAction;
      const node = active.find(
        (n) => info.addr >= n.mapping.addr && info.addr < n.mapping.addr + n.mapping.size,
      );
      if (node && zeroOver(proc, node.mapping.addr, node.mapping.size)) return;
      callPrevious(proc, prev, info);
    }

    return {
      mapPool(pool) {
        const m = mappingCreate(pool.fd, pool.size);
        pool.state.mapping = m;
        pool.addr = m.addr;
      },
      growPool(pool, size) {
        const m = mappingCreate(pool.fd, size);
        const old = current(pool);
        old.dropped = true;
        considerDestroy(old);
        pool.state.mapping = m;
        pool.addr = m.addr;
        pool.size = size;
      },
      unmapPool(pool) {
        const m = current(pool);
        m.dropped = true;
        considerDestroy(m);
        if (pool.fd >= 0 && proc.alive) proc.close(pool.fd);
        pool.fd = -1;
      },
      beginAccess(b) {
        const m = current(b.pool);
        if (active.length === 0)
          prevAction = proc.sigaction("SIGBUS", { handler: handleSigbus, nodefer: true });
        const node: Node = { mapping: m };
        active.unshift(node);
        return { buffer: b, base: m.addr + b.offset, state: node };
      },
      read: (a, dst) => loadSpan(proc, a, dst),
      readRange: (a, dst, off, n) => loadRange(proc, a, dst, off, n),
      endAccess(a) {
        const node = a.state as Node;
        const i = active.indexOf(node);
        if (i >= 0) active.splice(i, 1);
        if (active.length === 0) proc.sigaction("SIGBUS", prevAction);
        considerDestroy(node.mapping);
        return undefined;
      },
    };
  },
};
export default wlroots;
