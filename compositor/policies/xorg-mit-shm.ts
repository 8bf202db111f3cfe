/**
 * `xorg-mit-shm`: the X server's MIT-SHM, translated to wl_shm. Sources: xserver
 * os/busfault.c (busfault_init, busfault_register_mmap, busfault_unregister,
 * busfault_sigaction, busfault_check) and Xext/shm.c (ProcShmAttachFd, ShmBusfaultNotify,
 * ShmDetachSegment); docs/policy-sources.md §5.
 *
 * - busfault_init at server start installs the handler (SA_SIGINFO, no SA_NODEFER); the
 *   previous action is OsSigHandler, which ends in FatalError ("Server aborting").
 * - ProcShmAttachFd fstats the fd, refuses an empty file (BadMatch), maps st_size (not a
 *   size the client claims; a failed mmap is BadAccess), closes the fd, and registers a
 *   busfault record { addr, size, valid } for the mapping's lifetime. Like every MIT-SHM
 *   error (and ProcShmPutImage's BadValue, validation.ts XORG_PROFILE) these are X errors
 *   after which Xorg keeps the client: Refusal.xError, not a wl_shm error (measured on
 *   Xvfb 21.1.7, docs/real-compositors.md).
 * - busfault_sigaction: no record containing si_addr, or the record already invalid →
 *   panic (FatalError); else the record becomes invalid, `busfaulted` is set and anonymous
 *   zero memory is mapped over the whole segment.
 * - busfault_check runs at the top of WaitForSomething (here: after each frame, the main
 *   loop's next iteration) and calls ShmBusfaultNotify for invalid records: the record is
 *   unregistered and the ShmSeg resource freed. The client is not disconnected and gets no
 *   error; buffers (pixmaps) keep the zero mapping; later uses of the segment would be
 *   BadShmSeg, an X error that does not disconnect — wl_shm has no such thing, so a
 *   create_buffer on a freed pool makes an inert buffer and a notice, nothing on the wire.
 * - MIT-SHM has no resize: wl_shm_pool.resize is translated as libwayland's mremap, the
 *   record following the mapping.
 * A second fault on the same record cannot happen once the zero mapping covers it (the
 * research derives the same); the invalid-record branch is kept as the source has it.
 */
import { SHM_ERROR } from "../../protocol/schema.ts";
import { ErrnoError, type SigInfo } from "../../shm/errors.ts";
import { MAP } from "../../shm/uapi.ts";
import { type Policy, type PolicyNotice, type ShmPool, ShmRefusal } from "../policy.ts";
import { XORG_PROFILE } from "../validation.ts";
import {
  libwaylandGrow,
  loadSpan,
  mappedAccess,
  RW,
  strerror,
  unmapQuiet,
  zeroOver,
} from "./common.ts";

/**
 * The catalogue behaviours MIT-SHM cannot express, with the reason (the X11 driver,
 * real/x11-behaviours.ts, refuses the same ones): reported as not applicable, never as an
 * invented verdict.
 */
export const XORG_NOT_APPLICABLE: Readonly<Record<string, string>> = {
  "resize-pool-smaller": "MIT-SHM has no pool resize (a segment is the file's size at attach)",
  "resize-during-read": "MIT-SHM has no pool resize (a segment is the file's size at attach)",
  "stride-in-pixels":
    "MIT-SHM has no client stride (ShmPutImage's totalWidth is in pixels; the server pads rows)",
  "negative-size": "ShmAttachFd carries no size: the server fstat()s the file",
  "seal-then-play": "two of its four orders resize the pool, which MIT-SHM has not",
  "flood-buffers": "MIT-SHM has no buffer objects (create_buffer sends nothing)",
  "unknown-format":
    "it never commits its buffer, and MIT-SHM sends a format only with ShmPutImage (create_buffer sends nothing)",
  "memory-pressure": "reclaims the simulated kernel's droppable pages: no real counterpart",
  "protocol-garbage":
    "its garbage is Wayland wire garbage; X11 wire garbage meets the X dispatcher (BadRequest, BadLength: client kept), which the model does not simulate",
};

/** mmap(2)'s MAP_FAILED, `(void *) -1`. */
const MAP_FAILED = -1;

interface Busfault {
  addr: number;
  size: number;
  valid: boolean;
  pool: ShmPool;
}

