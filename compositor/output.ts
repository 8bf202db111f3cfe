/**
 * Framing and compositing: wl_surface's double-buffered state (attach, frame callbacks,
 * commit), the compositor's copy of each surface's last buffer read (its "texture"), the
 * layout of surfaces on the output, the framebuffer, and what a frame sends back (release,
 * frame done). Reading a buffer is the pools' business (pools.ts): a frame hands each newly
 * committed buffer to `read`.
 */
import { interfaceError } from "../protocol/errors.ts";
import { DISPLAY_ERROR, DISPLAY_ID } from "../protocol/schema.ts";
import type { Resource, ServerClient } from "../protocol/server.ts";
import type { Buffer } from "./pools.ts";

/** Where one surface is on the output, and what it shows. */
export interface SurfacePlacement {
  client: string;
  clientId: number;
  surface: number;
  /** The region of the output the surface occupies (clipped to its tile). */
  x: number;
  y: number;
  width: number;
  height: number;
  /** The buffer whose contents are shown (the last one read), or null. */
  buffer: { width: number; height: number; stride: number; format: number } | null;
}

/** A rectangle of a surface, in buffer pixels (scale 1, no transform: both coordinate spaces). */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

interface Surface {
  readonly id: number;
  readonly client: ServerClient;
  readonly seq: number;
  pending: { attached: boolean; buffer: Buffer | null; frames: number[]; damage: Rect[] };
  /**
   * `damage`: what the client damaged since the surface's texture was last read ("full"
   * once a read is due that must cover everything).
   */
  current: { buffer: Buffer | null; dirty: boolean; frames: number[]; damage: Rect[] | "full" };
  /**
   * The compositor's copy of the last buffer read (its "texture"). Its bytes may be kept in
   * a framebuffer instead (Output.homes), where the next composite draws them.
   */
  texture: Uint8Array | null;
  texGeom: { width: number; height: number; stride: number; bpp: number; format: number } | null;
}

/** What reading the newly committed buffers of a frame did. */
export interface FrameReads {
  buffersRead: number;
  bytesCopied: number;
  released: Buffer[];
}

/**
 * Reads `b` into `into`: the whole span, or only `ranges` ([offset, length] pairs of the
 * span: the rows of damaged rectangles), inside one bracketed access.
 */
export type ReadFn = (
  b: Buffer,
  into: Uint8Array,
  ranges?: readonly (readonly [number, number])[],
) => void;

/** Where the policy changes how surfaces hold buffers (weston 10, wlroots 0.15). */
export interface OutputRules {
  /** wl_buffer.release only when another buffer replaces it (reads at every repaint). */
  releaseOnReplace: boolean;
  /** When a committed buffer is read (policy.ts ReadMoment); default "frame". */
  at?: "commit" | "frame" | "repaint";
  /** "damage": later uploads of a same-geometry buffer read only the damaged rectangles. */
  damage?: "full" | "damage";
  /**
   * "read" / "saved": a destroyed wl_buffer a surface shows is kept and still read when due
   * (KWin; "saved": the policy reads it without an access, KWin 5.27).
   */
  destroyed?: "drop" | "read" | "saved";
  /** "buffer": each buffer keeps its own texture, damage updates it (Hyprland). */
  texture?: "surface" | "buffer";
  /** "all": every surface's frame callbacks are answered, shown or not (policy.ts). */
  frameDone?: "shown" | "all";
  /** wl_surface.commit attached this live buffer (weston's pixman_renderer_attach). */
  attach?(b: Buffer): void;
  /** Keep a destroyed buffer on screen and read it at every repaint, unbracketed. */
  readDestroyed?(b: Buffer, into: Uint8Array): void;
  /** A kept destroyed buffer left the screen: release its pool. */
  releaseDetached(b: Buffer): void;
}

/** Most rectangles a damage list keeps before it becomes their bounding box. */
export const MAX_DAMAGE_RECTS = 64;

/**
 * A client may send damage without end: past MAX_DAMAGE_RECTS the list becomes its bounding
 * box (as wlroots and weston reduce a region to its extents when it gets complex), so the
 * compositor's memory stays bounded and a read covers at least what was damaged.
 */
