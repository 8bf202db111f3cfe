/**
 * The semantics of sealed-pools.xml that XML cannot state: wl_shm.create_pool accepts only
 * an fd whose file is sealed against shrinking, and refuses the rest with wl_shm.invalid_fd
 * (the error wayland.xml gives for an fd the compositor cannot use).
 */
import type { ProposalRules } from "../../protocol/proposal.ts";
import { SEAL } from "../../shm/uapi.ts";

export default {
  description: "wl_shm.create_pool refuses an fd not sealed with F_SEAL_SHRINK (wl_shm.invalid_fd)",
  // Policies read this to know that every pool they map is sealed.
  rules: { createPoolRequiredSeals: SEAL.F_SEAL_SHRINK },
  hooks: {
    "wl_shm.create_pool": (ctx) => {
      const fd = ctx.args[1] as number;
      const info = ctx.files.inspect(fd);
      if (!info) throw ctx.refuse("invalid_fd", `fd ${fd} is not open`);
      if ((info.seals & SEAL.F_SEAL_SHRINK) === 0)
        throw ctx.refuse("invalid_fd", "pool fd is not sealed against shrinking (F_SEAL_SHRINK)");
    },
  },
} satisfies ProposalRules;
