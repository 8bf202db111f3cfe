/**
 * `libwayland-kept-buffer`: libwayland's wl_shm (`libwayland`, >= 1.24) in a compositor that
 * keeps a committed wl_shm_buffer past its wl_buffer: it takes wl_shm_buffer_ref when the
 * commit references the buffer and wl_shm_buffer_unref once it has read it (the use commit
 * 9367c4d's message gives: "the client destroys the resource after committing new state
 * which references the wl_buffer because a compositor might have to defer applying the
 * commit"), and reads at the next repaint inside begin/end_access. A construct: no modelled
 * compositor is known to do this yet; it isolates the one place 1.24 differs from 1.21.
 *
 * destroy-buffer-then-shrink: the buffer is destroyed after its commit, the file shrinks,
 * the repaint reads it; the handler maps zeros (fallback_mapping_used) and the outermost
 * wl_shm_buffer_end_access finds no resource: `wl_client_post_implementation_error(
 * buffer->client, "Error accessing SHM buffer of a wl_buffer resource which has already
 * been destroyed")` (d2a3d33), i.e. wl_display.error `implementation` and the client is
 * gone. Under 1.21 there is no wl_shm_buffer_ref: the same compositor keeps the pool
 * instead (wl_shm_buffer_ref_pool) and has no live wl_shm_buffer to bracket with (Mir PR
 * #2645: begin/end_access "crash in the same circumstance"); so no 1.21 twin is modelled.
 */
import type { Policy } from "../policy.ts";
import { libwayland } from "./libwayland.ts";

export const libwaylandKeptBuffer: Policy = {
  ...libwayland,
  name: "libwayland-kept-buffer",
  source:
    "wayland src/wayland-shm.c 1.23.92 (wl_shm_buffer_ref 9367c4d; wl_shm_buffer_end_access d2a3d33)",
  summary: "libwayland >= 1.24 with the wl_shm_buffer kept past its wl_buffer (wl_shm_buffer_ref)",
  clientReceives:
    "wl_shm.invalid_fd on the wl_buffer; once it is destroyed, wl_display.error implementation",
  variantOf: "libwayland",
  follows: [],
  reads: { at: "frame", destroyed: "read" },
};