function boundDamage(list: Rect[]): void {
  if (list.length <= MAX_DAMAGE_RECTS) return;
  let x0 = Number.POSITIVE_INFINITY;
  let y0 = Number.POSITIVE_INFINITY;
  let x1 = Number.NEGATIVE_INFINITY;
  let y1 = Number.NEGATIVE_INFINITY;
  for (const r of list) {
    x0 = Math.min(x0, r.x);
    y0 = Math.min(y0, r.y);
    x1 = Math.max(x1, r.x + r.width);
    y1 = Math.max(y1, r.y + r.height);
  }
  list.length = 0;
  list.push({ x: x0, y: y0, width: x1 - x0, height: y1 - y0 });
}

/** Where a texture's bytes are kept instead of its own array: a range of a framebuffer. */
interface Home {
  /** Index of the framebuffer (Output.fbs). */
  fb: number;
  /** Byte offset of the texture's first byte. */
  off: number;
}

export class Output {
  /**
   * Two framebuffers: the front one holds the last composited frame (`framebuffer`); a frame
   * is composed in the back one, and they swap when it is complete. Reads of buffers go to
   * the back one at most, so the front one never shows half a frame, even when a read ends
   * the compositor (the lab's last-frame image of a run that died).
   */
  private readonly fbs: [Uint32Array, Uint32Array];
  private readonly fb8s: [Uint8Array, Uint8Array];
  private front = 0;
  /**
   * Textures whose bytes are not in their own array but in a framebuffer, exactly where the
   * next composite draws them: a surface's read went straight there (one copy where a read
   * into the texture and a draw of it are two). The texture array is stale while it has a
   * home; `evict` copies the bytes back before anything could overwrite them.
   */
  private readonly homes = new Map<Uint8Array, Home>();
  /**
   * Reads go straight into the framebuffer where they can (default). SHMLAB_DIRECT_READS=0
   * turns it off: every read fills its texture and every texture is drawn, the plain path
   * that the tests and the bench hold the direct one against.
   */
  private readonly direct = process.env.SHMLAB_DIRECT_READS !== "0";
  /** Reads that went straight into the framebuffer (for tests and the bench). */
  directReads = 0;
  private readonly surfaces = new Set<Surface>();
  private nextSeq = 1;
  private lastPlacements: SurfacePlacement[] = [];
  /** How many surfaces hold each texture, and the bytes of textures held per client. */
  private readonly texUsers = new Map<Uint8Array, number>();
  private readonly clientTexBytes = new Map<ServerClient, number>();
  /** Per-commit checks of the attached buffer (Xorg's ShmPutImage errors). */
  onCommit: ((attached: Buffer | null) => void) | null = null;
  /**
   * Set for a policy that reads at the commit (Policy.readAtCommit: Xorg copies inside
   * ShmPutImage): the read happens while the commit is dispatched, and the next frame only
   * releases it.
   */
  readAtCommit: {
    read: ReadFn;
    invalid: (b: Buffer) => boolean;
  } | null = null;
  private readEarly: { buffer: Buffer; bytes: number }[] = [];
  /**
   * Most bytes of newly committed buffers read for one client in one frame (at least one
   * buffer, so every client progresses): the rest stay committed for the next frame, and
   * their frame callbacks wait with them. One thread composites for everyone; without a
   * bound, one client committing many large buffers makes a frame (and every other
   * client's frame callback) as long as all its reads. Default: no bound.
   */
  maxClientReadBytesPerFrame = Number.POSITIVE_INFINITY;
  /** Surfaces whose read waits for the next frame (the bound above). */
  private readonly deferred = new Set<Surface>();

  constructor(
    readonly width: number,
    readonly height: number,
    /**
     * Most bytes of buffer copies (textures) kept for one client; a commit whose read would
     * need more is wl_display.error no_memory for that client, before anything is read.
     */
    private readonly maxClientTextureBytes = Number.POSITIVE_INFINITY,
    private readonly rules: OutputRules = { releaseOnReplace: false, releaseDetached: () => {} },
  ) {
    // Plain memory: only this thread draws and reads it, and V8 copies into and fills a
    // SharedArrayBuffer element by element (relaxed atomics), several times slower.
    const a = new Uint32Array(width * height);
    const b = new Uint32Array(width * height);
    this.fbs = [a, b];
    this.fb8s = [new Uint8Array(a.buffer), new Uint8Array(b.buffer)];
  }

