/**
 * Physical memory: 4 KiB frames in one growable SharedArrayBuffer, so that worker threads
 * see the same bytes. Per frame: a reference count (page cache + page-table entries + pins),
 * an owner tag (which file or process the frame belongs to, for leak detection) and flags.
 *
 * Frame 0 is the shared zero page: never written, never freed.
 *
 * Memory is given back. The lowest free frame is always handed out first (a min-heap), so
 * the frames in use stay packed at the bottom; `trim()` then replaces the buffer with a
 * smaller one holding only the frames up to the highest one still in use or quarantined
 * (a growable SharedArrayBuffer cannot shrink, and V8 unmaps a dropped one when it is
 * collected). Frame numbers never change: every frame below the cut keeps its number and
 * bytes. A trim is refused while a worker thread holds the buffer (`pin`), and must be
 * called where no `view()` is held (between syscalls: from the event loop).
 *
 * A freed frame is not reused while a thread that might still be reading it through a stale
 * translation is inside a user access: each reading thread publishes the epoch at which its
 * access began, and a frame freed at epoch E is reused only once no access that began at or
 * before E is still running (the RCU-like guarantee Linux gets from TLB flushes before
 * freeing pages: tlb_finish_mmu frees only after the flush).
 */
import { ErrnoError } from "./errors.ts";
import { MinHeap } from "./min-heap.ts";
import { PAGE_SIZE } from "./uapi.ts";

export const ZERO_FRAME = 0;
const GROW_STEP_FRAMES = 1024; // 4 MiB at a time
/**
 * A new table starts this small and doubles up to GROW_STEP_FRAMES: a fuzz case's kernel
 * uses a few dozen frames, and a 4 MiB buffer per kernel was most of a case's memory churn.
 * From GROW_STEP_FRAMES on the sizes are the same as growing by steps from the start.
 */
const INITIAL_FRAMES = 64;
/**
 * Zeroes are copied in from here: TypedArray.prototype.fill on a SharedArrayBuffer stores
 * byte by byte (V8 11), several times slower than set() from an ordinary buffer.
 */
const ZERO_PAGE = new Uint8Array(PAGE_SIZE);
/** A trim that would give back less than this keeps the buffer (a copy is not free). */
const TRIM_MIN_FRAMES = 1024;
export const MAX_READER_THREADS = 128;
/** V8 caps a growable SharedArrayBuffer's maximum length at 4 GiB. */
export const MAX_MEMORY_LIMIT = 4 * 1024 * 1024 * 1024;

/** Frame flag bits. */
export const FRAME_ANON_EXCLUSIVE = 1; // PageAnonExclusive: only one process can reach it
/**
 * A shmem page allocated by fallocate and not yet written or faulted: !folio_test_uptodate.
 * shmem_get_folio_gfp clears it and marks it uptodate on its first fault ("fallocated
 * folio ... goto clear"), shmem_write_end on a write; read(2) leaves it. Fault-around
 * (filemap_map_pages → next_uptodate_folio) skips such pages.
 */
export const FRAME_NOT_UPTODATE = 2;

export interface FrameStats {
  inUse: number;
  limit: number;
  peak: number;
  allocated: number;
  freed: number;
  /** Bytes `trim()` gave back, in all. */
  trimmedBytes: number;
  /** Bytes of physical memory held now. */
  bytes: number;
}

export class FrameTable {
  readonly limitFrames: number;
  /** Physical memory; replaced (same frames, fewer of them) by `trim()`. */
  memory: SharedArrayBuffer;
  /**
   * Refcount, owner, flags per frame, in one shared buffer with room for `capacity` frames:
   * replaced by a larger copy as frames past it are handed out (a table sized for the
   * memory limit up front was 1.5 MiB zeroed per kernel, most of a fuzz case's set-up).
   * A local copy of the array (fault.ts's fault-around loop) is valid until the next
   * alloc() or get() of a new frame number; across one, read it from the table again.
   */
  refcount: Int32Array;
  owner: Int32Array;
  flags: Int32Array;
  private capacity: number;
  /** [0] = global epoch; [1 + i] = epoch at which reader thread i began its access, or 0. */
  readonly epochs: Int32Array;
  private bytes: Uint8Array;
  private top = 1; // frames ever handed out (frame 0 is the zero page)
  private free = new MinHeap();
  private quarantine: { frame: number; epoch: number }[] = [];
  private stats = { inUse: 0, peak: 0, allocated: 0, freed: 0, trimmedBytes: 0 };
  /** Holders of `memory` outside this thread (worker channels): no trim while any. */
  private pins = 0;
  /**
   * Called once when physical memory is exhausted, before ENOMEM: frees what reclaim can
   * (droppable pages) and returns how many frames it released.
   */
  onPressure: (() => number) | undefined;

