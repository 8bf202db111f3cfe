// A Stryker ignorer plugin (stryker.config.mjs `ignorers`). Linux returns an errno and nothing
// else; the text the model adds beside it, `errno("EINVAL", "memfd_create", "name too long")`'s
// third argument, is an annotation for the person reading a failure, not a rule. Mutating it
// to "" changes only ErrnoError.message. Those mutants are reported as "Ignored" (with this
// reason) rather than counted as rules nothing pins; the errno code and the syscall name
// beside it are still mutated, and tests pin them (err.code, err.syscall).
import { declareValuePlugin, PluginKind } from "@stryker-mutator/api/plugin";

const DETAIL_ARG = 2; // errno(code, syscall, detail) and new ErrnoError(code, syscall, detail)

function calleeName(call) {
  const c = call.node.callee;
  return c.type === "Identifier" ? c.name : undefined;
}

export const strykerPlugins = [
  declareValuePlugin(PluginKind.Ignore, "errno-text", {
    shouldIgnore(path) {
      const parent = path.parentPath;
      if (!parent || path.listKey !== "arguments" || path.key !== DETAIL_ARG) return undefined;
      if (!(parent.isCallExpression() || parent.isNewExpression())) return undefined;
      const name = calleeName(parent);
      if (name !== "errno" && name !== "ErrnoError") return undefined;
      return "errno detail text: Linux returns only the errno; the text is for humans (docs/testing.md)";
    },
  }),
];