  /** One 32-bit pixel per element, the buffers' bytes as they are (little-endian): the last composited frame. */
  get framebuffer(): Uint32Array {
    return this.fbs[this.front];
  }

  /** wl_surface's requests, and wl_compositor.create_surface. */
  implement(s: { implement(iface: string, impl: object): void }): void {
    s.implement("wl_compositor", {
      create_surface: (r: Resource, args: unknown[]) =>
        this.createSurface(r.client, args[0] as number),
      // Regions (opaque, input) change nothing this compositor draws.
      create_region: () => {},
    });
    s.implement("wl_region", { destroy: () => {}, add: () => {}, subtract: () => {} });
    s.implement("wl_surface", {
      destroy: () => {},
      attach: (r: Resource, args: unknown[]) => {
        const sf = r.data as Surface;
        const id = args[0] as number;
        sf.pending.attached = true;
        sf.pending.buffer = id ? (r.client.resource(id)?.data as Buffer) : null;
      },
      // wl_surface.damage and damage_buffer: double-buffered, applied at commit. With no
      // scale and no transform applied, surface and buffer coordinates are the same.
      damage: (r: Resource, args: unknown[]) => this.addDamage(r.data as Surface, args),
      damage_buffer: (r: Resource, args: unknown[]) => this.addDamage(r.data as Surface, args),
      frame: (r: Resource, args: unknown[]) => {
        (r.data as Surface).pending.frames.push(args[0] as number);
      },
      set_opaque_region: () => {},
      set_input_region: () => {},
      commit: (r: Resource) => this.commit(r.data as Surface),
      // Transform and scale are validated (the protocol's errors) but not applied.
      set_buffer_transform: (r: Resource, args: unknown[]) => {
        const t = args[0] as number;
        // wayland.xml: "if transform is not one of the values from the wl_output.transform enum"
        if (t < 0 || t > 7)
          throw interfaceError(r.id, 1, `buffer transform value (${t}) is invalid`);
      },
      set_buffer_scale: (r: Resource, args: unknown[]) => {
        const scale = args[0] as number;
        if (scale < 1)
          throw interfaceError(r.id, 0, `buffer scale value (${scale}) is not positive`);
      },
    });
  }

  private addDamage(s: Surface, args: unknown[]): void {
    const [x, y, width, height] = args as number[];
    // An empty rectangle damages nothing (pixman_region32_union_rect ignores it).
    if (width > 0 && height > 0) s.pending.damage.push({ x, y, width, height });
    boundDamage(s.pending.damage);
  }

  private createSurface(client: ServerClient, id: number): void {
    const res = client.resource(id)!;
    const s: Surface = {
      id,
      client,
      seq: this.nextSeq++,
      pending: { attached: false, buffer: null, frames: [], damage: [] },
      current: { buffer: null, dirty: false, frames: [], damage: "full" },
      texture: null,
      texGeom: null,
    };
    res.data = s;
    this.surfaces.add(s);
    res.onDestroy = () => {
      this.dropDetached(s);
      this.surfaces.delete(s);
      this.setTexture(s, null);
    };
  }

  /** The surface no longer shows a destroyed buffer it kept: that buffer's pool goes. */
  private dropDetached(s: Surface): void {
    const b = s.current.buffer;
    if (!b?.detached) return;
    s.current.buffer = null;
    this.rules.releaseDetached(b);
  }

  /** Points a surface at a texture, keeping the per-texture and per-client counts. */
  private setTexture(s: Surface, tex: Uint8Array | null): void {
    const old = s.texture;
    if (old === tex) return;
    const bytes = this.clientTexBytes.get(s.client) ?? 0;
    let delta = 0;
    if (old) {
      const n = (this.texUsers.get(old) ?? 1) - 1;
      if (n <= 0) {
        this.texUsers.delete(old);
        delta -= old.length;
      } else this.texUsers.set(old, n);
    }
    if (tex) {
      const n = this.texUsers.get(tex) ?? 0;
      if (n === 0) delta += tex.length;
      this.texUsers.set(tex, n + 1);
    }
    if (bytes + delta <= 0) this.clientTexBytes.delete(s.client);
    else this.clientTexBytes.set(s.client, bytes + delta);
    s.texture = tex;
  }

