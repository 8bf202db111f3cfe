/**
 * The semantics of shrinkable-pools.xml: wl_shm_pool.resize may make a pool smaller. The
 * pool's size is kept in the variant state so the compositor can tell which buffers a
 * shrink invalidated; a negative size is still wl_shm.invalid_fd.
 */
import type { ProposalRules } from "../../protocol/proposal.ts";

export default {
  description:
    "wl_shm_pool.resize may make a pool smaller; buffers beyond the new size become invalid",
  rules: { poolsMayShrink: true },
  hooks: {
    "wl_shm.create_pool": (ctx) => {
      ctx.state(ctx.newIds[0]).size = ctx.args[2];
    },
    "wl_shm_pool.resize": (ctx) => {
      const size = ctx.args[0] as number;
      if (size < 0) throw ctx.refuse("wl_shm.invalid_fd", `negative pool size ${size}`);
      ctx.state(ctx.objectId).size = size;
    },
  },
} satisfies ProposalRules;
