/**
 * Programs (lab/fuzz/actions.ts) that a model test and its real twin both run, so the model
 * is held to the very program the real compositor answered: the resize deferred while a
 * destroyed buffer is kept (test/real-deferred-resize, test/policy-kwin-5-27-rules), and a
 * stride lie followed by a cut buffer (test/real-kwin-stride-lie, the same rules suite).
 */
import type { Action } from "../lab/fuzz/actions.ts";

/**
 * A 48x48 buffer committed on surface 0 and (`destroy`) destroyed, its file and pool grown
 * to 1 MiB + 4 KiB, a round trip, then (`movedOn`) and a buffer placed in the grown part on
 * a second surface: invalid_stride while the resize is deferred.
 */
export const resizeWhileKept = (destroy: boolean, movedOn: Action[] = []): Action[] => [
  { k: "memfd", size: 12288, sealing: false },
  { k: "surface" },
  { k: "create-pool", f: 0, size: "file" },
  { k: "create-buffer", p: 0, offset: 0, width: 48, height: 48, stride: 192, format: 1 },
  { k: "attach", s: 0, b: 0, commit: true },
  ...(destroy ? [{ k: "destroy-buffer", b: 0 } as Action] : []),
  { k: "truncate", f: 0, size: 1052672 },
  { k: "resize", p: 0, size: 1052672 },
  { k: "roundtrip" },
  ...movedOn,
  { k: "surface" },
  // a buffer in the grown part: past the old 12288 bytes
  { k: "create-buffer", p: 0, offset: 12288, width: 48, height: 48, stride: 192, format: 1 },
  { k: "attach", s: 1, b: 1, commit: true },
  { k: "frame", s: 1 },
];

/**
 * Surface 0 shows a 64x32 buffer at `stride` (and, `destroyFirst`, destroys it); after two
 * of its frames surface 1 commits a 64x16 buffer whose file was cut to nothing: read, it is
 * libwayland's rescue and invalid_fd.
 */
export const strideThenCutBuffer = (stride: number, destroyFirst = false): Action[] => [
  { k: "memfd", size: 8192, sealing: false },
  { k: "surface" },
  { k: "create-pool", f: 0, size: "file" },
  { k: "create-buffer", p: 0, offset: 0, width: 64, height: 32, stride, format: 1 },
  { k: "attach", s: 0, b: 0, commit: true },
  ...(destroyFirst ? [{ k: "destroy-buffer", b: 0 } as Action] : []),
  { k: "frame", s: 0 },
  { k: "frame", s: 0 },
  { k: "memfd", size: 4096, sealing: false },
  { k: "surface" },
  { k: "create-pool", f: 1, size: "file" },
  { k: "create-buffer", p: 1, offset: 0, width: 64, height: 16, stride: 256, format: 1 },
  { k: "truncate", f: 1, size: 0 },
  { k: "attach", s: 1, b: 1, commit: true },
  { k: "frame", s: 1 },
];