  /** A buffer no surface shows any more keeps no texture (wlroots drops the client buffer). */
  private dropUnshownTexture(b: Buffer | null): void {
    // A per-buffer texture lives as long as its wl_buffer (Hyprland's CWLSHMBuffer).
    if (!b?.texture || this.rules.texture === "buffer") return;
    for (const s of this.surfaces) if (s.current.buffer === b) return;
    b.texture = null;
  }

  /** The texture to read `b` into for `s`, or null when the client's budget has no room. */
  private textureFor(s: Surface, b: Buffer): Uint8Array | null {
    if (b.texture && b.texture.length === b.span) return b.texture;
    const own = s.texture;
    // The surface's previous copy, when no one else holds it, is reused in place.
    if (own && own.length === b.span && this.texUsers.get(own) === 1) return own;
    const held = this.clientTexBytes.get(s.client) ?? 0;
    const freed = own && this.texUsers.get(own) === 1 ? own.length : 0;
    if (held - freed + b.span > this.maxClientTextureBytes) return null;
    return new Uint8Array(b.span);
  }

  private commit(s: Surface): void {
    const p = s.pending;
    if (p.attached) this.onCommit?.(p.buffer);
    if (p.attached) {
      this.dropDetached(s);
      const old = s.current.buffer;
      // A compositor that keeps reading the client's memory (weston's and wlroots 0.15's
      // pixman renderers) releases a buffer only once another one replaces it.
      if (this.rules.releaseOnReplace && old && old !== p.buffer && old.alive && !old.client.closed)
        old.client.postEvent(old.id, "release");
      const before = old;
      s.current.buffer = p.buffer;
      // weston's pixman_renderer_attach makes its image from the data pointer at commit.
      if (p.buffer?.alive) this.rules.attach?.(p.buffer);
      s.current.dirty = p.buffer !== null;
      if (before !== p.buffer) this.dropUnshownTexture(before);
      if (p.buffer === null) {
        this.setTexture(s, null);
        s.texGeom = null;
      }
    }
    s.current.frames.push(...p.frames);
    // Damage accumulates until the texture is next read; a new buffer of another geometry
    // (or the first one) must be read whole.
    if (s.current.damage !== "full") {
      s.current.damage.push(...p.damage);
      boundDamage(s.current.damage);
    }
    s.pending = { attached: false, buffer: null, frames: [], damage: [] };
    if (this.readAtCommit) {
      const r = this.readSurface(s, this.readAtCommit.read, this.readAtCommit.invalid);
      if (r) this.readEarly.push(r);
    }
  }

  /** wl_shm_pool.create_buffer read the new buffer whole (Policy.reads.readAtCreate). */
  createdTexture(b: Buffer, tex: Uint8Array): void {
    b.texture = tex;
  }

  /** The policy instance exists after the output: its readDestroyed is set here. */
  setReadDestroyed(read: (b: Buffer, into: Uint8Array) => void): void {
    this.rules.readDestroyed = read;
  }

  /**
   * A destroyed buffer is let go of by every surface, unless the policy keeps it on screen
   * (`readDestroyed`): then true, and its surface reads it until it moves on.
   */
  bufferGone(b: Buffer): boolean {
    const keep =
      (this.rules.readDestroyed !== undefined ||
        this.rules.destroyed === "read" ||
        this.rules.destroyed === "saved") &&
      [...this.surfaces].some((s) => s.current.buffer === b);
    // Surfaces keep showing what they copied; the buffer's own reference goes (unless one
    // keeps the destroyed buffer itself on screen).
    if (!keep) b.texture = null;
    for (const s of this.surfaces) {
      if (s.current.buffer === b && !keep) s.current.buffer = null;
      if (s.pending.buffer === b) s.pending.buffer = null;
    }
    return keep;
  }

  /** Surfaces in creation order. */
  private surfaceList(): Surface[] {
    return [...this.surfaces].sort((a, b) => a.seq - b.seq);
  }

