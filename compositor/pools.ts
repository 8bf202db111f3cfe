/**
 * Pool and buffer lifecycle: wl_shm.create_pool, wl_shm_pool.create_buffer and .resize, as
 * the policy's validation profile and mapping code decide them, libwayland's reference
 * counting (a pool lives while its resource, a buffer or an access holds it) and its
 * deferred resize, and the bracketed access (begin_access ... end_access) every read of a
 * buffer goes through.
 */
import { interfaceError, PROTO_ERR, type ProtocolError, protoError } from "../protocol/errors.ts";
import { DISPLAY_ERROR, DISPLAY_ID } from "../protocol/schema.ts";
import type { Resource, ServerClient } from "../protocol/server.ts";
import { onErrno } from "../shm/expected-errors.ts";
import type { Process } from "../shm/process.ts";
import {
  type Access,
  type AccessEnd,
  type BufferArgs,
  type BufferView,
  type Policy,
  type PolicyInstance,
  type Refusal,
  readRules,
  type ShmPool,
  ShmRefusal,
} from "./policy.ts";
import { bytesPerPixel } from "./validation.ts";

export interface Pool extends ShmPool {
  readonly id: number;
  readonly client: ServerClient;
  /** Internal references: the wl_shm_pool resource, each buffer, each access in flight. */
  refs: number;
  /**
   * libwayland's external_refcount: accesses in flight and the compositor's
   * wl_shm_buffer_ref_pool references (a resize waits for 0).
   */
  busy: number;
  /** A resize waiting for the accesses in flight to end. */
  newSize: number | null;
  resourceRef: boolean;
  unmapped: boolean;
  /** The protocol variant let this pool shrink (shrinkable-pools): check buffers against it. */
  shrunk?: boolean;
}

export interface Buffer extends BufferView {
  readonly id: number;
  readonly client: ServerClient;
  readonly pool: Pool;
  alive: boolean;
  /** Created from a pool the policy freed (Xorg): shows nothing. */
  inert: boolean;
  /** Xorg: the X error its ShmPutImage (commit) gets, or that it draws nothing. */
  xRefusal?: Refusal;
  /**
   * The compositor's copy of this buffer (its texture), shared by every surface showing it:
   * one per buffer at most, dropped when the buffer is destroyed or shown by no surface
   * (output.ts).
   */
  texture: Uint8Array | null;
  /**
   * Its wl_buffer is destroyed but the policy keeps it on screen (`readDestroyed`, or
   * `reads.destroyed` "read" / "saved"), its pool referenced, until the surface moves on.
   */
  detached?: boolean;
  /** Its destroyed buffer holds the pool by wl_shm_buffer_ref_pool (an external reference). */
  refPool?: boolean;
}

/** What the pools need of the compositor around them. */
export interface PoolHost {
  readonly proc: Process;
  readonly policy: Policy;
  readonly instance: PolicyInstance;
  /** The compositor is alive (its process, and it has not been declared dead). */
  alive(): boolean;
  /** The protocol variant lets pools shrink (shrinkable-pools). */
  poolsMayShrink(): boolean;
  /** Something done to a client without a protocol error (or an X error: `xError`). */
  notice(client: ServerClient, pool: string, what: string, xError?: string): void;
  panic(reason: string): never;
  /**
   * A buffer was destroyed: surfaces let go of it, or one keeps it on screen (true: the
   * pool stays referenced until `releaseDetached`).
   */
  bufferGone(b: Buffer): boolean;
  /** A buffer was created (and validated): a policy that reads at create_buffer reads it. */
  bufferCreated?(b: Buffer): void;
  /**
   * Most bytes of pools mapped for one client at once (a pool stays mapped while any of its
   * buffers lives): bounds the pages the compositor's own reads can fault into a client's
   * files. Infinity: no limit.
   */
  readonly maxClientPoolBytes: number;
}

function refusal(objectId: number, r: Refusal): ProtocolError {
  return interfaceError(objectId, r.code, r.message);
}

export class ShmPools {
  private readonly pools = new Set<Pool>();
  /** What the policy makes of a destroyed buffer a surface shows (ReadRules.destroyed). */
  private readonly destroyed: "drop" | "read" | "saved";

  constructor(private readonly host: PoolHost) {
    this.destroyed = readRules(host.policy).destroyed;
  }

  /** Pools currently held (mapped or readable), for leak checks. */
  get count(): number {
    return this.pools.size;
  }

  /** The pools held now, for classifying a fault's address (fault-place.ts). */
  get mapped(): Iterable<Pool> {
    return this.pools;
  }

  /** wl_shm and wl_shm_pool's requests. */
  implement(s: { implement(iface: string, impl: object): void }): void {
    s.implement("wl_shm", {
      create_pool: (r: Resource, args: unknown[]) =>
        this.createPool(r, args as [number, number, number]),
      release: () => {},
    });
    s.implement("wl_shm_pool", {
      create_buffer: (r: Resource, args: unknown[]) =>
        this.createBuffer(r, args as unknown as number[]),
      destroy: () => {},
      resize: (r: Resource, args: unknown[]) => this.resizePool(r, args[0] as number),
    });
    s.implement("wl_buffer", { destroy: () => {} });
  }

