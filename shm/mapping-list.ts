/**
 * An inode's i_mmap: the VMAs that map it, in the order they were added, which is the order
 * truncation and hole punching walk them (so the order COW pages are freed in, and every
 * digest, depends on it). It has the Set methods the kernel uses; it is a list threaded
 * through the VMAs themselves, because a Set keyed by a VMA hashes it: a new VMA's identity
 * hash and the table's rehashes made an insert and a delete cost more than the rest of a
 * SIGBUS handler's mmap, which splits a file VMA (the upper part is added, the head removed).
 *
 * A VMA is on at most one list (its file's). A walk may remove the VMA it is visiting.
 */
import type { Vma } from "./vma.ts";

export class MappingList implements Iterable<Vma> {
  private head: Vma | undefined;
  private tail: Vma | undefined;
  private count = 0;

  get size(): number {
    return this.count;
  }

  has(v: Vma): boolean {
    return v.mapList === this;
  }

  add(v: Vma): this {
    if (v.mapList === this) return this;
    if (v.mapList !== undefined) throw new Error("i_mmap: the VMA is on another inode's list");
    v.mapList = this;
    v.mapPrev = this.tail;
    v.mapNext = undefined;
    if (this.tail === undefined) this.head = v;
    else this.tail.mapNext = v;
    this.tail = v;
    this.count++;
    return this;
  }

  delete(v: Vma): boolean {
    if (v.mapList !== this) return false;
    const { mapPrev: prev, mapNext: next } = v;
    if (prev === undefined) this.head = next;
    else prev.mapNext = next;
    if (next === undefined) this.tail = prev;
    else next.mapPrev = prev;
    v.mapList = undefined;
    v.mapPrev = undefined;
    // v.mapNext stays: a walk visiting v when it was removed goes on from there.
    this.count--;
    return true;
  }

  *[Symbol.iterator](): Iterator<Vma> {
    for (let v = this.head; v !== undefined; v = v.mapNext) yield v;
  }
}