  /**
   * Reads each newly committed buffer into its surface's texture through `read` (a
   * bracketed access); `invalid` decides that a buffer must not be read (and says so).
   */
  readCommitted(read: ReadFn, invalid: (b: Buffer) => boolean): FrameReads {
    const out: FrameReads = { buffersRead: 0, bytesCopied: 0, released: [] };
    // Buffers read at their commit since the last frame (readAtCommit) count here.
    const early = this.readEarly.splice(0);
    const spent = new Map<ServerClient, number>();
    this.deferred.clear();
    const late = this.surfaceList().map((s) => {
      if (this.readDetached(s)) return null;
      const used = spent.get(s.client) ?? 0;
      const next = s.current.dirty ? s.current.buffer : null;
      if (used > 0 && next && used + next.span > this.maxClientReadBytesPerFrame) {
        this.deferred.add(s);
        return null;
      }
      const r = this.readSurface(s, read, invalid);
      if (r) spent.set(s.client, used + r.bytes);
      return r;
    });
    for (const r of [...early, ...late]) {
      if (!r) continue;
      out.buffersRead++;
      out.bytesCopied += r.bytes;
      if (r.buffer.alive) out.released.push(r.buffer);
    }
    return out;
  }

  /**
   * A destroyed buffer that the policy keeps on screen (`readDestroyed`: wlroots 0.15's
   * pixman renderer) is read again at every repaint, outside any begin/end_access, and is
   * neither counted as a new read nor released. True when `s` shows such a buffer.
   */
  private readDetached(s: Surface): boolean {
    const b = s.current.buffer;
    if (!this.rules.readDestroyed || !b?.detached || s.client.closed) return false;
    const tex = b.texture && b.texture.length === b.span ? b.texture : new Uint8Array(b.span);
    this.evict(tex);
    this.rules.readDestroyed!(b, tex);
    if (!this.surfaces.has(s)) return true; // the read ended its client (see readSurface)
    b.texture = tex;
    this.setTexture(s, tex);
    return true;
  }

  /**
   * Reads a surface's buffer into its texture when a read is due: a newly committed one,
   * or (at "repaint") whatever it shows. Returns the buffer and the bytes read, or null.
   */
  private readSurface(
    s: Surface,
    read: ReadFn,
    invalid: (b: Buffer) => boolean,
  ): { buffer: Buffer; bytes: number } | null {
    const b = s.current.buffer;
    const atRepaint = this.rules.at === "repaint" && this.readAtCommit === null;
    if (!b || !(s.current.dirty || atRepaint) || s.client.closed) return null;
    s.current.dirty = false;
    // A destroyed buffer is read only where the policy keeps it ("read": KWin).
    if (!(b.alive || b.detached) || b.inert || invalid(b)) return null;
    const partial = this.damagedRanges(s, b);
    const own = this.rules.texture === "buffer";
    const tex = partial ? (own ? b.texture! : s.texture!) : this.textureFor(s, b);
    if (!tex) {
      s.client.postError(
        DISPLAY_ID,
        DISPLAY_ERROR.no_memory,
        `buffer copies for this client would pass ${this.maxClientTextureBytes} bytes`,
      );
      return null;
    }
    s.current.damage = [];
    let bytes = b.span;
    const into = this.destination(s, b, tex, partial);
    if (partial) {
      read(b, into, partial);
      bytes = 0;
      for (const [, n] of partial) bytes += n;
    } else read(b, into);
    // The read may have ended the client (libwayland posts invalid_fd at the end_access of
    // a read that faulted, and the client is disconnected): its surfaces are destroyed, and
    // a destroyed surface must not take a texture back, or the copy is held for good.
    if (!this.surfaces.has(s)) return { buffer: b, bytes };
    // With damage tracking the texture is the surface's own (wlr_client_buffer's texture):
    // a later buffer updates it in place, so no buffer may share it.
    if (this.rules.damage !== "damage" || own) b.texture = tex;
    this.setTexture(s, tex);
    s.texGeom = {
      width: b.width,
      height: b.height,
      stride: b.stride,
      bpp: b.bpp,
      format: b.format,
    };
    return { buffer: b, bytes };
  }

