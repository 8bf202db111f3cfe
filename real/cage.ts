/**
 * cage (a wlroots kiosk; 0.1.4 on wlroots 0.15 here) on the headless backend with the
 * pixman renderer, kept alive by an idle child (`sleep infinity`: cage exits when its
 * application does). That child is no Wayland client, so nothing of cage's own is drawn
 * beside our clients (no background client, no bar): ready once the socket answers.
 *
 * cage refuses root ("Unable to drop root (we shouldn't be able to restore it after
 * setuid), refusing to start": cage.c drop_permissions tries setuid(0) after dropping and
 * fails when it works), so as root it runs as nobody:nogroup, as sway does.
 *
 * It is stopped by ending its application, not by SIGTERM: cage 0.1.4 registers
 * `wl_event_loop_add_signal(event_loop, SIGTERM, handle_signal, &server.wl_display)` — the
 * address of the pointer — and handle_signal takes `data` as the wl_display, so
 * wl_display_terminate writes to a garbage terminate_efd and libwayland 1.21 asserts
 * (`wl_display_terminate: Assertion 'ret >= 0 || errno == EAGAIN' failed`): SIGABRT at
 * every SIGTERM, measured. When `sleep` ends, cage's child watch terminates the display
 * properly and cage exits 0 (measured).
 */
import { cached, type RealCompositor, requireAvailable } from "./compositor.ts";
import { launch } from "./instance.ts";
import { findBinary, libraryVersion, output, packageVersionOf } from "./versions.ts";

export const cage: RealCompositor = {
  kind: "cage",
  protocol: "wayland",
  how: "WLR_BACKENDS=headless WLR_LIBINPUT_NO_DEVICES=1 WLR_RENDERER=pixman cage -- sleep infinity (as nobody when root)",
  probe: cached(() => {
    const binary = findBinary("cage");
    if (!binary) return { available: false, why: "cage is not installed (apt-get install cage)" };
    // `cage -v` says "Cage version 0.1.4"; the wlroots it runs on is the library's package.
    const m = /version (\S+)/.exec(output(binary, ["-v"]));
    const libs = [libraryVersion(binary, "libwlroots"), libraryVersion(binary, "libwayland-server")]
      .filter(Boolean)
      .map((s) => s!.replace(/^libwlroots/, "wlroots"));
    const own = m?.[1] ?? packageVersionOf(binary) ?? "(version unknown)";
    return { available: true, binary, version: [`cage ${own}`, ...libs].join(" / ") };
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
      stopVia: "children",
      startTimeoutMs: opts.startTimeoutMs,
    });
  },
};