  constructor(limitBytes: number) {
    if (!(limitBytes > 0) || limitBytes > MAX_MEMORY_LIMIT) {
      throw new RangeError(
        `memory limit must be between 1 page and ${MAX_MEMORY_LIMIT} bytes (one growable SharedArrayBuffer)`,
      );
    }
    this.limitFrames = Math.max(2, Math.floor(limitBytes / PAGE_SIZE));
    this.memory = this.newMemory(Math.min(INITIAL_FRAMES, this.limitFrames));
    this.bytes = new Uint8Array(this.memory);
    this.capacity = Math.min(INITIAL_FRAMES, this.limitFrames);
    const meta = new SharedArrayBuffer(12 * this.capacity);
    this.refcount = new Int32Array(meta, 0, this.capacity);
    this.owner = new Int32Array(meta, 4 * this.capacity, this.capacity);
    this.flags = new Int32Array(meta, 8 * this.capacity, this.capacity);
    // Reader threads keep this one array for their lifetime: it is never replaced.
    this.epochs = new Int32Array(new SharedArrayBuffer(4 * (1 + MAX_READER_THREADS)));
    this.refcount[ZERO_FRAME] = 1; // pinned forever
    this.epochs[0] = 1;
  }

  /** Room in refcount/owner/flags for frame numbers below `frames` (doubling, to the limit). */
  private growMeta(frames: number): void {
    const cap = Math.min(this.limitFrames, Math.max(frames, 2 * this.capacity));
    const meta = new SharedArrayBuffer(12 * cap);
    const refcount = new Int32Array(meta, 0, cap);
    const owner = new Int32Array(meta, 4 * cap, cap);
    const flags = new Int32Array(meta, 8 * cap, cap);
    refcount.set(this.refcount);
    owner.set(this.owner);
    flags.set(this.flags);
    this.refcount = refcount;
    this.owner = owner;
    this.flags = flags;
    this.capacity = cap;
  }

  private newMemory(frames: number): SharedArrayBuffer {
    return new SharedArrayBuffer(frames * PAGE_SIZE, {
      maxByteLength: this.limitFrames * PAGE_SIZE,
    });
  }

  /**
   * A view of all of physical memory (length-tracking, so it follows growth). Valid until
   * the next `trim()`: take it afresh for each access, never keep it across an event.
   */
  view(): Uint8Array {
    return this.bytes;
  }

  /** Bytes of physical memory the table holds now (what RSS can see of it at most). */
  get byteLength(): number {
    return this.memory.byteLength;
  }

  /** A thread outside this one holds `memory` (a worker channel): trims wait for unpin. */
  pin(): void {
    this.pins++;
  }

  unpin(): void {
    if (this.pins <= 0) throw new Error("frame table unpinned more often than pinned");
    this.pins--;
  }

  /**
   * Gives back the memory above the highest frame still in use or quarantined: the buffer
   * is replaced by a smaller one with the same bytes below the cut, so frame numbers and
   * contents are unchanged. Returns the bytes given back (0 when pinned, or when less than
   * TRIM_MIN_FRAMES would go). Call only where no view() is held (from the event loop).
   */
  trim(): number {
    if (this.pins > 0) return 0;
    this.reclaimQuarantine();
    let qmax = 0;
    for (const q of this.quarantine) if (q.frame > qmax) qmax = q.frame;
    let hi = this.top - 1;
    while (hi > qmax && Atomics.load(this.refcount, hi) === 0) hi--;
    const keep = Math.min(
      this.limitFrames,
      Math.max(GROW_STEP_FRAMES, Math.ceil((hi + 1) / GROW_STEP_FRAMES) * GROW_STEP_FRAMES),
    );
    const have = this.memory.byteLength / PAGE_SIZE;
    if (have - keep < TRIM_MIN_FRAMES) return 0;
    const next = this.newMemory(keep);
    const bytes = new Uint8Array(next);
    // Only frames ever handed out below the cut are copied: the rest stays untouched zero.
    bytes.set(this.bytes.subarray(0, (hi + 1) * PAGE_SIZE));
    // Free frames at or above the new top are forgotten; fresh ones come from `top` again,
    // zero in the new buffer.
    this.free.dropFrom(hi + 1);
    this.top = hi + 1;
    this.memory = next;
    this.bytes = bytes;
    const given = (have - keep) * PAGE_SIZE;
    this.stats.trimmedBytes += given;
    return given;
  }