  /**
   * Where a read of `b` into the texture `tex` writes: straight into the back framebuffer
   * when the next composite would draw the whole texture there as one run (`homeFor`), so
   * that drawing it is no copy at all; into `tex` itself otherwise. The read is the same
   * either way (the same user loads of the same pages in the same order, through the same
   * policy call): only the memory it fills differs. A read of part of the texture (damage)
   * brings the rest of its bytes along first.
   */
  private destination(
    s: Surface,
    b: Buffer,
    tex: Uint8Array,
    partial: readonly (readonly [number, number])[] | null,
  ): Uint8Array {
    const off = this.homeFor(s, b, tex);
    if (off < 0) {
      this.evict(tex);
      return tex;
    }
    const back = 1 - this.front;
    const fb = this.fb8s[back];
    const n = tex.length;
    for (const [t, h] of this.homes)
      if (t !== tex && h.fb === back && h.off < off + n && off < h.off + t.length) this.evict(t);
    const whole = !partial || (partial.length === 1 && partial[0][0] === 0 && partial[0][1] === n);
    const h = this.homes.get(tex);
    if (!whole && !(h && h.fb === back && h.off === off))
      fb.set(h ? this.fb8s[h.fb].subarray(h.off, h.off + n) : tex, off);
    this.homes.set(tex, { fb: back, off });
    this.directReads++;
    return fb.subarray(off, off + n);
  }

  /** Copies a texture's bytes back from the framebuffer that keeps them, if one does. */
  private evict(tex: Uint8Array): void {
    const h = this.homes.get(tex);
    if (!h) return;
    tex.set(this.fb8s[h.fb].subarray(h.off, h.off + tex.length));
    this.homes.delete(tex);
  }

  /**
   * The byte offset in the back framebuffer where the next composite would draw `tex`
   * (read from `b` for `s`) whole as one run, or -1: the layout as it will be once this
   * frame's due reads are made (surfaces showing a texture or with a buffer to read),
   * with `s` showing `b`. A read that turns out otherwise (a client that the read ends, a
   * read that is refused) only means the texture is copied out again before the composite.
   */
  private homeFor(s: Surface, b: Buffer, tex: Uint8Array): number {
    if (!this.direct || this.rules.texture === "buffer" || s.client.closed) return -1;
    const atRepaint = this.rules.at === "repaint";
    const list = this.surfaceList().filter(
      (q) =>
        q === s ||
        (!q.client.closed &&
          ((q.texture !== null && q.texGeom !== null) ||
            (q.current.buffer !== null && (q.current.dirty || atRepaint)))),
    );
    const grid = this.grid(list.length);
    const i = list.indexOf(s);
    const p = grid.place(i, b.width, b.height);
    return this.wholeRunAt(b, p, tex.length);
  }

  /** The output's grid for `n` surfaces: ceil(sqrt(n)) columns, each tile's top-left. */
  private grid(n: number): { place(i: number, w: number, h: number): Rect } {
    const cols = Math.ceil(Math.sqrt(n));
    const rows = Math.ceil(n / cols);
    const tw = Math.floor(this.width / cols);
    const th = Math.floor(this.height / rows);
    return {
      place: (i, w, h) => ({
        x: (i % cols) * tw,
        y: Math.floor(i / cols) * th,
        width: Math.min(w, tw),
        height: Math.min(h, th),
      }),
    };
  }

  /**
   * The framebuffer byte offset where drawing a texture of geometry `g` (`length` bytes)
   * at `p` writes the whole texture as one run (as wide as the output, a packed 32-bit
   * stride, every row shown), or -1.
   */
  private wholeRunAt(
    g: { width: number; height: number; stride: number; bpp: number },
    p: Rect,
    length: number,
  ): number {
    const W = this.width;
    if (g.bpp !== 4 || g.stride !== W * 4 || g.width !== W || p.x !== 0 || p.width !== W) return -1;
    if (p.height !== g.height || length !== g.stride * g.height) return -1;
    return p.y * W * 4;
  }

