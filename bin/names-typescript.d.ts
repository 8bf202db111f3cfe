/** Types of bin/names-typescript.js (plain JavaScript: bin/shmlab.js loads it without tsx). */
export declare function namesTypeScript(args: readonly string[], cwd: string): boolean;
