/**
 * The one interface every mapping policy implements. A policy is how the compositor maps a
 * client's pool, grows it, brackets and performs its reads of a buffer, which wl_shm
 * requests it refuses (in its namesake's order, with its error codes), and what the client
 * receives after a fault. It is user-space code: it reaches memory only through the
 * compositor process's syscalls and user accesses (shm/process.ts), never kernel internals.
 *
 * A Policy is a factory: `create` is called once per compositor, with that compositor's
 * process, so per-process state (an installed SIGBUS handler, libwayland's thread-local
 * data, Xorg's busfault list) belongs to one compositor, as it would to one real process.
 */
import type { Process } from "../shm/process.ts";
import type { KernelFeature } from "../shm/scenario.ts";

/** A wl_shm refusal: an error code of wl_shm.error, posted on the request's sender. */
export interface Refusal {
  code: number;
  message: string;
  /**
   * The implementation dies right after posting (Smithay's `unwrap()` on a zero resize).
   * The text is the panic message.
   */
  thenPanic?: string;
  /**
   * An X11 error reply ("BadValue", "BadMatch"...) instead of a wl_shm error: Xorg answers
   * a bad MIT-SHM request with an error and keeps the client (Xext/shm.c returns the error
   * code to the dispatcher, which sends it and carries on). Nothing is posted on the wire;
   * the object the request made is inert and the error is kept as a notice.
   */
  xError?: string;
  /**
   * Accepted with no error but drawing nothing (an X request whose 16-bit fields cannot
   * carry the wl_shm geometry: what reaches the server draws nothing the model can read).
   */
  drawsNothing?: boolean;
}

/** Thrown by policy code to refuse a request (posted on the sender, like a profile refusal). */
export class ShmRefusal extends Error {
  readonly refusal: Refusal;
  constructor(code: number, message: string, xError?: string) {
    super(message);
    this.name = "ShmRefusal";
    this.refusal = xError ? { code, message, xError } : { code, message };
  }
}

/** The arguments of wl_shm_pool.create_buffer. */
export interface BufferArgs {
  offset: number;
  width: number;
  height: number;
  stride: number;
  format: number;
}

/**
 * wl_shm validation, as one implementation does it: each function returns the first
 * failing check's refusal (in that implementation's order) or null.
 */
export interface ValidationProfile {
  /** Whose wl_shm code this is, e.g. "wayland src/wayland-shm.c". */
  readonly source: string;
  /** wl_shm.format values accepted by create_buffer, and advertised on bind. */
  readonly formats: readonly number[];
  /** wl_shm.create_pool, before the pool is mapped. */
  createPool(size: number): Refusal | null;
  /** wl_shm_pool.create_buffer against the pool's current (mapped) size. */
  createBuffer(b: BufferArgs, poolSize: number): Refusal | null;
  /** wl_shm_pool.resize against the pool's current (mapped) size. */
  resize(size: number, poolSize: number): Refusal | null;
  /**
   * The geometry the compositor reads, where its request cannot carry the client's: Xorg's
   * ShmPutImage has 16-bit fields and a stride in whole pixels. Absent: the client's own.
   */
  drawn?(b: BufferArgs): Pick<BufferArgs, "width" | "height" | "stride">;
}

/** A pool as the compositor tracks it; the policy fills in and updates the mapping fields. */
export interface ShmPool {
  /** For reports: "client-label#poolId". */
  readonly name: string;
  /** The compositor's fd for the pool's file, or -1 once the policy closed it. */
  fd: number;
  /** libwayland's pool->size: the size currently mapped (or, for copy policies, readable). */
  size: number;
  /** The mapping's address in the compositor process; 0 when the policy does not map. */
  addr: number;
  /** Policy-private state of this pool. */
  state: Record<string, unknown>;
  /**
   * Set by a policy that gave the pool up without disconnecting the client (Xorg's
   * ShmBusfaultNotify frees the segment): buffers keep what they last showed, new buffers
   * from it are inert.
   */
  freed: boolean;
}

/** A buffer as a policy sees it. `span` is the bytes a read covers (see Compositor.read). */
export interface BufferView extends BufferArgs {
  readonly pool: ShmPool;
  /** Bytes per pixel of the format. */
  readonly bpp: number;
  /** (height - 1) * stride + width * bpp: first byte of row 0 to last byte of the last row. */
  readonly span: number;
  /** For reports: "client-label#bufferId". */
  readonly name: string;
}

/** One bracketed access in progress. */
export interface Access {
  readonly buffer: BufferView;
  /** Address of the buffer's first byte in the compositor process (0 for copy policies). */
  readonly base: number;
  /** Policy-private state of this access. */
  readonly state?: unknown;
}

/** What ending an access tells the compositor to send (libwayland: wl_buffer invalid_fd). */
export interface AccessEnd {
  /** A wl_shm.error code and message to post on the wl_buffer. */
  error?: { code: number; message: string };
  /**
   * What to post instead when the wl_buffer's resource is already destroyed (the compositor
   * kept the buffer: KWin's ShmClientBuffer, libwayland >= 1.24's wl_shm_buffer_ref): a
   * wl_display.error `implementation` with this message on the buffer's client (libwayland
   * wl_shm_buffer_end_access → wl_client_post_implementation_error). Absent: nothing is
   * posted for a destroyed buffer.
   */
  destroyedError?: string;
}