  /** Allocates a zero-filled frame owned by `owner`, with refcount 1. ENOMEM past the limit. */
  alloc(owner: number, syscall = "alloc"): number {
    this.reclaimQuarantine();
    let f = this.free.pop();
    if (f === undefined && this.top >= this.limitFrames && this.onPressure?.()) {
      this.reclaimQuarantine();
      f = this.free.pop();
    }
    if (f === undefined) {
      if (this.top >= this.limitFrames) {
        throw new ErrnoError("ENOMEM", syscall, `memory limit of ${this.limitFrames} frames`);
      }
      f = this.top++;
      if (this.top > this.capacity) this.growMeta(this.top);
      const need = this.top * PAGE_SIZE;
      if (need > this.memory.byteLength) {
        const target = Math.min(
          this.limitFrames * PAGE_SIZE,
          Math.max(
            need,
            this.memory.byteLength + Math.min(this.memory.byteLength, GROW_STEP_FRAMES * PAGE_SIZE),
          ),
        );
        this.memory.grow(target);
      }
    } else {
      this.bytes.set(ZERO_PAGE, f * PAGE_SIZE);
    }
    this.refcount[f] = 1;
    this.owner[f] = owner;
    this.flags[f] = 0;
    this.stats.inUse++;
    this.stats.allocated++;
    if (this.stats.inUse > this.stats.peak) this.stats.peak = this.stats.inUse;
    return f;
  }

  get(f: number): void {
    if (f === ZERO_FRAME) return;
    if (f >= this.capacity) this.growMeta(f + 1); // as a table sized for the limit had it
    Atomics.add(this.refcount, f, 1);
  }

  /** Drops one reference; the frame is freed (into quarantine) when none remain. */
  put(f: number): void {
    if (f === ZERO_FRAME) return;
    if (f >= this.capacity && f < this.limitFrames)
      throw new Error(`frame ${f} refcount underflow`);
    const left = Atomics.sub(this.refcount, f, 1) - 1;
    if (left < 0) throw new Error(`frame ${f} refcount underflow`);
    if (left === 0) {
      this.owner[f] = 0;
      this.flags[f] = 0;
      this.stats.inUse--;
      this.stats.freed++;
      const epoch = Atomics.add(this.epochs, 0, 1);
      this.quarantine.push({ frame: f, epoch });
    }
  }

  /** Frames ever handed out, the zero page included: every live frame is below this. */
  get extent(): number {
    return this.top;
  }

  refs(f: number): number {
    if (f === ZERO_FRAME) return Number.POSITIVE_INFINITY;
    return f >= this.capacity && f < this.limitFrames ? 0 : Atomics.load(this.refcount, f);
  }

  /** Moves quarantined frames whose epoch no running reader can still be in to the free list. */
  private reclaimQuarantine(): void {
    if (this.quarantine.length === 0) return;
    let oldest = Number.POSITIVE_INFINITY;
    for (let i = 1; i <= MAX_READER_THREADS; i++) {
      const e = Atomics.load(this.epochs, i);
      if (e !== 0 && e < oldest) oldest = e;
    }
    const keep: { frame: number; epoch: number }[] = [];
    for (const q of this.quarantine) {
      if (q.epoch < oldest) this.free.push(q.frame);
      else keep.push(q);
    }
    this.quarantine = keep;
  }

  copyFrame(dst: number, src: number): void {
    this.bytes.copyWithin(dst * PAGE_SIZE, src * PAGE_SIZE, (src + 1) * PAGE_SIZE);
  }

  zeroRange(f: number, from: number, to: number): void {
    if (f === ZERO_FRAME) return;
    if (to > from) this.bytes.set(ZERO_PAGE.subarray(0, to - from), f * PAGE_SIZE + from);
  }

  /** Frames in use now (getStats().inUse without building the object: checked per step). */
  get inUse(): number {
    return this.stats.inUse;
  }

  getStats(): FrameStats {
    return { ...this.stats, limit: this.limitFrames, bytes: this.memory.byteLength };
  }
}
