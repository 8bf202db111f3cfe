/**
 * A stride lie on the real KWin 5.27: it never reads such a buffer, and afterwards reads no
 * other shm buffer either.
 *
 * KWin 5.27's ShmClientBuffer::data() (KWaylandServer shmclientbuffer.cpp) sets
 * `s_accessedBuffer = this; s_accessCounter++; wl_shm_buffer_begin_access(buffer);` and
 * returns `QImage(data, width, height, stride, format, cleanupShmData, buffer)`. Qt refuses a
 * bytesPerLine below width × 4 (qimage.cpp QImageData::create: `bpl < min_bytes_per_line` →
 * a null image), so the buffer is never read — and `cleanupShmData`, which decrements the
 * counter, clears `s_accessedBuffer` and calls `wl_shm_buffer_end_access`, never runs. From
 * then on `data()` of every other buffer returns `QImage()` ("if (s_accessedBuffer &&
 * s_accessedBuffer != this)"): no shm texture is updated again.
 *
 * Seen through the protocol, no pixel needed: a second buffer, cut to nothing before its
 * commit, is libwayland's SIGBUS rescue and `wl_shm.invalid_fd` when KWin reads it (the
 * control, first surface honest), and nothing at all after a stride liar was shown. The
 * model's `kwin-5.27` has both rules since this test found them missing
 * (compositor/policies/kwin-5-27.ts), and is held to the same answers. Frame callbacks order the reads: the
 * second buffer is committed after two of the first surface's frames, so its upload came.
 */
import { describe, expect, it } from "vitest";
import { runRealCase } from "../lab/fuzz/real.ts";
import { kwin } from "../real/kwin.ts";
import { waylandDriver } from "../real/wayland-driver.ts";
import { strideThenCutBuffer } from "./claim-programs.ts";
import { waylandSkipReason } from "./real-helpers.ts";

const why = await waylandSkipReason(kwin, "kwin stride lie");

const run = (stride: number) =>
  runRealCase(kwin, waylandDriver, "kwin-5.27", {
    seed: 6,
    frames: 8,
    honest: 0,
    timeoutMs: 8000,
    actions: strideThenCutBuffer(stride),
  });

describe.skipIf(why !== "")("a stride lie on kwin_wayland 5.27", () => {
  it("control: after an honest buffer, the cut buffer is read (invalid_fd)", async () => {
    const r = await run(256);
    expect(r.observation.compositor.alive).toBe(true);
    expect(r.real.cell).toBe("invalid_fd");
    expect(r.model.cell).toBe("invalid_fd");
  });

  it("after a stride liar was shown, the cut buffer is never read", async () => {
    const r = await run(128);
    expect(r.observation.compositor.alive).toBe(true);
    const c = r.observation.clients[0];
    // the program ran to its end (a fuzz client then waits for the connection's end): both
    // buffers committed, the last frame answered
    expect(c.commits).toBe(2);
    expect(c.waitingFor, c.notes.join("\n")).toBe("connection end");
    expect(c.protocolError).toBeNull();
    expect(r.real.cell).toBe("no effect seen");
    expect(r.model.cell).toBe("no effect seen");
  });
});