/** Something a policy did to a client that is not a protocol error (Xorg freeing a segment). */
export interface PolicyNotice {
  pool: ShmPool;
  what: string;
}

/**
 * What a policy may ask of the compositor beyond its process's syscalls. Deliberately
 * narrow: no kernel, no scheduler, no other process — a real compositor has none of them.
 */
export interface PolicyEnv {
  /**
   * The compositor aborts (a Rust panic, libwayland's wl_abort, Xorg's FatalError): the
   * process ends and the ProcessKilled propagates. Never returns.
   */
  panic(reason: string): never;
  /**
   * A helper thread of the policy: whenever the compositor's main thread goes to sleep in
   * the kernel waiting for `what` (handle_userfault's "userfaultfd" wait), `run` is called
   * first, as that thread would run while the main one sleeps. Returns nothing: whether
   * the sleeper can go on is the kernel's to judge afterwards.
   */
  onBlocked(what: string, run: () => void): void;
  /**
   * The compositor thread running the policy's code now ("main", or "render" while a
   * render thread reads): what pthread_self() tells thread-local state (libwayland's
   * sigbus_data, Smithay's SIGBUS_GUARD) apart by. Absent: always "main".
   */
  thread?(): string;
}

export interface PolicyInstance {
  /** Maps a new pool (pool.fd, pool.size set); sets pool.addr. Throws ShmRefusal. */
  mapPool(pool: ShmPool): void;
  /** Grows the pool to `size` (already validated). Throws ShmRefusal. */
  growPool(pool: ShmPool, size: number): void;
  /** The pool's last reference is gone: unmap, close. */
  unmapPool(pool: ShmPool): void;
  beginAccess(buffer: BufferView): Access;
  /** Reads the buffer's span into dst (dst.length === buffer.span), in compositor memory. */
  read(access: Access, dst: Uint8Array): void;
  /**
   * Reads bytes [offset, offset + length) of the buffer's span into the same bytes of dst:
   * one row of a damaged rectangle. Required of a policy whose `reads.damage` is "damage"
   * (wlroots' gles2_texture_update_from_buffer uploads each damaged rectangle's rows).
   */
  readRange?(access: Access, dst: Uint8Array, offset: number, length: number): void;
  endAccess(access: Access): AccessEnd | undefined;
  /**
   * The compositor makes nothing to read of this buffer now that its read is due (KWin
   * 5.27's ShmClientBuffer::data() returning a null QImage): nothing is read and its
   * surface keeps the texture it had. Called once per due read, before any access; it may
   * change the policy's state (begin an access it never ends). Absent: always read.
   */
  declines?(buffer: BufferView): boolean;
  /**
   * wl_surface.commit attached this live buffer (weston's pixman_renderer_attach takes the
   * data pointer here and reads through it at repaint).
   */
  attach?(buffer: BufferView): void;
  /**
   * Present on a policy that keeps a destroyed wl_buffer on screen and reads it at every
   * repaint, outside any access (wlroots 0.15's saved_data); absent: a destroyed buffer is
   * dropped from its surface.
   */
  readDestroyed?(buffer: BufferView, dst: Uint8Array): void;
  /** Main-loop work between frames (Xorg's busfault_check in WaitForSomething). */
  idle?(): PolicyNotice[];
  /** Work of helper threads the policy runs (the userfaultfd handler); true if any ran. */
  service?(): boolean;
}

/**
 * When the compositor reads a committed buffer (docs/policies.md, "Read moments"):
 * - "commit": while wl_surface.commit is dispatched (Xorg's ProcShmPutImage copies inside
 *   the request; wlroots >= 0.17 surface_apply_damage uploads the texture at commit);
 * - "frame": once, at the first repaint after the commit, into a texture the compositor
 *   keeps (weston's gl-renderer flush_damage, KWin's texture update at render time);
 * - "repaint": at every repaint while the surface shows it, through the client's own
 *   memory, nothing kept (weston's and wlroots 0.15's pixman renderers).
 */
export type ReadMoment = "commit" | "frame" | "repaint";

