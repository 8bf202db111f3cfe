/**
 * A shmem inode's pages go when its last reference goes (issue 18, finding 1). Linux:
 * close() of the last fd → fput → __fput → dput → iput; with i_nlink == 0 (a memfd is
 * unlinked from birth) iput_final → evict → shmem_evict_inode, which calls
 * shmem_truncate_range(inode, 0, (loff_t)-1) and frees every page. A VMA holds the file
 * (vma->vm_file, get_file in mmap_region) until remove_vma → fput; an SCM_RIGHTS message in
 * flight holds it until it is received or discarded. A long-term pin holds pages, not the
 * inode: its pages outlive the inode and are freed at unpin (unpin_user_pages → folio_put).
 */
import { describe, expect, it } from "vitest";
import { pin, unpin } from "../shm/gup.ts";
import { Kernel } from "../shm/kernel.ts";
import { MAP, PROT } from "../shm/uapi.ts";
import { PG, RW, setup } from "./helpers.ts";

const inUse = (k: Kernel) => k.frames.getStats().inUse;

describe("inode eviction: pages are freed with the file's last reference", () => {
  it("closing the last fd of an unmapped memfd frees its pages", () => {
    const { k, a } = setup();
    const fd = a.memfdCreate("pool");
    a.pwrite(fd, new Uint8Array(64 * PG).fill(1), 0);
    expect(inUse(k)).toBe(64);
    a.close(fd);
    expect(inUse(k)).toBe(0);
  });

  it("a mapping keeps the file (and its pages) until munmap", () => {
    const { k, a } = setup();
    const fd = a.memfdCreate("pool");
    a.ftruncate(fd, 8 * PG);
    const m = a.mmap(0, 8 * PG, RW, MAP.MAP_SHARED, fd, 0);
    a.fill(m, 8 * PG, 7);
    a.close(fd);
    // vm_file still holds the inode: the pages are there and hold the data.
    expect(inUse(k)).toBe(8);
    expect(a.load(m + 5 * PG, 1)[0]).toBe(7);
    a.munmap(m, 4 * PG);
    expect(inUse(k)).toBe(8); // half still mapped: the file lives
    a.munmap(m + 4 * PG, 4 * PG);
    expect(inUse(k)).toBe(0);
  });

  it("a dup, a fork's copy of the fd, and a file in flight each keep it alive", () => {
    const { k, a } = setup();
    const b = k.spawn("b");
    const fd = a.memfdCreate("pool");
    a.pwrite(fd, new Uint8Array(4 * PG).fill(2), 0);
    const d = a.dup(fd);
    const child = a.fork("child");
    const h = k.exportFd(a, fd);
    a.close(fd);
    a.close(d);
    expect(inUse(k)).toBe(4);
    child.exit();
    expect(inUse(k)).toBe(4); // still in flight
    const got = k.importFd(b, h);
    expect(b.pread(got, 1, 3 * PG)[0]).toBe(2);
    b.close(got);
    expect(inUse(k)).toBe(0);
  });

  it("a discarded in-flight file is released too (the message was never received)", () => {
    const { k, a } = setup();
    const fd = a.memfdCreate("pool");
    a.pwrite(fd, new Uint8Array(2 * PG), 0);
    const h = k.exportFd(a, fd);
    a.close(fd);
    expect(inUse(k)).toBe(2);
    k.dropHandle(h);
    expect(inUse(k)).toBe(0);
  });

  it("process exit frees the files only it held", () => {
    const { k, a } = setup();
    const fd = a.memfdCreate("pool");
    a.ftruncate(fd, 16 * PG);
    const m = a.mmap(0, 16 * PG, RW, MAP.MAP_SHARED, fd, 0);
    a.fill(m, 16 * PG, 3);
    const anon = a.mmap(0, 4 * PG, RW, MAP.MAP_SHARED | MAP.MAP_ANONYMOUS);
    a.fill(anon, 4 * PG, 4);
    expect(inUse(k)).toBe(20);
    a.exit();
    expect(inUse(k)).toBe(0);
  });

  it("shared anonymous memory (shmem_zero_setup) is freed with its last mapping, fork included", () => {
    const { k, a } = setup();
    const anon = a.mmap(0, 4 * PG, RW, MAP.MAP_SHARED | MAP.MAP_ANONYMOUS);
    a.fill(anon, 4 * PG, 4);
    const child = a.fork("child");
    a.munmap(anon, 4 * PG);
    expect(inUse(k)).toBe(4);
    expect(child.load(anon + PG, 1)[0]).toBe(4);
    child.munmap(anon, 4 * PG);
    expect(inUse(k)).toBe(0);
  });

  it("a long-term pin keeps its pages past the inode's eviction, until unpin", () => {
    const { k, a } = setup();
    const fd = a.memfdCreate("pool");
    a.ftruncate(fd, 4 * PG);
    const m = a.mmap(0, 4 * PG, RW, MAP.MAP_SHARED, fd, 0);
    a.fill(m, 4 * PG, 9);
    const held = pin(a, m, 2 * PG);
    a.close(fd);
    a.munmap(m, 4 * PG);
    // The inode is gone (two unpinned pages freed), the pinned pages wait for unpin.
    expect(inUse(k)).toBe(2);
    unpin(k, held);
    expect(inUse(k)).toBe(0);
  });

  it("a file still open elsewhere is not evicted by one holder's close", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const b = k.spawn("b");
    const fd = a.memfdCreate("pool");
    a.pwrite(fd, new Uint8Array(3 * PG).fill(5), 0);
    const bfd = a.sendFd(fd, b);
    a.close(fd);
    expect(inUse(k)).toBe(3);
    expect(b.pread(bfd, 1, 2 * PG)[0]).toBe(5);
    const m = b.mmap(0, 3 * PG, PROT.PROT_READ, MAP.MAP_SHARED, bfd, 0);
    b.close(bfd);
    expect(b.load(m, 1)[0]).toBe(5);
    b.exit();
    expect(inUse(k)).toBe(0);
  });
});