  private createPool(r: Resource, [id, fd, size]: [number, number, number]): void {
    const { proc, policy, instance } = this.host;
    const closeFd = () => {
      // EBADF: already closed by the policy.
      if (proc.alive) onErrno(["EBADF"], () => proc.close(fd), undefined);
    };
    const bad = policy.profile.createPool(size);
    if (bad && !bad.xError) {
      closeFd();
      throw refusal(r.id, bad);
    }
    const client = r.client;
    if (this.poolBytes(client) + size > this.host.maxClientPoolBytes) {
      closeFd();
      throw this.poolLimit();
    }
    const pool: Pool = {
      id,
      client,
      name: `${client.label}#${id}`,
      fd,
      size,
      addr: 0,
      state: {},
      freed: false,
      refs: 1,
      busy: 0,
      newSize: null,
      resourceRef: true,
      unmapped: false,
    };
    const refused = (why: Refusal) => {
      if (pool.fd >= 0) closeFd();
      if (!why.xError) throw refusal(r.id, why);
      // Xorg: the segment was never made; the client stays, and a put naming it is
      // BadShmSeg. It holds nothing (ProcShmAttachFd made no ShmSeg resource).
      pool.fd = -1;
      pool.freed = true;
      pool.unmapped = true;
      this.host.notice(client, pool.name, `${why.xError}: ${why.message}`, why.xError);
    };
    if (bad) refused(bad);
    else {
      try {
        instance.mapPool(pool);
      } catch (e) {
        if (!(e instanceof ShmRefusal)) throw e;
        refused(e.refusal);
      }
    }
    if (!pool.unmapped) this.pools.add(pool);
    const res = client.resource(id)!;
    res.data = pool;
    res.onDestroy = () => this.releaseResource(pool);
  }

  /** Bytes of the pools mapped for `client` now. */
  private poolBytes(client: ServerClient): number {
    if (this.host.maxClientPoolBytes === Number.POSITIVE_INFINITY) return 0;
    let n = 0;
    for (const p of this.pools) if (p.client === client) n += p.size;
    return n;
  }

  /** Past the per-client budget: wl_display.error no_memory, as libwayland posts for ENOMEM. */
  private poolLimit(): ProtocolError {
    return protoError(
      PROTO_ERR.OBJECT_LIMIT,
      `pools mapped for this client would pass ${this.host.maxClientPoolBytes} bytes`,
    );
  }

  /** The pool's own reference (its wl_shm_pool resource, or Xorg's segment) is gone. */
  releaseResource(pool: Pool): void {
    if (!pool.resourceRef) return;
    pool.resourceRef = false;
    this.unref(pool);
  }

  /** A kept destroyed buffer is off screen at last: its pool reference goes. */
  releaseDetached(b: Buffer): void {
    if (!b.detached) return;
    b.detached = false;
    // wl_shm_pool_unref(pool, external): "if (pool->external_refcount == 0)
    // shm_pool_finish_resize(pool)".
    if (b.refPool) this.endExternal(b.pool);
    this.unref(b.pool);
  }

  /** One external reference goes; the last one lets a deferred resize finish. */
  private endExternal(pool: Pool): void {
    pool.busy--;
    this.finishDeferred(pool);
  }

  /** shm_pool_finish_resize once external_refcount is back to 0, if a resize waits. */
  private finishDeferred(pool: Pool): void {
    if (pool.busy === 0 && pool.newSize !== null && !pool.unmapped)
      this.finishResize(pool, pool.newSize);
  }

  private unref(pool: Pool): void {
    if (--pool.refs > 0 || pool.unmapped) return;
    pool.unmapped = true;
    this.pools.delete(pool);
    if (this.host.alive()) this.host.instance.unmapPool(pool);
  }

  private createBuffer(r: Resource, args: number[]): void {
    const [id, offset, width, height, stride, format] = args;
    const pool = r.data as Pool;
    const b: BufferArgs = { offset, width, height, stride, format };
    const bad = pool.freed ? null : this.host.policy.profile.createBuffer(b, pool.size);
    if (bad && !bad.xError && !bad.drawsNothing) throw refusal(r.id, bad);
    const bpp = bytesPerPixel(format) || 4;
    const client = r.client;
    // Xorg reads what its ShmPutImage fields carry (XORG_PROFILE.drawn)
    const g = (!bad && this.host.policy.profile.drawn?.(b)) || b;
    const buf: Buffer = {
      ...b,
      ...g,
      id,
      client,
      pool,
      bpp,
      span: (g.height - 1) * g.stride + g.width * bpp,
      name: `${client.label}#${id}`,
      alive: true,
      inert: pool.freed || bad !== null,
      texture: null,
      // Xorg checks at ShmPutImage: commitChecks() notes the X error.
      ...(bad ? { xRefusal: bad } : {}),
    };
    pool.refs++;
    const res = client.resource(id)!;
    res.data = buf;
    res.onDestroy = () => {
      buf.alive = false;
      if (!this.host.bufferGone(buf)) return this.unref(pool);
      buf.detached = true;
      if (this.keepsByRefPool()) {
        buf.refPool = true;
        pool.busy++;
      }
    };
    if (!buf.inert) this.host.bufferCreated?.(buf);
  }

