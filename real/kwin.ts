/**
 * kwin_wayland (KDE Plasma) on its virtual backend. Not installed on the machines this was
 * built on, so untested: where it is missing it is a one-line skip.
 */
import { cached, type RealCompositor, requireAvailable } from "./compositor.ts";
import { launch } from "./instance.ts";
import { findBinary, output } from "./versions.ts";

const SOCKET = "shmlab-kwin";

export const kwin: RealCompositor = {
  kind: "kwin",
  protocol: "wayland",
  how: `kwin_wayland --virtual --width 640 --height 480 --socket ${SOCKET} --no-lockscreen`,
  probe: cached(() => {
    const binary = findBinary("kwin_wayland");
    if (!binary) return { available: false, why: "kwin_wayland is not installed" };
    const m = /kwin(?:_wayland)? (\S+)/.exec(output(binary, ["--version"]));
    return { available: true, binary, version: `kwin_wayland ${m?.[1] ?? "(version unknown)"}` };
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
      env: { QT_QPA_PLATFORM: "offscreen" },
      runAs: { user: "nobody", group: "nogroup" },
      ready: { kind: "socket", name: new RegExp(`^${SOCKET}$`) },
      startTimeoutMs: opts.startTimeoutMs,
    });
  },
};
