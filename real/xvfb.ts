/**
 * Xvfb with MIT-SHM (on by default; ShmAttachFd since MIT-SHM 1.2), no TCP, the display
 * number it picked written on fd 3 once it accepts connections (-displayfd). Xvfb prints no
 * version of its own: the version is the Debian package's.
 */
import { cached, type RealCompositor, requireAvailable } from "./compositor.ts";
import { launch } from "./instance.ts";
import { findBinary, packageVersionOf } from "./versions.ts";

export const xvfb: RealCompositor = {
  kind: "xvfb",
  protocol: "x11",
  how: "Xvfb -displayfd 3 -nolisten tcp -noreset -screen 0 640x480x24 +extension MIT-SHM",
  probe: cached(() => {
    const binary = findBinary("Xvfb");
    if (!binary) return { available: false, why: "Xvfb is not installed (apt-get install xvfb)" };
    return {
      available: true,
      binary,
      version: `Xvfb ${packageVersionOf(binary) ?? "(version unknown)"}`,
    };
  }),
  start(opts = {}) {
    const a = requireAvailable("xvfb", xvfb.probe());
    return launch({
      kind: "xvfb",
      version: a.version,
      binary: a.binary,
      args: () => [
        "-displayfd",
        "3",
        "-nolisten",
        "tcp",
        // Without it the server resets when its last client leaves, and closes connections
        // that arrive during the reset: every driver run ends with all its clients gone.
        "-noreset",
        "-screen",
        "0",
        "640x480x24",
        "+extension",
        "MIT-SHM",
      ],
      ready: { kind: "displayfd" },
      faultLine: /Caught signal \d+ \([^)]*\)/,
      startTimeoutMs: opts.startTimeoutMs,
    });
  },
};