  /**
   * A destroyed buffer kept on screen holds its pool by wl_shm_buffer_ref_pool, which in
   * wayland 1.21 is an external reference ("buffer->pool->external_refcount++"), so
   * shm_pool_resize defers ("if (pool->external_refcount == 0)
   * shm_pool_finish_resize(pool)") and create_buffer checks the old size until the surface
   * moves on. Both keepers of a destroyed wl_shm_buffer over libwayland 1.21 call it:
   * wlroots 0.15's shm_client_buffer_resource_handle_destroy (`readDestroyed`, its
   * saved_data) and KWin 5.27's ShmClientBufferPrivate::buffer_destroy_callback
   * (`reads.destroyed: "saved"`, its savedData); sway, cage and kwin_wayland 5.27.5 refuse
   * a buffer in the grown part (test/real-deferred-resize.test.ts). Not "read": KWin 6 has
   * its own wl_shm (no deferral at all), and libwayland >= 1.24's wl_shm_buffer_ref
   * (`libwayland-kept-buffer`) counts the buffer's external references, not the pool's
   * (9367c4d: the buffer keeps its pool by the internal count).
   */
  private keepsByRefPool(): boolean {
    const { instance, policy } = this.host;
    if (!policy.deferResizeWhileReading) return false;
    return instance.readDestroyed !== undefined || this.destroyed === "saved";
  }

  /**
   * Xorg: a commit is ShmPutImage. A segment that is gone (never attached, or freed by
   * ShmBusfaultNotify) is BadShmSeg (VERIFY_SHMSEG), a bad geometry the buffer's X error;
   * either keeps the client and draws nothing. No-op for wl_shm policies.
   */
  commitChecks(b: Buffer | null): void {
    if (!b || !(b.pool.freed || b.xRefusal)) return;
    b.inert = true;
    if (b.xRefusal?.drawsNothing) return;
    const r = b.xRefusal ?? {
      code: 0,
      message: `buffer ${b.id} names a segment that is gone (nothing drawn)`,
      xError: "BadShmSeg",
    };
    this.host.notice(b.client, b.pool.name, `${r.xError}: ${r.message}`, r.xError);
  }

  private resizePool(r: Resource, size: number): void {
    const { policy } = this.host;
    const pool = r.data as Pool;
    const mayShrink = this.host.poolsMayShrink() && size > 0;
    const bad = mayShrink && size < pool.size ? null : policy.profile.resize(size, pool.size);
    if (bad?.thenPanic) {
      r.client.postError(r.id, bad.code, bad.message);
      this.host.panic(bad.thenPanic);
    }
    if (bad) throw refusal(r.id, bad);
    if (pool.freed) return;
    if (
      size > pool.size &&
      this.poolBytes(r.client) - pool.size + size > this.host.maxClientPoolBytes
    )
      throw this.poolLimit();
    if (mayShrink && size < pool.size) pool.shrunk = true;
    if (policy.deferResizeWhileReading && pool.busy > 0) {
      // wayland-shm.c shm_pool_resize: "we defer the resize ... until the compositor
      // finishes dereferencing the pool".
      pool.newSize = size;
      return;
    }
    this.finishResize(pool, size);
  }

  private finishResize(pool: Pool, size: number): void {
    pool.newSize = null;
    try {
      this.host.instance.growPool(pool, size);
    } catch (e) {
      if (!(e instanceof ShmRefusal)) throw e;
      // "only if pool->resource != NULL": a destroyed pool's resize fails silently.
      if (pool.resourceRef && !pool.client.closed)
        pool.client.postError(pool.id, e.refusal.code, e.refusal.message);
    }
  }

  /**
   * One bracketed access to a buffer: begin_access, `fn`, end_access; then a deferred
   * resize, and the error end_access decided, posted on the wl_buffer.
   */
  access(b: Buffer, fn: (a: Access) => void): AccessEnd | undefined {
    const instance = this.host.instance;
    const pool = b.pool;
    pool.refs++;
    pool.busy++;
    let end: AccessEnd | undefined;
    try {
      const a = instance.beginAccess(b);
      fn(a);
      end = instance.endAccess(a);
    } finally {
      // On a death nothing below matters; on another failure (a Deadlock, a bug) the pool
      // must not stay marked as being read.
      pool.busy--;
    }
    this.finishDeferred(pool);
    this.unref(pool);
    if (end?.error && b.alive && !b.client.closed)
      b.client.postError(b.id, end.error.code, end.error.message);
    else if (end?.destroyedError && !b.alive && !b.client.closed)
      b.client.postError(DISPLAY_ID, DISPLAY_ERROR.implementation, end.destroyedError);
    return end;
  }
}
