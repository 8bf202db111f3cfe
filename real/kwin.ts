/**
 * kwin_wayland (KDE Plasma 5.27 here) on its virtual backend: one 640x480 output, llvmpipe
 * GL through Mesa's surfaceless EGL, no lock screen, no Xwayland (not asked for).
 *
 * It is started from a copy of its binary (real/capless-copy.ts): Debian's carries
 * cap_sys_resource=ep, and exec'ing that fails with EPERM in a container whose bounding
 * set lacks the capability. It runs as nobody:nogroup when we are root, as sway does: it
 * runs as root too, but nothing in a headless run needs root, and our clients (root)
 * still connect to its socket.
 *
 * No client of its own races ours: KWin starts no shell (plasmashell is Plasma's session,
 * not KWin's), and its own windows (OSDs, outlines) are internal clients in-process, none
 * shown at start. Its desktop is an empty output: nothing to wait for after the socket.
 */
import { caplessCopy } from "./capless-copy.ts";
import { cached, type RealCompositor, requireAvailable } from "./compositor.ts";
import { launch } from "./instance.ts";
import { findBinary, libraryVersion, output } from "./versions.ts";

const SOCKET = "shmlab-kwin";

export const kwin: RealCompositor = {
  kind: "kwin",
  protocol: "wayland",
  how: `kwin_wayland --virtual --width 640 --height 480 --socket ${SOCKET} --no-lockscreen (a copy without file capabilities; as nobody when root)`,
  probe: cached(() => {
    const installed = findBinary("kwin_wayland");
    if (!installed)
      return {
        available: false,
        why: "kwin_wayland is not installed (apt-get install --no-install-recommends kwin-wayland)",
      };
    const binary = caplessCopy(installed);
    const m = /kwin(?:_wayland)? (\d\S*)/.exec(output(binary, ["--version"]));
    if (!m) return { available: false, why: `${binary} --version did not say its version` };
    const lib = libraryVersion(installed, "libwayland-server");
    return { available: true, binary, version: `kwin_wayland ${m[1]}${lib ? ` / ${lib}` : ""}` };
  }),
  start(opts = {}) {
    const a = requireAvailable("kwin", kwin.probe());
    return launch({
      kind: "kwin",
      version: a.version,
      binary: a.binary,
      args: () => [
        "--virtual",
        "--width",
        "640",
        "--height",
        "480",
        "--socket",
        SOCKET,
        "--no-lockscreen",
      ],
      runAs: { user: "nobody", group: "nogroup" },
      ready: { kind: "socket", name: new RegExp(`^${SOCKET}$`) },
      startTimeoutMs: opts.startTimeoutMs,
    });
  },
};
