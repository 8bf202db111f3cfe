/**
 * Shows one buffer whole, then truncates the pool file so that most of a second buffer
 * lies beyond EOF, and commits that second buffer damaging only its first rows, which
 * still lie inside the file. A compositor that uploads only damage
 * (wlroots wlr_client_buffer_apply_damage → gles2_texture_update_from_buffer, one upload
 * per damaged rectangle; KWin's updateShmTexture per rect of the region) never reads the
 * truncated rows; one that reads whole buffers faults on them. Derived from those sources
 * (issue 14), not seen in the wild: the point is that a fault-free damage-only upload hides
 * a pool the next full upload (another buffer size, a texture lost) will fault on.
 *
 * Params: width, height (64), rows (4: the damaged rows, inside the file's first page).
 */
import type { Behaviour } from "../behaviour.ts";
import { num, scene, settle, show } from "./common.ts";

const PAGE = 4096;

const behaviour: Behaviour = {
  name: "truncate-outside-damage",
  description:
    "show buffer A whole, truncate the file inside buffer B, commit B damaging only rows still in the file",
  honest: false,
  source:
    "wlroots types/buffer/client.c wlr_client_buffer_apply_damage and render/gles2/texture.c (damage-only upload); KWin OpenGLSurfaceTexture::updateShmTexture; derived for issue 14, not seen in the wild",
  *run(c, ctx) {
    const s = yield* scene(c, ctx, { buffers: 2, keepFd: true });
    const first = show(c, ctx, s, s.buffers[0], 0);
    yield { what: "frame done or disconnect", ready: () => first.done || c.closed };
    const b = s.buffers[1];
    c.drawPattern(s.base, b, ctx.seed, ctx.index, 1);
    // Keep buffer B's first page (rows that fit in it); the rest of the file goes.
    const keep = s.bufferSize + PAGE;
    const rows = Math.min(num(ctx, "rows", 4), Math.floor(PAGE / s.stride));
    c.process.ftruncate(s.memfd.fd, keep);
    c.attach(s.surface, b);
    c.damageBuffer(s.surface, 0, 0, s.width, Math.max(1, rows));
    const cb = c.frame(s.surface);
    c.commit(s.surface, b);
    yield { what: "frame done or disconnect", ready: () => cb.done || c.closed };
    yield* settle(c);
  },
};
export default behaviour;
