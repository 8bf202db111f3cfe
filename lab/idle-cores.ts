/**
 * How busy the cores are now, for choosing how many threads to start: the cores' CPU times
 * are sampled when this module is loaded (cli/main.ts imports it first, so the window
 * covers the loading of every other source) and again when asked.
 */
import { cpus } from "node:os";

const atLoad = cpus();

/**
 * How many cores sat idle since this module was loaded, or undefined when the window is
 * too short to say. This thread was busy loading the sources meanwhile, so on an idle
 * machine it is the cores less about one.
 */
export function idleCores(): number | undefined {
  const now = cpus();
  if (now.length !== atLoad.length) return undefined;
  let idle = 0;
  for (let i = 0; i < now.length; i++) {
    const [a, b] = [atLoad[i].times, now[i].times];
    const total =
      b.user + b.nice + b.sys + b.idle + b.irq - (a.user + a.nice + a.sys + a.idle + a.irq);
    // Milliseconds, counted by the kernel in 10 ms ticks: fewer than five say nothing.
    if (total < 50) return undefined;
    idle += (b.idle - a.idle) / total;
  }
  return idle;
}
