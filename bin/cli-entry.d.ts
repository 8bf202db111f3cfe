/** Types of bin/cli-entry.js (plain JavaScript: bin/shmlab.js loads it without tsx). */
export declare const MAIN: string;
export declare function registerTsx(): Promise<void>;
export declare function cliEntry(
  args: readonly string[],
  cwd: string,
  env: Record<string, string | undefined>,
): Promise<{ file: string; bundled: boolean; note?: string }>;
