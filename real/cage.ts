/**
 * cage (a wlroots kiosk) on the headless backend, kept alive by an idle child (`sleep
 * infinity`: cage exits when its application does). Not installed on the machines this was
 * built on, so untested: where it is missing it is a one-line skip.
 */
import { cached, type RealCompositor, requireAvailable } from "./compositor.ts";
import { launch } from "./instance.ts";
import { findBinary, packageVersionOf } from "./versions.ts";

export const cage: RealCompositor = {
  kind: "cage",
  protocol: "wayland",
  how: "WLR_BACKENDS=headless WLR_LIBINPUT_NO_DEVICES=1 WLR_RENDERER=pixman cage -- sleep infinity",
  probe: cached(() => {
    const binary = findBinary("cage");
    if (!binary) return { available: false, why: "cage is not installed" };
    return {
      available: true,
      binary,
      version: `cage ${packageVersionOf(binary) ?? "(version unknown)"}`,
    };
  }),
  start(opts = {}) {
    const a = requireAvailable("cage", cage.probe());
    return launch({
      kind: "cage",
      version: a.version,
      binary: a.binary,
      args: () => ["--", "sleep", "infinity"],
      env: { WLR_BACKENDS: "headless", WLR_LIBINPUT_NO_DEVICES: "1", WLR_RENDERER: "pixman" },
      runAs: { user: "nobody", group: "nogroup" },
      ready: { kind: "socket", name: /^wayland-\d+$/ },
      startTimeoutMs: opts.startTimeoutMs,
    });
  },
};
