/**
 * `hyprland-0.45`: Hyprland's src/protocols/core/Shm.cpp before PR #8572 (a stored copy of
 * hyprwm/Hyprland's file without `shmIsSizeValid`; 0.45 is the last release the issue
 * places before the PR, not re-checked against its tag here). Everything as `hyprland`
 * (hyprland.ts) except that create_pool and resize trust the client's size: a pool larger
 * than its file, or a zero-length file, is mapped, and the texture CWLSHMBuffer's
 * constructor makes at create_buffer reads beyond EOF — the compositor dies of SIGBUS at
 * create_buffer (issue #8570).
 */
import type { Policy } from "../policy.ts";
import { hyprland, hyprlandShm } from "./hyprland.ts";

export const hyprland045: Policy = {
  ...hyprland,
  name: "hyprland-0.45",
  source:
    "Hyprland src/protocols/core/Shm.cpp before PR #8572 (CWLSHMPoolResource without shmIsSizeValid, CWLSHMBuffer::CWLSHMBuffer)",
  summary: "own wl_shm, no SIGBUS handler, no size check; texture read at create_buffer",
  clientReceives:
    "nothing: the compositor dies of SIGBUS at the first read beyond EOF, create_buffer included",
  versionOf: "hyprland",
  ...hyprlandShm(false),
};