/** When and how much a policy's compositor reads; absent fields take the defaults. */
export interface ReadRules {
  /** Default "frame" ("commit" when `readAtCommit`). */
  at?: ReadMoment;
  /**
   * "full" (default): every read covers the buffer's whole span. "damage": after a
   * surface's first full upload, a new buffer of the same geometry only has the rectangles
   * damaged since (wl_surface.damage / damage_buffer) read into the surface's texture
   * (wlroots wlr_client_buffer_apply_damage; KWin's texture update of the damaged region).
   */
  damage?: "full" | "damage";
  /**
   * What a destroyed wl_buffer that a surface still shows becomes: "drop" (default: the
   * surface keeps its texture, the pool reference goes), "read" (the compositor keeps the
   * buffer and its pool and still reads it, bracketed, when its read is due: KWin's
   * ShmClientBuffer outlives its wl_buffer, buffer_destroy_resource → drop()). A policy
   * instance with `readDestroyed` keeps it and reads it unbracketed (wlroots 0.15).
   * "saved": kept and read when due like "read", but the policy's own beginAccess reads it
   * without an access (KWin 5.27's savedData: ShmClientBuffer::data() skips
   * wl_shm_buffer_begin_access once the wl_buffer is gone).
   */
  destroyed?: "drop" | "read" | "saved";
  /**
   * The compositor thread that performs the reads: "main" (default) or "render", a second
   * thread of the compositor's process (the repaint on a render thread while the main
   * thread dispatches clients). With "render", `bracket` says on which thread
   * begin/end_access run: "render" (around the read, on the render thread) or "main" (the
   * main thread takes the access when it hands the frame over, the render thread reads).
   */
  thread?: "main" | "render";
  bracket?: "main" | "render";
  /**
   * Whose texture a read updates: "surface" (default; wlroots' client buffer texture, KWin's
   * surface texture) or "buffer" (each wl_buffer has its own, made at create_buffer and
   * updated by each commit that attaches it: Hyprland's CWLSHMBuffer).
   */
  texture?: "surface" | "buffer";
  /**
   * The whole buffer is read when wl_shm_pool.create_buffer is dispatched (Hyprland's
   * CWLSHMBuffer constructor makes its CTexture from the pool's data there).
   */
  readAtCreate?: boolean;
  /**
   * Which surfaces a frame answers wl_surface.frame for: "shown" (default: only a surface
   * with something to show is repainted, and only a repainted one gets its callbacks —
   * wlroots' wlr_surface_send_frame_done, weston's views on an output; sway 1.7, fuzz seed
   * 100) or "all" (the X server: MIT-SHM has no frame callbacks, and the model's `frame`
   * stands for a request's round trip, which Xvfb answers whatever is on screen; Xvfb fuzz
   * seed 100, docs/real-compositors.md).
   */
  frameDone?: "shown" | "all";
}

export interface Policy {
  /** kebab-case, unique: `--policy NAME`. */
  readonly name: string;
  /** The source file and functions it follows. */
  readonly source: string;
  /** One line: what it does. */
  readonly summary: string;
  /** What a client that truncates its pool under it receives. */
  readonly clientReceives: string;
  /** Kernel proposals the policy needs switched on. */
  readonly features: readonly KernelFeature[];
  readonly profile: ValidationProfile;
  /**
   * libwayland defers a resize while the compositor holds the pool ("may be caching
   * pointers into it"); policies that make a new mapping instead (wlroots, KWin) do not.
   */
  readonly deferResizeWhileReading: boolean;
  /**
   * Behaviours this policy's protocol cannot express (MIT-SHM has no pool resize), each
   * with the reason: the lab reports them as not applicable instead of inventing a verdict.
   */
  readonly notApplicable?: Readonly<Record<string, string>>;
  /**
   * The buffer is read while the commit is processed, not at the next frame: Xorg's
   * ProcShmPutImage copies the image during the request.
   */
  readonly readAtCommit?: boolean;
  /** When and how much it reads (default: once per commit, at the next frame, whole). */
  readonly reads?: ReadRules;
  /**
   * wl_buffer.release only when another buffer replaces it on the surface (the compositor
   * reads the client's memory at every repaint instead of keeping a copy); default: release
   * once the frame has read it.
   */
  readonly releaseOnReplace?: boolean;
  /**
   * The real compositors whose behaviour this models, for `shmlab conformance
   * --compositors`: `version` is a regular expression matched against the installed
   * instance's version ("sway 1.7 / wlroots 0.15.1 / libwayland-server 1.21.0"); a policy
   * is held against a compositor only at a version it follows.
   */
  readonly follows?: readonly PolicyFollows[];
  /**
   * Set on a model of an older version of another policy's code (libwayland-1.21 of
   * libwayland): it runs where that version is installed, not in the default comparison.
   */
  readonly versionOf?: string;
  /**
   * Set on a construct built from another policy to show one design choice (a render
   * thread, a compositor's own SIGBUS handler): it runs when named, not in the default
   * comparison.
   */
  readonly variantOf?: string;
  create(proc: Process, env: PolicyEnv): PolicyInstance;
}

export interface PolicyFollows {
  /** real/ kind: weston, sway, xvfb, mutter, kwin, cage. */
  compositor: string;
  version: string;
  /** Why this policy models that compositor (which of its code paths). */
  why: string;
}

/** A policy's read rules with every default filled in. */
export function readRules(p: Policy): Required<ReadRules> {
  const r = p.reads ?? {};
  return {
    at: r.at ?? (p.readAtCommit ? "commit" : "frame"),
    damage: r.damage ?? "full",
    destroyed: r.destroyed ?? "drop",
    thread: r.thread ?? "main",
    bracket: r.bracket ?? r.thread ?? "main",
    texture: r.texture ?? "surface",
    readAtCreate: r.readAtCreate ?? false,
    frameDone: r.frameDone ?? "shown",
  };
}
