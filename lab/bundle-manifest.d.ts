/** Types of lab/bundle-manifest.js (plain JavaScript: bin/shmlab.js loads it without tsx). */
export declare const FORMAT: string;

/** What a bundle was made from: the sources, relative to the repository, and their hash. */
export interface Manifest {
  format: string;
  inputs: string[];
  hash: string;
  bundle: string;
}

export declare function manifestPath(entryPath: string, root: string, cacheDir: string): string;
export declare function hashOf(
  esbuildVersion: string,
  inputs: readonly string[],
  bytes: (rel: string) => Uint8Array | null,
): string | null;
export declare function readManifest(path: string): Manifest | null;
export declare function currentBundle(
  entryPath: string,
  root: string,
  cacheDir: string,
  esbuildVersion: string,
): string | null;
