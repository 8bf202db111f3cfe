/**
 * weston, headless: the pixman renderer of the headless backend, kiosk-shell (every
 * xdg_toplevel is mapped fullscreen, so it is actually composited and its buffer read), no
 * idle blanking, and --debug, which lets a client use weston_screenshooter (weston 10's
 * screenshooter is otherwise reserved to its own tool) so honest pixels can be checked.
 */
import { cached, type RealCompositor, requireAvailable } from "./compositor.ts";
import { launch } from "./instance.ts";
import { findBinary, libraryVersion, output } from "./versions.ts";

const SOCKET = "shmlab-weston";

export const weston: RealCompositor = {
  kind: "weston",
  protocol: "wayland",
  how: `weston --backend=headless-backend.so --socket=${SOCKET} --idle-time=0 --shell=kiosk-shell.so --debug`,
  probe: cached(() => {
    const binary = findBinary("weston");
    if (!binary)
      return { available: false, why: "weston is not installed (apt-get install weston)" };
    const m = /weston (\S+)/.exec(output(binary, ["--version"]));
    if (!m) return { available: false, why: `${binary} --version did not say its version` };
    const lib = libraryVersion(binary, "libwayland-server");
    return { available: true, binary, version: `weston ${m[1]}${lib ? ` / ${lib}` : ""}` };
  }),
  start(opts = {}) {
    const a = requireAvailable("weston", weston.probe());
    return launch({
      kind: "weston",
      version: a.version,
      binary: a.binary,
      args: () => [
        "--backend=headless-backend.so",
        `--socket=${SOCKET}`,
        "--idle-time=0",
        "--shell=kiosk-shell.so",
        "--width=640",
        "--height=480",
        "--debug",
      ],
      ready: { kind: "socket", name: new RegExp(`^${SOCKET}$`) },
      startTimeoutMs: opts.startTimeoutMs,
    });
  },
};
