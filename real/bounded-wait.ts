/**
 * Waits for `p` at most `ms` milliseconds, and leaves no timer behind either way: a
 * `Promise.race` with a bare sleep keeps its timer, and a CLI command (`shmlab replay
 * --real`) then lingers until the last one fires after its work is done.
 */
export async function boundedWait<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<undefined>((r) => {
    timer = setTimeout(() => r(undefined), ms);
  });
  try {
    return await Promise.race([p, expired]);
  } finally {
    clearTimeout(timer);
  }
}
