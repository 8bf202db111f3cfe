// Stryker ignorer plugins (stryker.config.mjs `ignorers`): mutants of code that has no
// observable effect are reported "Ignored", with the reason, rather than counted as rules
// nothing pins. Each ignorer is narrow; docs/testing.md says how many mutants each hides.
import { declareValuePlugin, PluginKind } from "@stryker-mutator/api/plugin";

const DETAIL_ARG = 2;
/** VmaFlags that are equal on every two VMAs sameFlags compares (see memory-equivalent). */
const SAME_ON_ANON = new Set(["shared", "anonymous", "nofault", "mayWrite", "pfnmap"]); // errno(code, syscall, detail) and new ErrnoError(code, syscall, detail)

function calleeName(call) {
  const c = call.node.callee;
  return c.type === "Identifier" ? c.name : undefined;
}

/** `file.counters.x++` / `v.file.counters.x++`: the shmem inode's statistics. */
function isFileCounterUpdate(node) {
  if (node.type !== "UpdateExpression" || node.argument.type !== "MemberExpression") return false;
  const counters = node.argument.object;
  if (counters.type !== "MemberExpression" || counters.property.name !== "counters") return false;
  const owner = counters.object;
  const isFile =
    (owner.type === "Identifier" && owner.name === "file") ||
    (owner.type === "MemberExpression" && owner.property.name === "file");
  // pagesEvicted is read: the evict-inode event reports it.
  return isFile && node.argument.property.name !== "pagesEvicted";
}

export const strykerPlugins = [
  // Linux returns an errno and nothing else; the text the model adds beside it,
  // `errno("EINVAL", "memfd_create", "name too long")`'s third argument, is an annotation
  // for the person reading a failure. The errno and the syscall name are still mutated.
  declareValuePlugin(PluginKind.Ignore, "errno-text", {
    shouldIgnore(path) {
      const parent = path.parentPath;
      if (!parent || path.listKey !== "arguments" || path.key !== DETAIL_ARG) return undefined;
      if (!(parent.isCallExpression() || parent.isNewExpression())) return undefined;
      const name = calleeName(parent);
      if (name === "errno" || name === "ErrnoError") {
        return "errno detail text: Linux returns only the errno; the text is for humans";
      }
      return undefined;
    },
  }),
  // new InvariantViolation(invariant, place, detail, frame)'s detail: the sentence a finding
  // prints. The invariant and the place (the finding's dedup key) are mutated and pinned.
  declareValuePlugin(PluginKind.Ignore, "invariant-detail", {
    shouldIgnore(path) {
      const parent = path.parentPath;
      if (!parent || path.listKey !== "arguments" || path.key !== 2) return undefined;
      if (!parent.isNewExpression() || calleeName(parent) !== "InvariantViolation")
        return undefined;
      return "InvariantViolation detail: the finding's sentence for humans, not its key";
    },
  }),
  // ShmemFile.counters (shm/counters.ts FileCounters) is written by the syscalls and read by
  // nothing but the evict-inode event's pagesEvicted: no output, no decision depends on it.
  declareValuePlugin(PluginKind.Ignore, "file-counters", {
    shouldIgnore(path) {
      if (path.isExpressionStatement() && isFileCounterUpdate(path.node.expression)) {
        return "ShmemFile.counters is written, never read (dead state: issue 13 item 5)";
      }
      return undefined;
    },
  }),
  // shm/syscalls/memory.ts: code whose mutants no program can tell apart (docs/testing.md).
  declareValuePlugin(PluginKind.Ignore, "memory-equivalent", {
    shouldIgnore(path) {
      const fn = path.getFunctionParent()?.node.id?.name;
      const n = path.node;
      // sameFlags is only reached for two private anonymous VMAs with no file, no pfns
      // (mergeable/joins refuse the rest first): shared, nofault and pfnmap are false on both,
      // anonymous and mayWrite true on both. The other flags can differ and stay mutated.
      if (
        fn === "sameFlags" &&
        n.type === "BinaryExpression" &&
        n.left.type === "MemberExpression" &&
        SAME_ON_ANON.has(n.left.property.name)
      ) {
        return "sameFlags: this flag is the same on every pair of VMAs that reaches it";
      }
      // populate_vma_page_range ignores every failure; the early break at EOF only skips
      // pages that would fail the same way (a page beyond i_size: so is every later one).
      if (
        fn === "populate" &&
        n.type === "IfStatement" &&
        path.parentPath?.parentPath?.isForStatement()
      ) {
        return "MAP_POPULATE ignores failures: stopping at the first page beyond EOF is a shortcut";
      }
      return undefined;
    },
  }),
];
