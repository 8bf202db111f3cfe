/**
 * What lies just above a client's pool in the real compositor's address space, read off
 * /proc/<compositor>/maps: the evidence behind what a stride lie's overread shows (fuzz
 * finding 4). The model places a compositor's mappings top-down and adjacent, as Linux's
 * `unmapped_area_topdown` does, so the model says the bytes past a pool's end are the pool
 * mapped just before it; on the real process this says which mapping it really is — another
 * of our clients' pools, a pool of the compositor's own clients (weston-desktop-shell's
 * `weston-shared` memfds), a library, or nothing (a gap).
 *
 * Each participant's memfds are known by inode from /proc/<helper>/fd and /proc/<helper>/maps
 * (a memfd shows as `/memfd:NAME (deleted)`; the compositor's maps line carries the same
 * inode). Root or the same user
 * can read both; anything else is a reason in words, never an exception.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";

export interface MapsEntry {
  start: bigint;
  end: bigint;
  perms: string;
  inode: number;
  path: string;
}

/** /proc/PID/maps lines: `start-end perms offset dev inode path`. */
export function parseMaps(text: string): MapsEntry[] {
  const out: MapsEntry[] = [];
  for (const line of text.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (!m) continue;
    out.push({
      start: BigInt(`0x${m[1]}`),
      end: BigInt(`0x${m[2]}`),
      perms: m[3],
      inode: Number(m[4]),
      path: m[5],
    });
  }
  return out.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
}

/** Errors of reading another process's /proc entries that only mean "cannot tell". */
const UNREADABLE = new Set(["ENOENT", "EACCES", "EPERM", "ESRCH"]);

function unreadable(e: unknown): string | null {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code && UNREADABLE.has(code) ? code : null;
}

/**
 * The memfd inodes process `pid` holds: open fds, and its own mappings (an honest client
 * closes its fd after create_pool and keeps the mapping it draws through).
 */
export function memfdInodesOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const m of parseMaps(readFileSync(`/proc/${pid}/maps`, "utf8")))
      if (m.path.startsWith("/memfd:")) out.push(m.inode);
  } catch (e) {
    if (!unreadable(e)) throw e;
  }
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch (e) {
    if (unreadable(e)) return out;
    throw e;
  }
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("/memfd:"))
        out.push(statSync(`/proc/${pid}/fd/${fd}`).ino);
    } catch (e) {
      // an fd closed between the listing and the look (the helper is still running)
      if (!unreadable(e)) throw e;
    }
  }
  return out;
}

export interface PoolOwner {
  pid: number;
  label: string;
}

/**
 * One line: the mapping of `owner`'s pool (`poolBytes` long, rounded up to pages as mmap
 * does) in the compositor `compositorPid`, and the mapping just above it — adjacent or
 * after a gap, and whose it is.
 */
export function poolNeighbour(
  compositorPid: number,
  owner: PoolOwner,
  others: readonly PoolOwner[],
  poolBytes: number,
): string {
  let text: string;
  try {
    text = readFileSync(`/proc/${compositorPid}/maps`, "utf8");
  } catch (e) {
    const code = unreadable(e);
    if (code) return `maps unreadable (${code})`;
    throw e;
  }
  const whose = new Map<number, string>();
  for (const o of others) for (const ino of memfdInodesOf(o.pid)) whose.set(ino, `${o.label}'s`);
  const mine = new Set(memfdInodesOf(owner.pid));
  if (mine.size === 0) return `no memfd of ${owner.label} open (closed, or its process is gone)`;
  return neighbourIn(parseMaps(text), mine, whose, owner.label, poolBytes, (m) =>
    fileSize(compositorPid, m),
  );
}

/**
 * The pure part of poolNeighbour: in `maps`, the mapping of a pool `poolBytes` long backed
 * by one of `mine` (inodes), and the mapping just above it, named by `whose` (inode → whose
 * memfd) or by its path.
 */
export function neighbourIn(
  maps: readonly MapsEntry[],
  mine: ReadonlySet<number>,
  whose: ReadonlyMap<number, string>,
  label: string,
  poolBytes: number,
  sizeOf: (m: MapsEntry) => number | null = () => null,
): string {
  const len = BigInt(Math.ceil(poolBytes / 4096) * 4096);
  const candidates = maps.filter((m) => mine.has(m.inode));
  const pool = candidates.find((m) => m.end - m.start === len) ?? candidates.at(-1);
  if (!pool) return `${label}'s pool is not mapped in the compositor`;
  const above = maps.find((m) => m.start >= pool.end);
  const at = `0x${pool.start.toString(16)}-0x${pool.end.toString(16)}`;
  if (!above) return `${label}'s pool at ${at} is the topmost mapping`;
  const gap = above.start - pool.end;
  const what = whose.has(above.inode)
    ? `${whose.get(above.inode)} memfd ${above.path}`
    : above.path || "an anonymous mapping";
  const pages = (above.end - above.start) / 4096n;
  const file = above.inode ? sizeOf(above) : null;
  return `${label}'s pool at ${at}; ${gap === 0n ? "directly above" : `${gap / 4096n} page(s) above`}: ${what} (${above.perms}, ${pages} page(s)${file === null ? "" : `, file ${file} bytes`})`;
}

/**
 * The size of the file behind a mapping (/proc/PID/map_files needs CAP_SYS_ADMIN): bytes
 * of its last page past the file's end read as zeros.
 */
function fileSize(pid: number, m: MapsEntry): number | null {
  try {
    return statSync(`/proc/${pid}/map_files/${m.start.toString(16)}-${m.end.toString(16)}`).size;
  } catch (e) {
    if (unreadable(e)) return null;
    throw e;
  }
}
