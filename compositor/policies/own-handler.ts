/**
 * `libwayland-own-handler` and `libwayland-chained-handler`: libwayland's wl_shm (the
 * `libwayland` policy) in a compositor that installs a SIGBUS handler of its own *after*
 * libwayland's (WLCS issue #30; wl_shm_buffer_begin_access's documentation: "this function
 * will not work properly if the compositor is also installing its own handler for
 * SIGBUS"). Signal dispositions stack as sigaction(2) makes them: the later sigaction
 * returns libwayland's action as the old one, and only the handler on top runs.
 *
 * - own-handler: a crash reporter's handler that does not chain: it restores SIG_DFL and
 *   re-raises (the usual `signal(sig, SIG_DFL); raise(sig)` ending), so a truncated pool
 *   kills the compositor although libwayland would have rescued it.
 * - chained-handler: the same handler chaining to the action sigaction returned (calls
 *   libwayland's sigbus_handler through the saved sa_sigaction): libwayland's rescue works
 *   again.
 * The compositor's handler is installed once libwayland's exists (after the first access
 * to a pool that needed it ends): the order WLCS #30 describes. Installed before, libwayland's would sit on top
 * and save the compositor's as its old action.
 */
import type { SigInfo } from "../../shm/errors.ts";
import type { SigAction } from "../../shm/signal.ts";
import type { Policy } from "../policy.ts";
import { reraiseSigbus } from "./common.ts";
import { libwayland } from "./libwayland.ts";

function withOwnHandler(chain: boolean): Policy {
  return {
    ...libwayland,
    name: chain ? "libwayland-chained-handler" : "libwayland-own-handler",
    source: `wayland src/wayland-shm.c + a compositor SIGBUS handler installed after libwayland's, ${chain ? "chaining to the old action" : "not chaining"} (WLCS issue #30)`,
    summary: chain
      ? "libwayland under a later compositor handler that chains to it: the rescue still works"
      : "libwayland under a later compositor handler that does not chain: the rescue never runs",
    clientReceives: chain
      ? "wl_shm.invalid_fd on the wl_buffer, at the outermost end_access"
      : "wl_shm.invalid_fd on the wl_buffer while libwayland's handler is on top (the first faulting access); after that the compositor dies of SIGBUS (its own handler re-raises with SIG_DFL)",
    variantOf: "libwayland",
    follows: [],
    create(proc, env) {
      const inner = libwayland.create(proc, env);
      let old: SigAction | null = null;
      function ownHandler(info: SigInfo): void {
        const prev = old!;
        // `old` is libwayland's sigbus_handler, a function: this handler is installed only
        // once libwayland's exists (endAccess below).
        // Stryker disable next-line ConditionalExpression: equivalent (above)
        if (chain && typeof prev.handler === "function") {
          prev.handler(info, proc);
          return;
        }
        // signal(SIGBUS, SIG_DFL); raise(SIGBUS): the retried access dies.
        // A synchronous SIGBUS under any action but a handler kills (force_sig_fault).
        // Stryker disable next-line ObjectLiteral,StringLiteral: equivalent (above)
        reraiseSigbus(proc, { handler: "default" });
      }
      return {
        ...inner,
        endAccess(a) {
          const end = inner.endAccess(a);
          // libwayland's handler exists once an access to a pool that needs it has run
          // (sealed pools skip it): the compositor's goes on top of it then.
          if (old === null && proc.alive && a.buffer.pool.state.sigbusIsImpossible !== true)
            old = proc.sigaction("SIGBUS", { handler: ownHandler, nodefer: true });
          return end;
        },
      };
    },
  };
}

export const libwaylandOwnHandler = withOwnHandler(false);
export const libwaylandChainedHandler = withOwnHandler(true);
