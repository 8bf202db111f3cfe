/**
 * What a fresh Linux process already has right above its first mmap: the dynamic loader's
 * own memory. Every simulated process gets it at spawn (exec), so that a read running past
 * the process's topmost mapping reads that memory, as on Linux, instead of faulting.
 *
 * How Linux lays it out (x86_64, measured on 6.18 / glibc 2.36: docs/linux-notes.md):
 * - exec picks the layout: load_elf_binary → setup_new_exec → arch_pick_mmap_layout sets
 *   mm->mmap_base = mmap_base(random_factor, task_size, rlim_stack) (the top of the mmap area,
 *   below the stack gap) and mm->get_unmapped_area = arch_get_unmapped_area_topdown.
 * - load_elf_binary maps the interpreter (load_elf_interp → elf_map → vm_mmap with no fixed
 *   address) top-down from mmap_base, so ld.so lies at the top of the area, and
 *   arch_setup_additional_pages (map_vdso) puts [vvar], [vvar_vclock] and [vdso] directly
 *   below it.
 * - ld.so's first mapping at run time is anonymous, 8 KiB, read-write (strace:
 *   "mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)" before it
 *   opens /etc/ld.so.cache): it lands directly below [vvar]. Then ld.so maps
 *   /etc/ld.so.cache below it, the libraries below that (_dl_map_segments: mmap of the
 *   whole image, then its segments MAP_FIXED), and munmaps the cache — so the program's
 *   first mmap of up to the cache's size fills the top of that hole and ends exactly where
 *   the loader's 8 KiB mapping starts (/proc/self/maps of a C program and of the host
 *   runner's scenario process: scenarios/placement/read-past-topmost-mapping).
 *
 * The model's MMAP_BASE is where that first mapping ends, so the loader's mapping is
 * [MMAP_BASE, MMAP_BASE + 8 KiB): private anonymous, PROT_READ|PROT_WRITE (rw-p, as
 * measured). Its contents are zeros — the loader's real data there are its allocator's
 * blocks (pointers that ASLR changes on every run), which no simulation could reproduce
 * and no scenario can pin; zeros are what an anonymous page reads before anyone writes it,
 * and are the same on every run. Above it (vvar, vdso, ld.so's image) the model maps
 * nothing: AddressSpace never places a mapping above MMAP_CEILING.
 *
 * It is an ordinary VMA: munmap, mprotect, MAP_FIXED and mremap may touch it, as Linux lets
 * a process unmap or overwrite its loader's memory (the kernel has no notion of "the
 * loader's" — the process only breaks itself); fork copies it; a private anonymous mapping
 * made directly below it joins it, as on the host (vma_merge_new_range: the C program's
 * first 4 KiB MAP_PRIVATE|MAP_ANONYMOUS read-write mmap showed as one 12 KiB rw-p VMA with
 * the loader's 8 KiB).
 */
import { MMAP_BASE, MMAP_CEILING } from "./address-space.ts";
import type { Process } from "./process.ts";
import { attach } from "./syscalls/memory.ts";
import { PROT } from "./uapi.ts";
import { newVmaFlags, Vma } from "./vma.ts";

/** The loader's first anonymous mapping: 2 pages (8 KiB), rw-p. */
export const LOADER_DATA_START = MMAP_BASE;
export const LOADER_DATA_SIZE = MMAP_CEILING - MMAP_BASE;

/** Gives a fresh process (Kernel.spawn, i.e. exec) the loader's mapping above MMAP_BASE. */
export function mapLoaderData(p: Process): Vma {
  const v = new Vma(
    LOADER_DATA_START,
    LOADER_DATA_START + LOADER_DATA_SIZE,
    PROT.PROT_READ | PROT.PROT_WRITE,
    newVmaFlags(),
    undefined,
    undefined,
    0,
  );
  attach(p, v);
  return v;
}