  /**
   * wlr_client_buffer_apply_damage: the surface's texture can take `b` by uploading only
   * the damaged rectangles when it was read before from a buffer of the same geometry and
   * no other surface holds it. The rows of each damaged rectangle, clipped to the buffer,
   * as [offset, length] ranges of its span; null when a full read is due.
   */
  private damagedRanges(s: Surface, b: Buffer): [number, number][] | null {
    const d = s.current.damage;
    if (this.rules.damage !== "damage" || d === "full") return null;
    if (this.rules.texture === "buffer") {
      // CWLSHMBuffer::update(damage): the buffer's own texture, whatever the surface showed.
      if (!b.texture || b.texture.length !== b.span) return null;
    } else {
      const g = s.texGeom;
      const tex = s.texture;
      if (!tex || !g) return null;
      if (g.width !== b.width || g.height !== b.height || g.stride !== b.stride) return null;
      if (g.format !== b.format || tex.length !== b.span || this.texUsers.get(tex) !== 1)
        return null;
    }
    const out: [number, number][] = [];
    for (const r of d) {
      const x0 = Math.max(0, r.x);
      const y0 = Math.max(0, r.y);
      const x1 = Math.min(b.width, r.x + r.width);
      const y1 = Math.min(b.height, r.y + r.height);
      if (x1 <= x0 || y1 <= y0) continue;
      for (let y = y0; y < y1; y++) {
        const off = y * b.stride + x0 * b.bpp;
        const n = (x1 - x0) * b.bpp;
        // Rows as wide as the stride follow each other in memory: one upload reads them as
        // one run, as a texture upload of the whole rectangle does.
        const last = out[out.length - 1];
        if (last && last[0] + last[1] === off) last[1] += n;
        else out.push([off, n]);
      }
    }
    return out;
  }

  /** Sends wl_buffer.release for what was read, and the frame callbacks with the time. */
  finishFrame(released: readonly Buffer[], time: number): void {
    // "wl_buffer.release ... when the compositor no longer uses the contents": they were
    // copied into the compositor's own memory.
    if (!this.rules.releaseOnReplace)
      for (const b of released)
        if (b.alive && !b.client.closed) b.client.postEvent(b.id, "release");
    const ms = Math.floor(time) >>> 0;
    for (const s of this.surfaceList()) {
      // A surface with nothing to show is not repainted, so its callbacks wait (wlroots'
      // wlr_surface_send_frame_done reaches only surfaces it renders, weston's only views
      // on an output): seen on sway 1.7, fuzz seed 100 (docs/real-compositors.md).
      if (s.client.closed || this.deferred.has(s)) continue;
      if (this.rules.frameDone !== "all" && !this.mapped(s)) continue;
      for (const cb of s.current.frames.splice(0))
        if (s.client.resource(cb)) s.client.postEvent(cb, "done", [ms]);
    }
  }

  /** The surface has contents: a buffer, or a texture it still shows. */
  private mapped(s: Surface): boolean {
    return s.current.buffer !== null || s.texture !== null;
  }

  /**
   * The layout: surfaces with contents, in creation order, on a grid of
   * ceil(sqrt(n)) columns; each at its tile's top-left corner, clipped to the tile.
   */
  private layout(): { surface: Surface; place: SurfacePlacement }[] {
    const shown = this.surfaceList().filter((s) => s.texture && s.texGeom && !s.client.closed);
    const grid = this.grid(shown.length);
    return shown.map((s, i) => {
      const g = s.texGeom!;
      return {
        surface: s,
        place: {
          client: s.client.label,
          clientId: s.client.id,
          surface: s.id,
          ...grid.place(i, g.width, g.height),
          buffer: { width: g.width, height: g.height, stride: g.stride, format: g.format },
        },
      };
    });
  }