export const xorgMitShm: Policy = {
  name: "xorg-mit-shm",
  source:
    "xserver os/busfault.c (busfault_sigaction, busfault_check) and Xext/shm.c (ShmBusfaultNotify)",
  summary: "busfault record per segment: zeros, segment freed at the next main-loop turn",
  clientReceives: "nothing, and it stays connected: its segment is freed",
  features: [],
  profile: XORG_PROFILE,
  follows: [
    {
      compositor: "xvfb",
      version: "Xvfb 21\\.",
      why: "Xvfb is the Xorg server (Xext/shm.c, os/busfault.c) with a framebuffer in memory",
    },
  ],
  deferResizeWhileReading: true,
  notApplicable: XORG_NOT_APPLICABLE,
  // ProcShmPutImage reads the segment inside the request (PutImage/CopyArea from
  // shmdesc->addr + offset) and sends ShmCompletion right after.
  readAtCommit: true,
  reads: { frameDone: "all" },
  create(proc, env) {
    const busfaults: Busfault[] = [];
    // busfault_check's `if (!busfaulted) return;` only saves the walk: a record turns
    // invalid only where busfaulted is set, and the walk unregisters every invalid one, so
    // walking every time finds the same (none). Stryker: equivalent, marked below.
    // Stryker disable next-line BooleanLiteral: equivalent (above)
    let busfaulted = false;

    function busfaultSigaction(info: SigInfo): void {
      const b = busfaults.find((r) => r.addr <= info.addr && info.addr < r.addr + r.size);
      if (!b?.valid) env.panic("FatalError: Caught signal 7 (Bus error). Server aborting");
      b!.valid = false;
      busfaulted = true;
      if (!zeroOver(proc, b!.addr, b!.size))
        env.panic("FatalError: Caught signal 7 (Bus error). Server aborting");
    }
    // busfault_init, from OsInit: at server start.
    proc.sigaction("SIGBUS", { handler: busfaultSigaction });

    const unregister = (pool: ShmPool) => {
      const i = busfaults.findIndex((r) => r.pool === pool);
      if (i >= 0) busfaults.splice(i, 1);
    };

    return {
      mapPool(pool) {
        const fd = pool.fd;
        let size = 0;
        // An X error is its code, the bad value and the request's opcodes: no text reaches
        // the client (X11 protocol, "Errors"). The texts below are the lab's notice only.
        try {
          size = proc.fstatSize(fd);
        } catch (e) {
          throw new ShmRefusal(
            SHM_ERROR.invalid_fd,
            // Stryker disable next-line StringLiteral: an X error carries no text (above)
            `fstat: ${strerror(e)}`,
            "BadMatch",
          );
        }
        // "if (fstat(fd, &statb) < 0 || statb.st_size == 0) { close(fd); return BadMatch; }"
        if (size === 0) {
          proc.close(fd);
          pool.fd = -1;
          throw new ShmRefusal(
            SHM_ERROR.invalid_fd,
            // Stryker disable next-line StringLiteral: an X error carries no text (above)
            "empty file",
            "BadMatch",
          );
        }
        // "shmdesc->addr = mmap(...); close(fd); if (shmdesc->addr == ((char *) -1)) {
        // free(shmdesc); return BadAccess; }": the fd is closed before the check.
        let addr = MAP_FAILED;
        // mmap throws nothing but an errno: the rethrow below never runs, and emptying the
        // catch is equivalent. (This also marks the try body's own BlockStatement mutant.)
        // Stryker disable BlockStatement,ConditionalExpression: equivalent (above)
        try {
          addr = proc.mmap(0, size, RW, MAP.MAP_SHARED, fd, 0);
        } catch (e) {
          if (!(e instanceof ErrnoError)) throw e;
        }
        // Stryker restore BlockStatement,ConditionalExpression
        proc.close(fd);
        pool.fd = -1;
        if (addr === MAP_FAILED)
          throw new ShmRefusal(
            SHM_ERROR.invalid_fd,
            // Stryker disable next-line StringLiteral: an X error carries no text (above)
            "mmap failed",
            "BadAccess",
          );
        pool.addr = addr;
        pool.size = size;
        busfaults.unshift({ addr: pool.addr, size, valid: true, pool });
      },
      growPool(pool, size) {
        libwaylandGrow(proc, pool, size);
        const r = busfaults.find((x) => x.pool === pool);
        if (r) {
          r.addr = pool.addr;
          r.size = size;
        }
      },
      unmapPool(pool) {
        unregister(pool);
        unmapQuiet(proc, pool.addr, pool.size);
      },
      beginAccess: (b) => mappedAccess(b),
      read: (a, dst) => loadSpan(proc, a, dst),
      endAccess: () => undefined,
      idle() {
        const out: PolicyNotice[] = [];
        // Stryker disable next-line ConditionalExpression: equivalent (busfaulted, above)
        if (!busfaulted) return out;
        // Stryker disable next-line BooleanLiteral: equivalent (busfaulted, above)
        busfaulted = false;
        for (const r of [...busfaults]) {
          if (r.valid) continue;
          // ShmBusfaultNotify: "shared memory 0x%x truncated by client"
          unregister(r.pool);
          r.pool.freed = true;
          out.push({ pool: r.pool, what: "shared memory truncated by client: segment freed" });
        }
        return out;
      },
    };
  },
};
export default xorgMitShm;
