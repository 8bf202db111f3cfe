/**
 * The semantics of checked-pool-size.xml: for a wl_shm bound at version 3 or later,
 * create_pool fstat()s the fd and refuses a pool larger than the file with the new
 * wl_shm.size_beyond_file error (Hyprland's shmIsSizeValid check, PR #8572, as a rule).
 */
import type { ProposalRules } from "../../protocol/proposal.ts";

export default {
  description: "wl_shm v3: create_pool refuses a pool larger than its file (size_beyond_file)",
  hooks: {
    "wl_shm.create_pool": (ctx) => {
      if (ctx.version < 3) return;
      const [, fd, size] = ctx.args as [number, number, number];
      const info = ctx.files.inspect(fd);
      if (info && size > info.size)
        throw ctx.refuse(
          "size_beyond_file",
          `pool of ${size} bytes is larger than its file (${info.size} bytes)`,
        );
    },
  },
} satisfies ProposalRules;
