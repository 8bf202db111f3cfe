/**
 * A shmem inode's page cache (i_mapping's xarray): file page offset → frame. It is a Map,
 * so that every walk over it (truncation, eviction, the self-check) keeps the Map's
 * insertion order and with it the order frames are freed in, which fixes which frame a later
 * allocation gets and so every digest. Beside the Map it keeps a dense index of the low
 * offsets in a typed array, because the fault path's lookups are what a read of a mapping
 * costs: filemap_map_pages looks up up to 16 pages per fault, and a `Map.get` costs ten
 * times an array read. The index is a pure cache of the Map: every change goes through
 * set, delete and clear, which keep both.
 */

/** Offsets at or above this are only in the Map (the index stays ≤ 256 KiB per file). */
const INDEXED_PAGES = 1 << 16;
/** The index's first size: a small file costs a small array. */
const MIN_INDEX = 64;

export class PageCache extends Map<number, number> {
  /**
   * frame + 1 per page offset below `index.length`, 0 where the page is not cached. Below
   * its length it is authoritative; replaced (grown) by `set`, so read it afresh per walk.
   */
  index: Int32Array = new Int32Array(0);

  /** The frame caching page `pg`, or undefined: `get` without the Map where it can. */
  frameOf(pg: number): number | undefined {
    const idx = this.index;
    if (pg < idx.length) {
      const e = idx[pg];
      return e === 0 ? undefined : e - 1;
    }
    return this.get(pg);
  }

  override set(pg: number, frame: number): this {
    if (frame >>> 0 !== frame) throw new RangeError(`page cache: ${frame} is not a frame`);
    super.set(pg, frame);
    if (pg >>> 0 === pg && pg < INDEXED_PAGES) {
      if (pg >= this.index.length) this.grow(pg);
      this.index[pg] = frame + 1;
    }
    return this;
  }

  override delete(pg: number): boolean {
    if (pg < this.index.length && pg >>> 0 === pg) this.index[pg] = 0;
    return super.delete(pg);
  }

  override clear(): void {
    this.index = new Int32Array(0);
    super.clear();
  }

  private grow(pg: number): void {
    let n = Math.max(MIN_INDEX, this.index.length);
    while (n <= pg) n *= 2;
    const next = new Int32Array(Math.min(n, INDEXED_PAGES));
    next.set(this.index);
    this.index = next;
  }
}
