/**
 * A binary min-heap of non-negative integers: the frame allocator's free list, so that the
 * lowest free frame is always handed out first and the frames in use stay packed at the
 * bottom of physical memory (frames.ts can then give the top back).
 */
export class MinHeap {
  private a: number[] = [];

  get size(): number {
    return this.a.length;
  }

  push(x: number): void {
    const a = this.a;
    let i = a.length;
    a.push(x);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p] <= x) break;
      a[i] = a[p];
      i = p;
    }
    a[i] = x;
  }

  /** The smallest element, removed; undefined when empty. */
  pop(): number | undefined {
    const a = this.a;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop() as number;
    const n = a.length;
    if (n === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && a[r] < a[l] ? r : l;
      if (a[c] >= last) break;
      a[i] = a[c];
      i = c;
    }
    a[i] = last;
    return top;
  }

  /** Drops every element >= `bound` (O(n), then the heap is rebuilt). */
  dropFrom(bound: number): void {
    const kept = this.a.filter((x) => x < bound);
    this.a = [];
    // A sorted array is a valid min-heap.
    kept.sort((x, y) => x - y);
    this.a = kept;
  }
}
