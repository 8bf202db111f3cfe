/**
 * An inode's i_mmap (shm/mapping-list.ts): the VMAs mapping it, walked in the order they
 * were added (truncation zaps in that order), with a Set's add, delete, has and size.
 */
import { describe, expect, it } from "vitest";
import { MappingList } from "../shm/mapping-list.ts";
import { MAP, PROT } from "../shm/uapi.ts";
import { newVmaFlags, Vma } from "../shm/vma.ts";
import { PG, RW, setup } from "./helpers.ts";

const flags = newVmaFlags({ shared: true, anonymous: false });
const vma = (i: number) =>
  new Vma(i * PG, (i + 1) * PG, PROT.PROT_READ, { ...flags }, undefined, undefined, i);

describe("i_mmap: an insertion-ordered list of VMAs", () => {
  it("keeps a Set's order, membership and size through adds and deletes", () => {
    const list = new MappingList();
    const plain = new Set<Vma>();
    const vs = Array.from({ length: 8 }, (_, i) => vma(i));
    const ops: [string, number][] = [
      ["add", 0],
      ["add", 1],
      ["add", 2],
      ["delete", 1],
      ["add", 3],
      ["add", 1],
      ["delete", 0],
      ["add", 0],
      ["delete", 3],
      ["add", 4],
      ["add", 4],
      ["delete", 7],
      ["delete", 2],
      ["add", 5],
    ];
    for (const [op, i] of ops) {
      if (op === "add") {
        list.add(vs[i]);
        plain.add(vs[i]);
      } else expect(list.delete(vs[i])).toBe(plain.delete(vs[i]));
      expect([...list]).toEqual([...plain]);
      expect(list.size).toBe(plain.size);
      for (const v of vs) expect(list.has(v)).toBe(plain.has(v));
    }
  });

  it("lets a walk remove the VMA it is visiting, and refuses a VMA of another list", () => {
    const list = new MappingList();
    const vs = Array.from({ length: 4 }, (_, i) => vma(i));
    for (const v of vs) list.add(v);
    const seen: Vma[] = [];
    for (const v of list) {
      seen.push(v);
      if (v === vs[1] || v === vs[3]) list.delete(v);
    }
    expect(seen).toEqual(vs);
    expect([...list]).toEqual([vs[0], vs[2]]);
    expect(() => new MappingList().add(vs[0])).toThrow(/another inode/);
  });

  it("follows a file's mappings through splits and unmaps, in order", () => {
    const { a } = setup();
    const fd = a.memfdCreate("pool");
    a.ftruncate(fd, 8 * PG);
    const m1 = a.mmap(0, 8 * PG, RW, MAP.MAP_SHARED, fd, 0);
    const m2 = a.mmap(0, 8 * PG, PROT.PROT_READ, MAP.MAP_SHARED, fd, 0);
    const file = a.mm.find(m1)!.file!;
    a.munmap(m1 + 2 * PG, PG); // m1 split: its upper part joins the list at the end
    const starts = () => [...file.mappings].map((v) => (v.start - m1) / PG);
    expect(starts()).toEqual([0, (m2 - m1) / PG, 3]);
    a.munmap(m2, 8 * PG);
    expect(starts()).toEqual([0, 3]);
    a.munmap(m1, 8 * PG);
    expect(file.mappings.size).toBe(0);
  });
});
