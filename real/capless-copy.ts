/**
 * A copy of a binary without its file capabilities, for containers whose bounding set
 * lacks them. Debian installs /usr/bin/kwin_wayland with `cap_sys_resource=ep` (getcap);
 * with the effective bit set, execve() fails with EPERM when a file capability is not in
 * the caller's bounding set (security/commoncap.c: a "legacy" binary that would miss a
 * forced capability is refused, not started without it), which is the case in this
 * container, as root or not. A plain copy carries no security.capability xattr (cp and
 * copyFileSync do not keep it), so it runs; KWin wants CAP_SYS_RESOURCE only to raise its
 * RLIMIT_NOFILE and realtime limits, which a headless test run does not need.
 *
 * The copy keeps the file name: KWin's own QPA plugin refuses to load unless
 * QCoreApplication::applicationFilePath() ends in "kwin_wayland" (src/plugins/qpa/main.cpp,
 * KWIN_FORCE_OWN_QPA aside), so running it through the dynamic loader (whose path is
 * ld.so's) would need that override too; a copy named as the original needs nothing.
 */
import { copyFileSync, existsSync, mkdirSync, renameSync, statSync, utimesSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = dirname(dirname(fileURLToPath(import.meta.url)));
export const CAPLESS_BIN_DIR = join(REPO, ".cache", "real", "bin");

/**
 * The path of `binary`'s copy under .cache/real/bin/ (same file name), made on first use
 * and made again when the source changes (size or mtime differ: a package upgrade).
 */
export function caplessCopy(binary: string, dir = CAPLESS_BIN_DIR): string {
  const src = statSync(binary);
  const dst = join(dir, basename(binary));
  if (existsSync(dst)) {
    const d = statSync(dst);
    // The copy's mtime is set from the source's through seconds as a double, which keeps
    // it to about a microsecond, not to the nanosecond: equal within a millisecond.
    if (d.size === src.size && Math.abs(d.mtimeMs - src.mtimeMs) < 1) return dst;
  }
  mkdirSync(dir, { recursive: true });
  // Written under a private name and renamed: two processes (vitest workers) making the
  // copy at once each rename a whole file, never execute a half-written one.
  const tmp = `${dst}.${process.pid}.${Math.random().toString(36).slice(2, 8)}`;
  copyFileSync(binary, tmp);
  utimesSync(tmp, src.atimeMs / 1000, src.mtimeMs / 1000);
  renameSync(tmp, dst);
  return dst;
}
