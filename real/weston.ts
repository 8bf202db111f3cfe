/**
 * weston, headless: the pixman renderer of the headless backend, desktop-shell (every
 * xdg_toplevel is mapped and repainted, so its buffer is actually read; see the args for
 * why not kiosk-shell), no idle blanking, and --debug, which lets a client use weston_screenshooter (weston 10's
 * screenshooter is otherwise reserved to its own tool) so honest pixels can be checked.
 */
import { cached, type RealCompositor, requireAvailable } from "./compositor.ts";
import { waitForBackground } from "./desktop-ready.ts";
import { DEFAULT_START_TIMEOUT_MS, launch } from "./instance.ts";
import { findBinary, libraryVersion, output } from "./versions.ts";

const SOCKET = "shmlab-weston";
/** The desktop's colour: clients are let in once it is on screen (real/desktop-ready.ts). */
const BACKGROUND = 0x202020;

/**
 * No animations: desktop-shell zooms a new window in and fades the whole screen in at
 * start, so a screenshot taken in the first few hundred ms shows blended pixels (measured:
 * an honest 48x48 window read "other" 2304/2304 right after mapping, "correct" once
 * settled). No panel, a plain background.
 */
const CONFIG = `[shell]
animation=none
close-animation=none
startup-animation=none
focus-animation=none
panel-position=none
background-color=0xff${BACKGROUND.toString(16).padStart(6, "0")}
`;

export const weston: RealCompositor = {
  kind: "weston",
  protocol: "wayland",
  how: `weston --backend=headless-backend.so --use-pixman --socket=${SOCKET} --idle-time=0 --shell=desktop-shell.so --debug`,
  probe: cached(() => {
    const binary = findBinary("weston");
    if (!binary)
      return { available: false, why: "weston is not installed (apt-get install weston)" };
    const m = /weston (\S+)/.exec(output(binary, ["--version"]));
    if (!m) return { available: false, why: `${binary} --version did not say its version` };
    const lib = libraryVersion(binary, "libwayland-server");
    return { available: true, binary, version: `weston ${m[1]}${lib ? ` / ${lib}` : ""}` };
  }),
  async start(opts = {}) {
    const a = requireAvailable("weston", weston.probe());
    const started = Date.now();
    const instance = await launch({
      kind: "weston",
      version: a.version,
      binary: a.binary,
      files: { "weston.ini": CONFIG },
      args: (dir) => [
        `--config=${dir}/weston.ini`,
        "--backend=headless-backend.so",
        // Without it the headless backend uses the noop renderer ("default: no rendering",
        // weston --help), which reads each shm buffer once at attach and never again.
        "--use-pixman",
        `--socket=${SOCKET}`,
        "--idle-time=0",
        // Measured with real/wayland-driver.ts on weston 10.0.1: under kiosk-shell a mapped
        // toplevel's frame callbacks never fire on the headless output (no seat to activate
        // it), so no honest client gets past its first frame; desktop-shell maps and
        // repaints it.
        "--shell=desktop-shell.so",
        "--width=640",
        "--height=480",
        "--debug",
      ],
      ready: { kind: "socket", name: new RegExp(`^${SOCKET}$`) },
      startTimeoutMs: opts.startTimeoutMs,
    });
    const left = (opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS) - (Date.now() - started);
    try {
      await waitForBackground(instance, BACKGROUND, Math.max(left, 1000));
    } catch (e) {
      await instance.stop();
      throw e;
    }
    return instance;
  },
};
