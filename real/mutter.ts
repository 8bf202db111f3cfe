/**
 * mutter (GNOME), headless Wayland only. Not installed on the machines this was built on, so
 * untested: where it is missing it is a one-line skip. mutter wants a D-Bus session bus; it
 * is started inside dbus-run-session where that exists.
 */
import { cached, type RealCompositor, requireAvailable } from "./compositor.ts";
import { launch } from "./instance.ts";
import { findBinary, output } from "./versions.ts";

const SOCKET = "shmlab-mutter";

export const mutter: RealCompositor = {
  kind: "mutter",
  protocol: "wayland",
  how: `dbus-run-session -- mutter --headless --wayland --no-x11 --virtual-monitor 640x480 --wayland-display ${SOCKET}`,
  probe: cached(() => {
    const binary = findBinary("mutter");
    if (!binary) return { available: false, why: "mutter is not installed" };
    if (!findBinary("dbus-run-session"))
      return { available: false, why: "mutter needs dbus-run-session (dbus)" };
    const m = /mutter (\S+)/.exec(output(binary, ["--version"]));
    return { available: true, binary, version: `mutter ${m?.[1] ?? "(version unknown)"}` };
  }),
  start(opts = {}) {
    const a = requireAvailable("mutter", mutter.probe());
    return launch({
      kind: "mutter",
      version: a.version,
      binary: findBinary("dbus-run-session")!,
      args: () => [
        "--",
        a.binary,
        "--headless",
        "--wayland",
        "--no-x11",
        "--virtual-monitor",
        "640x480",
        "--wayland-display",
        SOCKET,
      ],
      runAs: { user: "nobody", group: "nogroup" },
      ready: { kind: "socket", name: new RegExp(`^${SOCKET}$`) },
      startTimeoutMs: opts.startTimeoutMs,
    });
  },
};
