/**
 * `render-thread-libwayland` and `render-thread-wlroots`: a compositor whose repaint runs
 * on a render thread of its process while the main thread dispatches clients and brackets
 * the access (begin_access when it hands the frame over, end_access when the render thread
 * is done). The synchronous SIGBUS goes to the thread that faulted, the render thread
 * (force_sig_fault → the current task), and runs whatever handler the process has; what
 * that handler finds depends on where its state lives:
 *
 * - libwayland keeps { current_pool, access_count } per thread (pthread_getspecific in
 *   sigbus_handler): the render thread's data has no current pool, so the handler
 *   re-raises and the compositor dies, though the main thread holds an access to exactly
 *   that pool. (wl_shm_buffer_begin_access's documentation allows access from several
 *   threads, each bracketing its own reads; this design does not.)
 * - wlroots >= 0.17 keeps its accesses in one process-wide list (types/wlr_shm.c
 *   handle_sigbus walks `accesses`): the fault is found and zeros mapped, whoever faulted.
 *
 * A construct that shows the per-thread versus process-wide difference; no compositor is
 * claimed to be built this way.
 */
import type { Policy } from "../policy.ts";
import { libwayland } from "./libwayland.ts";
import { wlroots } from "./wlroots.ts";

const reads = { at: "frame", damage: "full", thread: "render", bracket: "main" } as const;

export const renderThreadLibwayland: Policy = {
  ...libwayland,
  name: "render-thread-libwayland",
  source:
    "wayland src/wayland-shm.c (per-thread sigbus_data) with reads on a render thread, begin/end_access on the main thread",
  summary: "libwayland's per-thread state; the render thread faults, its data has no pool",
  clientReceives: "nothing: the compositor dies of SIGBUS (re-raised on the render thread)",
  variantOf: "libwayland",
  follows: [],
  reads,
};

export const renderThreadWlroots: Policy = {
  ...wlroots,
  name: "render-thread-wlroots",
  source:
    "wlroots types/wlr_shm.c (process-wide access list) with reads on a render thread, begin/end_access on the main thread",
  summary: "wlroots' process-wide access list; a render-thread fault is found and zeroed",
  clientReceives: "nothing: its buffer shows zeros",
  variantOf: "wlroots",
  follows: [],
  reads,
};
