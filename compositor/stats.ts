/**
 * What the compositor counts: its process's kernel counters (faults, signals, syscalls,
 * bytes read), per frame and per run, and its records of the protocol errors it sent and
 * the notices its policy posted.
 */
import type { Process } from "../shm/process.ts";
import type { FaultPlace } from "./fault-place.ts";
import type { SurfacePlacement } from "./output.ts";

/** The compositor process's kernel counters at one moment (or a difference of two). */
export interface KernelFigures {
  faults: number;
  sigbus: number;
  sigsegv: number;
  signals: number;
  syscalls: number;
  bytesUserRead: number;
  bytesKernelCopied: number;
  anonPages: number;
  zeroPages: number;
  uffdFaults: number;
}

export interface ProtocolErrorRecord {
  frame: number;
  client: string;
  clientId: number;
  objectId: number;
  interface: string;
  code: number;
  message: string;
  protoCode: string;
}

export interface NoticeRecord {
  frame: number;
  client: string;
  clientId: number;
  pool: string;
  what: string;
  /** An X11 error the client got and stayed connected after (Refusal.xError). */
  xError?: string;
}

export interface FrameStats extends KernelFigures {
  frame: number;
  /** The frame clock's time for this frame (ms). */
  time: number;
  composeMs: number;
  buffersRead: number;
  /** Bytes the compositor read out of clients' pools into its own memory. */
  bytesCopied: number;
  errors: ProtocolErrorRecord[];
  notices: NoticeRecord[];
  alive: boolean;
  surfaces: SurfacePlacement[];
}

export interface RunStats extends KernelFigures {
  frames: number;
  composeMs: number;
  buffersRead: number;
  bytesCopied: number;
  errors: ProtocolErrorRecord[];
  notices: NoticeRecord[];
  alive: boolean;
  death: {
    signal: string;
    reason: string;
    addr: number;
    cause: string;
    /** Where the fatal fault's address lay (fault-place.ts); null: the death had none. */
    fault: FaultPlace | null;
  } | null;
  surfaces: SurfacePlacement[];
}

export function figures(p: Process): KernelFigures {
  const c = p.counters;
  let syscalls = 0;
  for (const n of Object.values(c.syscalls)) syscalls += n;
  return {
    faults: c.minorFaults + c.majorFaults,
    sigbus: c.sigbus,
    sigsegv: c.sigsegv,
    signals: c.sigbus + c.sigsegv,
    syscalls,
    bytesUserRead: c.bytesUserRead,
    bytesKernelCopied: c.bytesKernelCopied,
    anonPages: c.anonPages,
    zeroPages: c.zeroPageMaps,
    uffdFaults: c.uffdFaults,
  };
}

export function diff(a: KernelFigures, b: KernelFigures): KernelFigures {
  const out = {} as KernelFigures;
  for (const k of Object.keys(a) as (keyof KernelFigures)[]) out[k] = a[k] - b[k];
  return out;
}
