/**
 * sway on wlroots' headless backend with the pixman renderer. sway refuses to run as root
 * ("Running sway as root is not supported"), and CI runs as root: it is then started as
 * nobody:nogroup with a runtime dir nobody owns; our clients, as root, still connect to its
 * socket. The socket is whichever wayland-N wl_display_add_socket_auto picked.
 */
import { cached, type RealCompositor, requireAvailable } from "./compositor.ts";
import { launch } from "./instance.ts";
import { findBinary, libraryVersion, output } from "./versions.ts";

/** No Xwayland, one output of a known size; no bar (swaybar would be one more client). */
const CONFIG = `xwayland disable
output HEADLESS-1 resolution 640x480
`;

export const sway: RealCompositor = {
  kind: "sway",
  protocol: "wayland",
  how: "WLR_BACKENDS=headless WLR_LIBINPUT_NO_DEVICES=1 WLR_RENDERER=pixman sway -c CONFIG (as nobody when root)",
  probe: cached(() => {
    const binary = findBinary("sway");
    if (!binary) return { available: false, why: "sway is not installed (apt-get install sway)" };
    const m = /sway version (\S+)/.exec(output(binary, ["--version"]));
    if (!m) return { available: false, why: `${binary} --version did not say its version` };
    const libs = [libraryVersion(binary, "libwlroots"), libraryVersion(binary, "libwayland-server")]
      .filter(Boolean)
      .map((s) => s!.replace(/^libwlroots/, "wlroots"));
    return { available: true, binary, version: [`sway ${m[1]}`, ...libs].join(" / ") };
  }),
  start(opts = {}) {
    const a = requireAvailable("sway", sway.probe());
    return launch({
      kind: "sway",
      version: a.version,
      binary: a.binary,
      files: { config: CONFIG },
      args: (dir) => ["-c", `${dir}/config`],
      env: { WLR_BACKENDS: "headless", WLR_LIBINPUT_NO_DEVICES: "1", WLR_RENDERER: "pixman" },
      runAs: { user: "nobody", group: "nogroup" },
      ready: { kind: "socket", name: /^wayland-\d+$/ },
      startTimeoutMs: opts.startTimeoutMs,
    });
  },
};