  /**
   * Draws every shown surface's texture into the back framebuffer, clears the rest, and
   * makes it the front one. Each drawn region is a copy per row, or one copy when its rows
   * are contiguous in both the texture and the framebuffer (a surface as wide as the output
   * with a packed stride), or no copy when the texture's bytes are already there (a read
   * went straight there: `destination`). When the regions cover most of the output, only
   * what they leave uncovered is cleared, so no byte is written twice; when they cover
   * little, one fill of the whole output first is cheaper than clearing many short gaps.
   */
  composite(): void {
    const shown = this.layout();
    const drawable = shown.filter(({ surface: s }) => s.texGeom!.bpp === 4);
    // Every accepted format is 32-bit; others are not drawn (their region is background).
    const back = 1 - this.front;
    // Where each texture is drawn whole as one run: a texture kept there is already drawn.
    const runs = new Map<Uint8Array, number>();
    for (const { surface: s, place: p } of drawable) {
      const at = this.wholeRunAt(s.texGeom!, p, s.texture!.length);
      if (at >= 0) runs.set(s.texture!, at);
    }
    // Any other texture kept in the back framebuffer is copied out before it is drawn over.
    for (const [t, h] of this.homes) if (h.fb === back && runs.get(t) !== h.off) this.evict(t);
    const covered = drawable.reduce((n, { place: p }) => n + p.width * p.height, 0);
    const kept = [...this.homes.values()].some((h) => h.fb === back);
    const fillFirst = covered * 2 < this.width * this.height && !kept;
    if (fillFirst) this.fbs[back].fill(0);
    for (const { surface: s, place: p } of drawable) {
      const tex = s.texture!;
      const h = this.homes.get(tex);
      if (h && h.fb === back && h.off === this.wholeRunAt(s.texGeom!, p, tex.length)) continue;
      const src = h ? this.fb8s[h.fb].subarray(h.off, h.off + tex.length) : tex;
      this.draw(this.fb8s[back], src, s.texGeom!.stride, p);
    }
    if (!fillFirst)
      this.clearBackground(
        this.fbs[back],
        drawable.map((d) => d.place),
      );
    // The front framebuffer becomes the next back one: a texture kept there moves to where
    // it was just drawn whole, or is copied out.
    for (const [t, h] of this.homes) {
      if (h.fb === back) continue;
      const at = runs.get(t);
      if (at === undefined) this.evict(t);
      else this.homes.set(t, { fb: back, off: at });
    }
    this.front = back;
    this.lastPlacements = shown.map((d) => d.place);
  }

  /** Copies a texture's visible rows into its region of the framebuffer `fb8`. */
  private draw(fb8: Uint8Array, tex: Uint8Array, stride: number, p: SurfacePlacement): void {
    const W = this.width;
    const rowBytes = p.width * 4;
    if (p.height === 0 || rowBytes === 0) return;
    if (stride === rowBytes && p.width === W) {
      fb8.set(tex.subarray(0, stride * p.height), p.y * W * 4);
      return;
    }
    for (let y = 0; y < p.height; y++) {
      const src = y * stride;
      fb8.set(tex.subarray(src, src + rowBytes), ((p.y + y) * W + p.x) * 4);
    }
  }

  /**
   * Zeroes every pixel of `fb` no drawn region covers, band by band: the rows between two
   * region edges are covered by the same regions, so their gaps are the same.
   */
  private clearBackground(fb: Uint32Array, drawn: readonly SurfacePlacement[]): void {
    const W = this.width;
    const edges = new Set([0, this.height]);
    for (const p of drawn) {
      edges.add(p.y);
      edges.add(p.y + p.height);
    }
    const ys = [...edges].sort((a, b) => a - b);
    for (let b = 0; b + 1 < ys.length; b++) {
      const [y0, y1] = [ys[b], ys[b + 1]];
      const spans = drawn
        .filter((p) => p.y <= y0 && p.y + p.height >= y1 && p.width > 0)
        .sort((a, c) => a.x - c.x);
      if (spans.length === 0) {
        fb.fill(0, y0 * W, y1 * W);
        continue;
      }
      for (let y = y0; y < y1; y++) {
        let x = 0;
        for (const p of spans) {
          if (p.x > x) fb.fill(0, y * W + x, y * W + p.x);
          x = Math.max(x, p.x + p.width);
        }
        if (x < W) fb.fill(0, y * W + x, (y + 1) * W);
      }
    }
  }

  /** The pixels of one placement, row by row (width * height values). */
  regionPixels(p: SurfacePlacement): Uint32Array {
    const out = new Uint32Array(p.width * p.height);
    for (let y = 0; y < p.height; y++) {
      const at = (p.y + y) * this.width + p.x;
      out.set(this.framebuffer.subarray(at, at + p.width), y * p.width);
    }
    return out;
  }

  /** Where each surface was on the last composited frame. */
  placements(): SurfacePlacement[] {
    return this.lastPlacements;
  }
}
