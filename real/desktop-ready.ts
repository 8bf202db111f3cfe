/**
 * "Ready" for a compositor that starts its own shell client: the socket answering is not
 * enough. weston launches weston-desktop-shell as a separate process, and when our clients
 * connect first, that shell's background surface (set_background, configured to the whole
 * output) can be committed between a behaviour's commits. Its first commit damages the
 * whole output, so the next repaint composites every window whole, and a buffer the
 * behaviour truncated outside its damage is read after all: measured on weston 10.0.1 with
 * `-l proto`, truncate-outside-damage gave invalid_fd in the runs where set_background came
 * after the second commit and "no effect seen" where it came before (about half of the
 * runs; 6 of 6 "no effect" when clients waited 1.5 s). The model has no shell client, so a
 * run that lets one repaint in the middle compares different compositors.
 *
 * The wait ends when a screenshot shows the background colour: weston's screenshooter
 * reads the output after a repaint, so the background's commit has been composited.
 */
import { wlClientAvailability } from "../native/wl-client.ts";
import { screenshotOnce } from "./capture.ts";
import { type LaunchedInstance, RealStartError } from "./instance.ts";

const POLL_MS = 20;

/** The XRGB value of the screenshot's top-left pixel, or why there is none. */
async function cornerPixel(
  binary: string,
  socket: string,
  timeoutMs: number,
): Promise<{ rgb: number } | { why: string }> {
  const r = await screenshotOnce(binary, socket, timeoutMs);
  if (!r.ok) return { why: r.why };
  const p = r.shot.pixels;
  return { rgb: (p[0] | (p[1] << 8) | (p[2] << 16)) >>> 0 };
}

/**
 * Resolves once `instance`'s output shows `rgb` (0xRRGGBB) at its top-left pixel; throws
 * RealStartError after `timeoutMs`. Without the native client helper nothing real runs at
 * all, so its absence is the helper's own error, not a wait.
 */
export async function waitForBackground(
  instance: LaunchedInstance,
  rgb: number,
  timeoutMs: number,
): Promise<void> {
  const avail = await wlClientAvailability();
  if (!avail.available || instance.endpoint.kind !== "wayland") return;
  const deadline = Date.now() + timeoutMs;
  // The last screenshot is the one the deadline cuts short, so what the error reports is the
  // last pixel seen, and a capture's own failure only when no screenshot ever arrived.
  let seen: number | undefined;
  let why = "no screenshot yet";
  while (Date.now() < deadline) {
    if (instance.exited() !== null) break;
    const got = await cornerPixel(avail.binary, instance.endpoint.socket, deadline - Date.now());
    if ("rgb" in got) {
      if (got.rgb === (rgb & 0xffffff)) return;
      seen = got.rgb;
    } else why = got.why;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  const saw = seen === undefined ? why : `top-left pixel 0x${seen.toString(16).padStart(6, "0")}`;
  throw new RealStartError(
    `${instance.kind} never showed its background 0x${rgb.toString(16)} (${saw})`,
    instance.logPath,
  );
}
